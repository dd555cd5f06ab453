package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// handleSubmit is intake on eq.tasks.submit: the event is already verified
// (signature, signer owns the source, tenant, freshness, replay). Here:
// validate, check the submitter may ask, persist, reply, dispatch.
func (t *tenant) handleSubmit(ctx context.Context, m *bus.Message) {
	submitter := principal(m)
	ctx, span := t.tracer().Start(ctx, "intake", trace.WithAttributes(
		telemetry.AttrTenant.String(t.name), telemetry.AttrSubmitter.String(submitter)))
	defer span.End()
	if m.Reply() != "" && !replyAllowed(principal(m), m.Reply()) {
		t.refuse(ctx, m, protocol.ReasonForbidden, "the reply subject must be your own inbox "+protocol.InboxPrefix(submitter)+".*")
		return
	}
	var req protocol.SubmitRequest
	if err := decode(m, &req); err != nil {
		t.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
		return
	}
	if req.Flow != nil && req.Capability == "" {
		req.Capability = protocol.CapabilityFlow
	}
	if err := protocol.ValidateName("capability", req.Capability); err != nil {
		t.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
		return
	}
	span.SetAttributes(telemetry.AttrCapability.String(req.Capability))
	policyCtx, policySpan := t.tracer().Start(ctx, "policy")
	if !t.admit(policyCtx, m, submitter, &req) {
		policySpan.End()
		span.SetStatus(codes.Error, "refused")
		return
	}
	policySpan.End()
	role, _ := t.dir.role(submitter)

	now := time.Now().UTC()
	policy := t.retryPolicy(req.Capability)
	timeout := time.Duration(req.Timeout)
	if timeout <= 0 {
		timeout = policy.TaskTimeout
	}
	task := &Task{
		ID:               newID(),
		Capability:       req.Capability,
		Input:            req.Input,
		Submitter:        submitter,
		SubmitterIsAgent: role == auth.RoleAgent,
		IdempotencyKey:   req.IdempotencyKey,
		MaxAttempts:      max(policy.MaxAttempts, 1),
		NextAttemptAt:    now,
		Deadline:         now.Add(timeout),
		CreatedAt:        now,
		UpdatedAt:        now,
	}
	task.TraceParent = telemetry.TraceParent(ctx)
	span.SetAttributes(telemetry.AttrTaskID.String(task.ID))
	if req.Parent != "" {
		span.SetAttributes(telemetry.AttrParentTask.String(req.Parent))
		if err := t.checkParent(ctx, submitter, req.Parent); err != nil {
			t.refuse(ctx, m, protocol.ReasonForbidden, err.Error())
			return
		}
		task.Parent = req.Parent
	}

	if !t.persist(ctx, m, task, req) {
		return
	}
	t.countTransition(ctx, task)
	t.dispatch(ctx, task.ID)
}

// persist stores an admitted task (or flow), claiming its idempotency key,
// links a subtask to its parent and answers the submitter. It returns
// whether the task is new and ready to dispatch.
func (t *tenant) persist(ctx context.Context, m *bus.Message, task *Task, req protocol.SubmitRequest) bool {
	ctx, span := t.tracer().Start(ctx, "persist")
	defer span.End()
	submitter := task.Submitter
	if req.IdempotencyKey != "" {
		existing, err := t.store.claimIdempotency(ctx, submitter, req.IdempotencyKey, task.ID)
		if err != nil {
			t.refuse(ctx, m, protocol.ReasonUnavailable, "could not record the task; try again")
			t.log.ErrorContext(ctx, "idempotency claim failed", "error", err)
			return false
		}
		if existing != "" {
			if t.answerDuplicate(ctx, m, existing) {
				return false
			}
			// The key names a task that was never stored: an orchestrator
			// stopped between claiming the key and storing the task. This
			// submit carries the same key, so it stores that task now.
			task.ID = existing
		}
	}
	if req.Flow != nil {
		task.Flow = req.Flow
		task.FlowInput = req.Input
		task.Input = nil
		if err := t.startFlow(ctx, task); err != nil {
			if t.storedByAnother(ctx, m, task, err) {
				return false
			}
			t.refuse(ctx, m, protocol.ReasonUnavailable, "could not record the flow; try again")
			t.log.ErrorContext(ctx, "flow not stored", "error", err)
			return false
		}
		t.audit.record(ctx, auditEntry{decision: decisionAccepted, taskID: task.ID, event: m.Raw()})
		t.respond(ctx, m, protocol.TypeTaskAccepted, task.ID, protocol.Accepted{TaskID: task.ID, State: task.State})
		return false
	}
	if err := transition(task, protocol.CauseSubmit, protocol.StateSubmitted); err != nil {
		t.refuse(ctx, m, protocol.ReasonUnavailable, "could not record the task; try again")
		return false
	}
	if err := t.store.create(ctx, task); err != nil {
		if t.storedByAnother(ctx, m, task, err) {
			return false
		}
		t.refuse(ctx, m, protocol.ReasonUnavailable, "could not record the task; try again")
		t.log.ErrorContext(ctx, "task not stored", "error", err)
		return false
	}
	if task.Parent != "" {
		_, err := t.store.update(ctx, task.Parent, func(p *Task) error {
			p.Subtasks = append(p.Subtasks, task.ID)
			return nil
		})
		if err != nil {
			t.log.WarnContext(ctx, "subtask not linked to its parent", "task", task.ID, "parent", task.Parent, "error", err)
		}
	}
	t.audit.record(ctx, auditEntry{decision: decisionAccepted, taskID: task.ID, event: m.Raw()})
	t.respond(ctx, m, protocol.TypeTaskAccepted, task.ID, protocol.Accepted{TaskID: task.ID, State: task.State})
	return true
}

// admit is intake's policy: who may ask for what, schemas, rate and
// concurrency limits. It refuses (and returns false) or returns true.
func (t *tenant) admit(ctx context.Context, m *bus.Message, submitter string, req *protocol.SubmitRequest) bool {
	if _, ok := t.dir.role(submitter); !ok {
		t.refuse(ctx, m, protocol.ReasonForbidden, "unknown or revoked principal")
		return false
	}
	capabilities := []string{req.Capability}
	if req.Capability == protocol.CapabilityFlow || req.Flow != nil {
		if req.Capability != protocol.CapabilityFlow || req.Flow == nil {
			t.refuse(ctx, m, protocol.ReasonMalformed, `a flow needs capability "flow" and a flow definition`)
			return false
		}
		if err := protocol.ValidateFlow(req.Flow); err != nil {
			t.refuse(ctx, m, protocol.ReasonMalformed, "flow: "+err.Error())
			return false
		}
		capabilities = capabilities[:0]
		for _, s := range req.Flow.Steps {
			capabilities = append(capabilities, s.Capability)
		}
	}
	for _, c := range capabilities {
		if !t.policy.maySubmit(submitter, c) {
			t.refuse(ctx, m, protocol.ReasonForbidden, fmt.Sprintf("you may not ask for capability %q", c))
			return false
		}
		if !t.dir.hasCapability(c) {
			t.refuse(ctx, m, protocol.ReasonUnknownCapability, fmt.Sprintf("no agent in this tenant serves capability %q", c))
			return false
		}
	}
	if len(req.Input) == 0 {
		req.Input = []byte("null")
	}
	if limit := t.maxInput(); len(req.Input) > limit {
		t.refuse(ctx, m, protocol.ReasonTooLarge, fmt.Sprintf("the task's input is %d bytes; the most a dispatch can carry on this server is %d (its max payload %d, less %d for the event around it)",
			len(req.Input), limit, min(t.nc.MaxPayload(), bus.DefaultMaxEventSize), dispatchOverhead))
		return false
	}
	if err := validateJSON(t.schemas[req.Capability].input, req.Input); err != nil {
		t.refuse(ctx, m, protocol.ReasonSchemaInvalid, fmt.Sprintf("input for %s %v", req.Capability, err))
		return false
	}
	if t.limiter != nil && !t.limiter.Allow() {
		t.refuse(ctx, m, protocol.ReasonRateLimited, "the tenant's submission rate limit is reached; slow down and retry")
		return false
	}
	if limit := t.policy.MaxConcurrent; limit > 0 && t.sched.activeCount() >= limit {
		t.refuse(ctx, m, protocol.ReasonOverCapacity, fmt.Sprintf("the tenant has %d unfinished tasks, its limit; retry when some end", limit))
		return false
	}

	return true
}

// checkParent: only the agent running a task may add subtasks to it.
func (t *tenant) checkParent(ctx context.Context, submitter, parentID string) error {
	parent, _, err := t.store.get(ctx, parentID)
	if errors.Is(err, errNotFound) {
		return fmt.Errorf("parent task %s does not exist", clip(parentID))
	}
	if err != nil {
		return fmt.Errorf("parent task unavailable")
	}
	switch {
	case parent.State == protocol.StateRunning && parent.Agent == submitter:
		return nil
	case parent.State == protocol.StateDispatched && t.dir.serves(submitter, parent.Capability):
		// The agent's "running" report may still be on its way: reports and
		// submits travel on different subjects, in no common order.
		return nil
	}
	return fmt.Errorf("only the agent running task %s may submit its subtasks", clip(parentID))
}

// answerDuplicate replies to a resubmit with the task its key names. It
// returns false, without answering, when that task does not exist.
func (t *tenant) answerDuplicate(ctx context.Context, m *bus.Message, taskID string) bool {
	task, _, err := t.store.get(ctx, taskID)
	if errors.Is(err, errNotFound) {
		return false
	}
	if err != nil {
		t.refuse(ctx, m, protocol.ReasonUnavailable, "could not read the task; try again")
		return true
	}
	t.audit.record(ctx, auditEntry{decision: decisionDuplicate, taskID: taskID, event: m.Raw()})
	t.respond(ctx, m, protocol.TypeTaskAccepted, taskID, protocol.Accepted{TaskID: taskID, State: task.State, Duplicate: true})
	return true
}

// storedByAnother answers a keyed submit whose task id was stored first by
// a concurrent submit with the same key (a retry that took over the claim,
// here or on another replica).
func (t *tenant) storedByAnother(ctx context.Context, m *bus.Message, task *Task, err error) bool {
	if task.IdempotencyKey == "" || !errors.Is(err, jetstream.ErrKeyExists) {
		return false
	}
	return t.answerDuplicate(ctx, m, task.ID)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// dispatchOverhead is room for what a dispatch adds to a task's input:
// its CloudEvent headers, signature and JSON envelope.
const dispatchOverhead = 4 << 10

// maxInput is the largest input a dispatch can carry on this server.
func (t *tenant) maxInput() int {
	return int(min(t.nc.MaxPayload(), bus.DefaultMaxEventSize)) - dispatchOverhead
}
