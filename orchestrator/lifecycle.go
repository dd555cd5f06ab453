package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// lifecycle makes the orchestrator's own transitions of a task: dispatch,
// retry, expiry, timeout, cancel, and tells the submitter of each.
type lifecycle struct {
	*base
	flows *flows // told when a step or gate subtask ends
}

// Transitions of the task lifecycle. Each is one compare-and-set on the
// task record, then the side effects (messages, audit) of the winner.

// dispatch sends the next attempt of a due task to its capability.
func (l *lifecycle) dispatch(ctx context.Context, id string) {
	task, err := l.store.update(ctx, id, func(task *Task) error {
		now := time.Now()
		if now.Before(task.NextAttemptAt) || now.After(task.Deadline) {
			return errSkip
		}
		return l.startAttempt(task, now)
	})
	if err != nil {
		l.logSkip(ctx, "dispatch", id, err)
		return
	}
	l.sendDispatch(ctx, task)
}

// startAttempt moves a submitted task to its next attempt, dispatched,
// waiting for a claim until the claim timeout.
func (l *lifecycle) startAttempt(task *Task, now time.Time) error {
	if err := transition(task, protocol.CauseDispatch, protocol.StateDispatched); err != nil {
		return err
	}
	task.Attempt++
	task.AttemptDeadline = minTime(now.Add(l.retryPolicy(task.Capability).ClaimTimeout), task.Deadline)
	return nil
}

// sendDispatch makes what a stored dispatch promises happen: the signed
// dispatch to the capability, its audit record, the submitter told.
func (l *lifecycle) sendDispatch(ctx context.Context, task *Task) {
	ctx, span := l.startTaskSpan(ctx, "dispatch "+task.Capability, task, previousAttempt(task)...)
	defer span.End()
	l.countTransition(ctx, task)
	e, err := l.newEvent(protocol.TypeTaskDispatched, task.ID, protocol.Dispatch{
		TaskID:     task.ID,
		Attempt:    task.Attempt,
		Capability: task.Capability,
		Input:      task.Input,
		Deadline:   task.Deadline,
		Parent:     task.Parent,
		ClaimBy:    task.AttemptDeadline,
	})
	if err != nil {
		// The claim timeout retries it: the task is not lost.
		l.log.ErrorContext(ctx, "dispatch not built", "task", task.ID, "error", err)
		return
	}
	e.SetExtension(protocol.ExtAttempt, task.Attempt)
	if task.Parent != "" {
		e.SetExtension(protocol.ExtCausationID, task.Parent)
	}
	// A watcher hears "dispatched" before the agent can hear of the task:
	// its "running" (sent when the agent's report is handled, maybe on
	// another goroutine) then always comes after, on this connection.
	l.notify(ctx, task)
	msg, err := l.bus.Send(ctx, protocol.Capability(task.Capability), e)
	if errors.Is(err, bus.ErrTooLarge) || errors.Is(err, nats.ErrMaxPayload) {
		// No retry makes it smaller (a flow step's or gate's input built
		// from earlier outputs): say so rather than wait for a claim.
		l.failTask(ctx, task.ID, task.Attempt, fmt.Sprintf("the task's input (%d bytes) is too large to dispatch: the server's max payload is %d bytes", len(task.Input), l.nc.MaxPayload()))
		return
	}
	if err != nil {
		// The claim timeout retries it: the task is not lost.
		l.log.WarnContext(ctx, "dispatch not sent", "task", task.ID, "error", err)
		return
	}
	l.audit.record(ctx, auditEntry{decision: decisionDispatched, taskID: task.ID, event: msg})
}

// failTask ends an attempt that cannot be sent, for good.
func (l *lifecycle) failTask(ctx context.Context, id string, attempt int, why string) {
	task, err := l.store.update(ctx, id, func(task *Task) error {
		if task.State != protocol.StateDispatched || task.Attempt != attempt {
			return errSkip
		}
		task.Error = why
		return transition(task, protocol.CauseReject, protocol.StateFailed)
	})
	if err != nil {
		l.logSkip(ctx, "fail", id, err)
		return
	}
	l.recordTransition(ctx, task, why, nil)
}

// attemptExpired handles an attempt nobody claimed or that ran too long.
func (l *lifecycle) attemptExpired(ctx context.Context, id string) {
	var agent string
	task, err := l.store.update(ctx, id, func(task *Task) error {
		now := time.Now()
		running := task.State == protocol.StateDispatched || task.State == protocol.StateRunning
		if !running || task.AttemptDeadline.IsZero() || !now.After(task.AttemptDeadline) {
			return errSkip
		}
		agent = task.Agent
		if task.State == protocol.StateDispatched {
			task.Error = "no agent took the task in time"
		} else {
			task.Error = "the attempt ran out of time"
		}
		return l.retryOrGiveUp(task, protocol.CauseExpire, now, true)
	})
	if err != nil {
		l.logSkip(ctx, "attempt expiry", id, err)
		return
	}
	ctx, span := l.startTaskSpan(ctx, "attempt expired", task)
	span.SetAttributes(telemetry.AttrReason.String(task.Error))
	defer span.End()
	if agent != "" {
		l.sendCancel(ctx, agent, task.ID, task.Attempt, "attempt timed out")
	}
	l.recordTransition(ctx, task, task.Error, nil)
}

// timeOut ends a task whose deadline passed.
func (l *lifecycle) timeOut(ctx context.Context, id string) {
	var agent string
	task, err := l.store.update(ctx, id, func(task *Task) error {
		if !time.Now().After(task.Deadline) {
			return errSkip
		}
		agent = task.Agent
		task.Error = "deadline exceeded"
		return transition(task, protocol.CauseTimeout, protocol.StateTimedOut)
	})
	if err != nil {
		l.logSkip(ctx, "timeout", id, err)
		return
	}
	ctx, span := l.startTaskSpan(ctx, "timed out", task)
	defer span.End()
	if agent != "" {
		l.sendCancel(ctx, agent, task.ID, task.Attempt, "deadline exceeded")
	}
	l.recordTransition(ctx, task, task.Error, nil)
	l.cancelSubtasks(ctx, task, "parent timed out")
}

// retryOrGiveUp moves an attempt that failed or expired on: back to
// submitted with backoff while attempts and time remain, else
// dead-lettered (retries exhausted) or failed (not retryable).
func (l *lifecycle) retryOrGiveUp(task *Task, cause protocol.Cause, now time.Time, retryable bool) error {
	if !retryable {
		return transition(task, cause, protocol.StateFailed)
	}
	next := now.Add(l.retryPolicy(task.Capability).backoff(task.Attempt))
	if task.Attempt >= task.MaxAttempts || next.After(task.Deadline) {
		return transition(task, cause, protocol.StateDeadLettered)
	}
	if err := transition(task, cause, protocol.StateSubmitted); err != nil {
		return err
	}
	task.NextAttemptAt = next
	return nil
}

// cancel ends a task on request and cancels its running attempt and its
// subtasks. It returns the task as it now stands.
func (l *lifecycle) cancel(ctx context.Context, id, why string, event *nats.Msg) (*Task, error) {
	var agent string
	task, err := l.store.update(ctx, id, func(task *Task) error {
		agent = task.Agent
		task.Error = why
		return transition(task, protocol.CauseCancel, protocol.StateCancelled)
	})
	if errors.Is(err, errSkip) {
		return task, nil // already final: cancelling is a no-op
	}
	if err != nil {
		return nil, err
	}
	if agent != "" {
		l.sendCancel(ctx, agent, task.ID, task.Attempt, why)
	}
	l.recordTransition(ctx, task, why, event)
	l.cancelSubtasks(ctx, task, "parent cancelled")
	return task, nil
}

func (l *lifecycle) cancelSubtasks(ctx context.Context, parent *Task, why string) {
	for _, sub := range parent.Subtasks {
		if _, err := l.cancel(ctx, sub, why, nil); err != nil {
			l.log.WarnContext(ctx, "subtask not cancelled", "task", sub, "error", err)
		}
	}
}

// sendCancel tells an agent to stop working on an attempt of a task.
func (l *lifecycle) sendCancel(ctx context.Context, agent, taskID string, attempt int, why string) {
	l.publish(ctx, protocol.ControlCancel(agent), protocol.TypeControlCancel, taskID, protocol.Cancel{TaskID: taskID, Attempt: attempt, Message: why})
}

// recordTransition audits a transition and tells the submitter.
func (l *lifecycle) recordTransition(ctx context.Context, task *Task, reason string, event *nats.Msg) {
	decision := string(task.State)
	if task.State == protocol.StateSubmitted {
		decision = decisionRetry
	}
	l.audit.record(ctx, auditEntry{decision: decision, reason: reason, taskID: task.ID, event: event})
	l.countTransition(ctx, task)
	l.notify(ctx, task)
	if task.State.Final() && task.Parent != "" {
		l.flows.childFinished(ctx, task)
	}
}

// childFinished moves a flow on when one of its steps ends.
func (fl *flows) childFinished(ctx context.Context, child *Task) {
	parent, _, err := fl.store.get(ctx, child.Parent)
	switch {
	case err != nil:
	case parent.Flow != nil:
		fl.advanceFlow(ctx, parent.ID)
	case parent.GateTask == child.ID:
		fl.advanceGate(ctx, parent.ID)
	}
}

// notify tells the submitter where its task stands: a client on
// eq.client.<client>.task.<id> (every state when it watches the task, else
// the final one), an agent (for its subtask, when final) on
// eq.ctl.<agent>.subtask.
func (l *lifecycle) notify(ctx context.Context, task *Task) {
	if task.SubmitterIsAgent {
		// An agent hears of its own subtasks' ends, not of the steps and
		// gates the orchestrator derives from them.
		if task.State.Final() && !derived(task.ID) {
			l.publish(ctx, protocol.ControlSubtask(task.Submitter), protocol.TypeSubtaskFinished, task.ID, task.view())
		}
		return
	}
	if !task.State.Final() && !task.Watched {
		return // a submitter that did not ask to watch waits for the end only
	}
	l.publish(ctx, protocol.ClientTask(task.Submitter, task.ID), stateEventType(task.State), task.ID, task.view())
}

func stateEventType(s protocol.State) string {
	switch s {
	case protocol.StateDispatched:
		return protocol.TypeTaskDispatched
	case protocol.StateRunning:
		return protocol.TypeTaskRunning
	case protocol.StateCompleted:
		return protocol.TypeTaskCompleted
	case protocol.StateFailed:
		return protocol.TypeTaskFailed
	case protocol.StateTimedOut:
		return protocol.TypeTaskTimedOut
	case protocol.StateCancelled:
		return protocol.TypeTaskCancelled
	case protocol.StateDeadLettered:
		return protocol.TypeTaskDeadLettered
	}
	return protocol.TypeTaskSubmitted
}

func (b *base) logSkip(ctx context.Context, what, id string, err error) {
	if errors.Is(err, errSkip) {
		return
	}
	b.log.WarnContext(ctx, what+" failed", "task", id, "error", err)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
