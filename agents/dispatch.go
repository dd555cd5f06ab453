package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// maxErrorMessage bounds the error text a failure report carries.
const maxErrorMessage = 1024

// attempt is one dispatch the agent holds.
type attempt struct {
	taskID  string
	attempt int
	// cancel ends the handler's context with a cause.
	cancel context.CancelCauseFunc
	// reportsMu orders the attempt's reports and stops them once the
	// attempt was stopped: a cancelled or released attempt says nothing more.
	reportsMu sync.Mutex
	stopped   error
	// claimed: "running" was sent, or the attempt's end was (which
	// claims it too); claimTimer sends "running" for a handler that is
	// not quick.
	claimed    bool
	claimTimer *time.Timer
}

func (at *attempt) stop(cause error) {
	at.reportsMu.Lock()
	if at.stopped == nil {
		at.stopped = cause
	}
	at.reportsMu.Unlock()
	at.cancel(cause)
}

// handleDispatch takes a dispatch from eq.cap.<capability>: it waits for a
// free slot (or hands the task back), claims the task with a "running"
// report and runs the handler on its own goroutine.
func (a *Agent) handleDispatch(ctx context.Context, m *bus.Message) {
	var d protocol.Dispatch
	if m.Event.Type() != protocol.TypeTaskDispatched || protocol.Decode(m.Event.Data(), &d) != nil || d.TaskID == "" || d.Attempt < 1 {
		a.log.WarnContext(ctx, "dispatch ignored: not a task dispatch", "subject", m.Subject, "type", m.Event.Type())
		return
	}
	a.mu.Lock()
	h, ok := a.handlers[d.Capability]
	_, dup := a.running[d.TaskID]
	draining := a.draining
	a.mu.Unlock()
	if !ok || protocol.Capability(d.Capability) != m.Subject {
		a.log.WarnContext(ctx, "dispatch ignored: capability does not match its subject", "task", d.TaskID, "subject", m.Subject)
		return
	}
	if dup {
		return // redelivered while still running here
	}
	if draining {
		a.release(ctx, d, "agent draining")
		return
	}
	select {
	case a.slots <- struct{}{}:
		a.start(ctx, h, d)
		return
	default:
	}
	// Full: wait off the subscription's goroutine so control messages and
	// other dispatches keep flowing.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		timer := time.NewTimer(a.cfg.claimWait)
		defer timer.Stop()
		select {
		case a.slots <- struct{}{}:
			if a.isDraining() {
				<-a.slots
				a.release(ctx, d, "agent draining")
				return
			}
			a.start(ctx, h, d)
		case <-timer.C:
			a.release(ctx, d, "agent at its concurrency limit")
		case <-a.closed:
		}
	}()
}

func (a *Agent) isDraining() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.draining
}

// release hands an unfinished attempt back to the orchestrator.
func (a *Agent) release(ctx context.Context, d protocol.Dispatch, why string) {
	a.log.InfoContext(ctx, "task handed back", "task", d.TaskID, "attempt", d.Attempt, "reason", why)
	a.publish(ctx, protocol.AgentReport(a.name, "released"), protocol.TypeTaskReleased, d.TaskID,
		protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt, Instance: a.instance, Message: why})
}

// start claims the task (it holds a slot) and runs the handler.
func (a *Agent) start(ctx context.Context, h Handler, d protocol.Dispatch) {
	// The handler's context keeps the dispatch's trace but not its end:
	// it lives until the task's deadline, a cancel or the drain.
	taskCtx, cancelDeadline := context.WithDeadline(context.WithoutCancel(ctx), d.Deadline)
	taskCtx, cancel := context.WithCancelCause(taskCtx)
	// The handler's span: its reports and subtasks are its children.
	taskCtx, span := a.tracer().Start(taskCtx, "handle "+d.Capability, trace.WithAttributes(
		telemetry.AttrTenant.String(a.tenant),
		telemetry.AttrAgent.String(a.name),
		telemetry.AttrCapability.String(d.Capability),
		telemetry.AttrTaskID.String(d.TaskID),
		telemetry.AttrAttempt.Int(d.Attempt),
	))
	if d.Parent != "" {
		span.SetAttributes(telemetry.AttrParentTask.String(d.Parent))
	}
	at := &attempt{taskID: d.TaskID, attempt: d.Attempt, cancel: cancel}
	a.mu.Lock()
	a.running[d.TaskID] = at
	a.mu.Unlock()
	task := &Task{ID: d.TaskID, Attempt: d.Attempt, Capability: d.Capability, Input: d.Input, Deadline: d.Deadline, Parent: d.Parent, agent: a, at: at}
	a.scheduleClaim(taskCtx, task, d.ClaimBy)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() { <-a.slots }()
		defer cancelDeadline()
		output, err := a.call(taskCtx, h, task)
		a.mu.Lock()
		delete(a.running, d.TaskID)
		a.mu.Unlock()
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "handler failed")
		}
		if cause := task.at.stopReason(); cause != nil {
			span.AddEvent("stopped", trace.WithAttributes(telemetry.AttrReason.String(cause.Error())))
		}
		a.finish(taskCtx, task, output, err)
		span.End()
	}()
}

// scheduleClaim says "running" once the handler has run for the quick
// window, or at once when the dispatch gives no claim time (an older
// orchestrator) or too little of it. A quick handler's end is its claim.
func (a *Agent) scheduleClaim(ctx context.Context, task *Task, claimBy time.Time) {
	wait := a.cfg.quickWindow
	if claimBy.IsZero() {
		wait = 0
	} else {
		wait = min(wait, time.Until(claimBy)/2)
	}
	if wait <= 0 {
		task.claim(ctx)
		return
	}
	task.at.reportsMu.Lock()
	task.at.claimTimer = time.AfterFunc(wait, func() { task.claim(ctx) })
	task.at.reportsMu.Unlock()
}

// call runs the handler, turning a panic into a failure.
func (a *Agent) call(ctx context.Context, h Handler, task *Task) (output any, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.ErrorContext(ctx, "handler panicked", "task", task.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = Permanent(errors.New("the handler crashed"))
		}
	}()
	return h.HandleTask(ctx, task)
}

// finish reports the attempt's end, unless it was stopped: a cancelled
// task's result is not wanted, and a released one is already elsewhere.
func (a *Agent) finish(ctx context.Context, task *Task, output any, err error) {
	if task.at.stopReason() != nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err == nil {
		raw, merr := marshalOutput(output)
		if merr == nil {
			task.report(ctx, "completed", protocol.TypeTaskCompleted, protocol.Report{Output: raw})
			return
		}
		err = Permanent(merr)
	}
	retryable := !IsPermanent(err)
	task.report(ctx, "failed", protocol.TypeTaskFailed, protocol.Report{Message: truncate(err.Error(), maxErrorMessage), Retryable: &retryable})
}

func (at *attempt) stopReason() error {
	at.reportsMu.Lock()
	defer at.reportsMu.Unlock()
	return at.stopped
}

func marshalOutput(output any) (json.RawMessage, error) {
	if raw, ok := output.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("the handler's result is not valid JSON")
		}
		return raw, nil
	}
	raw, err := json.Marshal(output)
	if err != nil {
		return nil, fmt.Errorf("the handler's result cannot be encoded as JSON: %w", err)
	}
	return raw, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// handleControl takes the orchestrator's word on eq.ctl.<agent>.>: cancel
// an attempt, a subtask finished, or one of our reports was refused. Only
// the orchestrator may publish there (the server's ACL), and every body is
// read strictly.
func (a *Agent) handleControl(ctx context.Context, m *bus.Message) {
	var err error
	switch {
	case m.Subject == protocol.ControlCancel(a.name) && m.Event.Type() == protocol.TypeControlCancel:
		var c protocol.Cancel
		if err = protocol.Decode(m.Event.Data(), &c); err == nil {
			a.cancelAttempt(ctx, c)
		}
	case m.Subject == protocol.ControlSubtask(a.name) && m.Event.Type() == protocol.TypeSubtaskFinished:
		var v protocol.TaskView
		if err = protocol.Decode(m.Event.Data(), &v); err == nil {
			a.subtasks.finished(v)
		}
	case m.Subject == protocol.ControlRefused(a.name) && m.Event.Type() == protocol.TypeReportRefused:
		var r protocol.Refused
		if err = protocol.Decode(m.Event.Data(), &r); err == nil {
			a.refused(ctx, r)
		}
	default:
		err = fmt.Errorf("no control message of type %s is sent on %s", truncate(m.Event.Type(), 80), truncate(m.Subject, 80))
	}
	if err != nil {
		a.log.WarnContext(ctx, "control message ignored", "subject", m.Subject, "error", err)
	}
}

// cancelAttempt stops the handler of the attempt named, if it runs here.
func (a *Agent) cancelAttempt(ctx context.Context, c protocol.Cancel) {
	a.mu.Lock()
	at := a.running[c.TaskID]
	a.mu.Unlock()
	if at == nil || at.attempt != c.Attempt {
		return
	}
	a.log.InfoContext(ctx, "task cancelled", "task", c.TaskID, "attempt", c.Attempt, "reason", c.Message)
	at.stop(fmt.Errorf("%w: %s", ErrCancelled, c.Message))
}

// refused hears that the orchestrator turned down one of our reports or
// heartbeats: it is logged with its request id (the audit stream has the
// rest) and passed to the WithRefusals callback.
func (a *Agent) refused(ctx context.Context, r protocol.Refused) {
	a.log.WarnContext(ctx, "report refused by the orchestrator", "reason", r.Reason, "message", r.Message,
		"task", r.TaskID, "attempt", r.Attempt, "event", r.EventID, "request_id", r.RequestID)
	if a.cfg.onRefused != nil {
		a.cfg.onRefused(r)
	}
}
