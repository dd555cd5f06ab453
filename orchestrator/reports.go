package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// reports takes agents' word about their attempts.
type reports struct {
	*base
	admission *admission
	lifecycle *lifecycle
	flows     *flows
	sched     *scheduler // the agents' running counts
}

// handleReport takes an agent's word about an attempt, on
// eq.agent.<agent>.<kind> (tenant.agentMessage checked the subject names
// the signer; boundTypes that the event's type is the kind's).
func (rep *reports) handleReport(ctx context.Context, m *bus.Message, agent, kind string) {
	var r protocol.Report
	if err := decode(m, &r); err != nil {
		// Best effort, to name the task in the refusal: a type error in
		// one member leaves the others read.
		var hint protocol.Report
		json.Unmarshal(m.Event.Data(), &hint)
		rep.admission.refuseReport(ctx, m, protocol.Report{TaskID: hint.TaskID, Attempt: hint.Attempt}, protocol.ReasonMalformed, err.Error())
		return
	}
	if r.TaskID == "" || r.Attempt < 1 {
		rep.admission.refuseReport(ctx, m, r, protocol.ReasonMalformed, "fields task_id and attempt: want the task_id and attempt (1 or more) of the dispatch")
		return
	}
	if r.Instance != "" && !validInstance(r.Instance) {
		rep.admission.refuseReport(ctx, m, r, protocol.ReasonMalformed, "field instance: want 1 to 64 of [A-Za-z0-9_-]")
		return
	}
	rep.annotate(ctx, telemetry.AttrTaskID.String(r.TaskID), telemetry.AttrAttempt.Int(r.Attempt))
	switch kind {
	case protocol.ReportProgress, protocol.ReportPartial:
		rep.reportProgress(ctx, m, agent, r)
		return
	}
	// The rest change the task: each is acted on once, on any replica.
	if !rep.admission.firstTime(ctx, m) {
		return
	}
	switch kind {
	case protocol.ReportRunning:
		rep.reportRunning(ctx, m, agent, r)
	case protocol.ReportCompleted:
		rep.reportFinished(ctx, m, agent, r, true)
	case protocol.ReportFailed:
		rep.reportFinished(ctx, m, agent, r, false)
	case protocol.ReportReleased:
		rep.reportReleased(ctx, m, agent, r)
	}
}

// errNotClaimant: the report is about the current attempt, but its sender
// may not report on it (it lacks the task's capability, or another
// instance claimed the attempt). It wraps errSkip: nothing is written.
var errNotClaimant = fmt.Errorf("%w: not the claimant", errSkip)

// claimable checks a report against the attempt it names: while the
// attempt is dispatched, only an agent holding the task's capability may
// claim it; once claimed, only the claiming instance of that agent may
// report. A result held for its gate takes no more reports. It returns
// errSkip for an attempt that is over and errNotClaimant for a sender
// that may not report on it.
func (rep *reports) claimable(task *Task, agent string, r protocol.Report) error {
	if task.Attempt != r.Attempt || task.GateTask != "" {
		return errSkip
	}
	switch task.State {
	case protocol.StateDispatched:
		if !rep.dir.serves(agent, task.Capability) {
			return errNotClaimant
		}
		return nil
	case protocol.StateRunning:
		if task.Agent != agent || task.Instance != r.Instance {
			return errNotClaimant
		}
		return nil
	}
	return errSkip
}

// claim makes the report's sender the holder of the attempt.
func claim(task *Task, agent string, r protocol.Report) {
	task.Agent = agent
	task.Instance = r.Instance
}

func (rep *reports) reportRunning(ctx context.Context, m *bus.Message, agent string, r protocol.Report) {
	if limit := rep.policy.MaxPerAgent; limit > 0 && rep.sched.runningOn(agent) >= limit {
		rep.handBack(ctx, m, agent, r)
		return
	}
	task, err := rep.store.update(ctx, r.TaskID, func(task *Task) error {
		if err := rep.claimable(task, agent, r); err != nil {
			return err
		}
		if err := transition(task, protocol.CauseClaim, protocol.StateRunning); err != nil {
			return err
		}
		policy := rep.retryPolicy(task.Capability)
		claim(task, agent, r)
		task.AttemptDeadline = minTime(time.Now().Add(policy.AttemptTimeout), task.Deadline)
		task.AttemptTrace = telemetry.TraceParent(ctx)
		task.StartedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		rep.badReport(ctx, m, agent, r, err)
		return
	}
	rep.cfg.metrics.TaskStarted(ctx, rep.name, task.Capability, task.StartedAt.Sub(task.NextAttemptAt))
	rep.lifecycle.recordTransition(ctx, task, "", m.Raw())
}

// reportProgress forwards progress and partial results to the submitter
// in order; they are not stored.
func (rep *reports) reportProgress(ctx context.Context, m *bus.Message, agent string, r protocol.Report) {
	task, _, err := rep.store.get(ctx, r.TaskID)
	if err != nil {
		rep.badReport(ctx, m, agent, r, err)
		return
	}
	if err := rep.claimable(task, agent, r); err != nil {
		rep.badReport(ctx, m, agent, r, err)
		return
	}
	if !rep.admission.limiters.allow(agent) {
		return // over its rate: progress is dropped, never stored
	}
	if task.SubmitterIsAgent || !task.Watched {
		return // subtask progress stays with the orchestrator; only a watcher wants it
	}
	rep.publish(ctx, protocol.ClientTask(task.Submitter, task.ID), m.Event.Type(), task.ID, r)
}

func (rep *reports) reportFinished(ctx context.Context, m *bus.Message, agent string, r protocol.Report, ok bool) {
	task, err := rep.store.update(ctx, r.TaskID, func(task *Task) error {
		if err := rep.claimable(task, agent, r); err != nil {
			return err
		}
		if task.State == protocol.StateDispatched {
			// A quick attempt ends without a "running" first: its end is
			// its claim, and where a retry's dispatch links back to.
			task.AttemptTrace = telemetry.TraceParent(ctx)
		}
		claim(task, agent, r)
		if ok && len(task.Input)+len(r.Output) > rep.maxInput() {
			// The task's record holds its input and its result (and a gate
			// is dispatched both): together they must fit the server's max
			// payload. No retry makes the result smaller.
			task.Error = fmt.Sprintf("the result (%d bytes) is too large: with the task's input (%d bytes) it exceeds the %d bytes the server can store or dispatch",
				len(r.Output), len(task.Input), rep.maxInput())
			return transition(task, protocol.CauseReject, protocol.StateFailed)
		}
		if ok {
			if err := validateJSON(rep.schemas[task.Capability].output, r.Output); err != nil {
				// The agent broke its contract: no retry makes that right.
				task.Error = fmt.Sprintf("output of %s %v", task.Capability, err)
				return transition(task, protocol.CauseReject, protocol.StateFailed)
			}
		}
		if ok && rep.gateFor(task.Capability) != "" && !task.IsGate {
			return rep.flows.holdForGate(task, r.Output)
		}
		if ok {
			task.Output = r.Output
			task.Error = ""
			return transition(task, protocol.CauseComplete, protocol.StateCompleted)
		}
		task.Error = r.Message
		retryable := r.Retryable == nil || *r.Retryable
		return rep.lifecycle.retryOrGiveUp(task, protocol.CauseFail, time.Now(), retryable)
	})
	if err != nil {
		rep.badReport(ctx, m, agent, r, err)
		return
	}
	if !task.StartedAt.IsZero() {
		rep.cfg.metrics.AttemptFinished(ctx, rep.name, task.Capability, time.Since(task.StartedAt))
	}
	rep.lifecycle.recordTransition(ctx, task, task.Error, m.Raw())
	if task.GateTask != "" && !task.State.Final() {
		rep.flows.advanceGate(ctx, task.ID)
		return
	}
	if task.State.Final() {
		rep.lifecycle.cancelSubtasks(ctx, task, "parent finished")
	}
}

// badReport handles a report that was not applied, telling the agent
// why: from a sender that may not report on the attempt, about no task,
// or about an attempt that is over (the agent is also told to stop it).
func (rep *reports) badReport(ctx context.Context, m *bus.Message, agent string, r protocol.Report, err error) {
	switch {
	case errors.Is(err, errNotClaimant):
		rep.admission.refuseReport(ctx, m, r, protocol.ReasonForbidden, "you do not hold this attempt: only an agent with the task's capability may claim it, and then only the instance that claimed it may report")
	case errors.Is(err, errNotFound):
		rep.admission.refuseReport(ctx, m, r, protocol.ReasonNotFound, "no such task")
	case errors.Is(err, errSkip):
		rep.staleReport(ctx, m, agent, r)
	default:
		rep.log.WarnContext(ctx, "report not applied", "task", r.TaskID, "error", err)
		rep.admission.refuseReport(ctx, m, r, protocol.ReasonUnavailable, "could not record the report; send it again as a new event")
	}
}

// staleReport refuses a report the attempt's state does not take: the
// attempt is over (the agent is told to stop it), or it does not take
// this kind of report now.
func (rep *reports) staleReport(ctx context.Context, m *bus.Message, agent string, r protocol.Report) {
	task, _, err := rep.store.get(ctx, r.TaskID)
	if err != nil {
		rep.badReport(ctx, m, agent, r, err)
		return
	}
	var why string
	switch {
	case task.Attempt != r.Attempt:
		why = fmt.Sprintf("attempt %d is over: the task is at attempt %d (%s)", r.Attempt, task.Attempt, task.State)
	case task.State.Final():
		why = fmt.Sprintf("the task is %s", task.State)
	case task.GateTask != "":
		why = "the attempt's result is held for its gate: it takes no more reports"
	default:
		why = fmt.Sprintf("a %s report does not apply to an attempt that is %s", kindOf(m), task.State)
	}
	rep.admission.refuseReport(ctx, m, r, protocol.ReasonStale, why)
	if task.State.Final() || task.Attempt != r.Attempt {
		rep.lifecycle.sendCancel(ctx, agent, r.TaskID, r.Attempt, "the attempt is over")
	}
}

// kindOf is the report kind of a message on eq.agent.<agent>.<kind>.
func kindOf(m *bus.Message) string {
	_, kind, _ := protocol.ParseAgentSubject(m.Subject)
	return kind
}

// release hands the attempt back unspent, to be dispatched again soon.
func release(task *Task) error {
	if err := transition(task, protocol.CauseRelease, protocol.StateSubmitted); err != nil {
		return err
	}
	task.Attempt--
	task.NextAttemptAt = time.Now().Add(handBackDelay)
	return nil
}

// handBackDelay is how long a handed-back task waits before it is
// dispatched again, so a busy agent is not offered it at once.
const handBackDelay = 50 * time.Millisecond

// handBack refuses an agent's claim over its concurrency bound: the agent
// is told to drop the task, which goes back to be dispatched again without
// spending an attempt.
func (rep *reports) handBack(ctx context.Context, m *bus.Message, agent string, r protocol.Report) {
	_, err := rep.store.update(ctx, r.TaskID, func(task *Task) error {
		if task.State != protocol.StateDispatched {
			return errSkip
		}
		if err := rep.claimable(task, agent, r); err != nil {
			return err
		}
		return release(task)
	})
	if err != nil {
		rep.badReport(ctx, m, agent, r, err)
		return
	}
	rep.lifecycle.sendCancel(ctx, agent, r.TaskID, r.Attempt, "agent at its concurrency limit")
}

// reportReleased takes back an attempt the agent will not finish (it is
// draining, or too busy to claim it): the task is dispatched again soon,
// and the attempt is not spent.
func (rep *reports) reportReleased(ctx context.Context, m *bus.Message, agent string, r protocol.Report) {
	_, err := rep.store.update(ctx, r.TaskID, func(task *Task) error {
		if err := rep.claimable(task, agent, r); err != nil {
			return err
		}
		return release(task)
	})
	if err != nil {
		rep.badReport(ctx, m, agent, r, err)
		return
	}
	rep.audit.record(ctx, auditEntry{decision: decisionRetry, reason: "released by " + agent + ": " + r.Message, taskID: r.TaskID, event: m.Raw()})
}
