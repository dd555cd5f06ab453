package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// intake takes submits on eq.tasks.submit. The event is already verified
// (signature, signer owns the source, tenant, freshness, replay) and
// passed admission's middleware (event type, rate, durable replay). Intake
// admits it through an ordered chain of checks, stores it, answers and
// dispatches it.
type intake struct {
	*base
	admission *admission
	lifecycle *lifecycle
	flows     *flows
	sched     *scheduler // the tenant's unfinished tasks, for its bound
	// limiter bounds the tenant's accepted submissions (nil: no bound).
	limiter *rate.Limiter
	checks  []submitCheck
}

func newIntake(b *base, a *admission, l *lifecycle, f *flows, s *scheduler) *intake {
	in := &intake{base: b, admission: a, lifecycle: l, flows: f, sched: s}
	if b.policy.RatePerSecond > 0 {
		in.limiter = rate.NewLimiter(rate.Limit(b.policy.RatePerSecond), max(b.policy.Burst, 1))
	}
	// The order matters: who asks before what is asked, cheap checks
	// before costly ones, and the limits last so that a refused submit
	// spends no share of them.
	in.checks = []submitCheck{
		in.knownPrincipal,
		in.replyToOwnInbox,
		in.wellFormed,
		in.flowShape,
		in.allowedSubmitter,
		in.capabilityServed,
		in.inputFits,
		in.inputSchema,
		in.parentRunBySubmitter,
		in.tenantRate,
		in.tenantConcurrency,
	}
	return in
}

// submission is a submit as the checks see it.
type submission struct {
	m         *bus.Message
	submitter string
	role      auth.Role
	req       protocol.SubmitRequest
	// capabilities is what the submit will run: its capability, or each
	// step's of a flow.
	capabilities []string
}

// submitCheck is one admission control: nil admits, a *refusal refuses.
// A new control is one more function in intake.checks.
type submitCheck func(ctx context.Context, s *submission) error

// refusal is a check's verdict: turn the message down for reason.
type refusal struct {
	reason  protocol.Reason
	message string
}

func (r *refusal) Error() string { return string(r.reason) + ": " + r.message }

func refuseWith(reason protocol.Reason, format string, args ...any) error {
	return &refusal{reason: reason, message: fmt.Sprintf(format, args...)}
}

// handleSubmit admits, stores, answers and dispatches a submit. It
// refuses in one place: whatever a check or the store says no to.
func (in *intake) handleSubmit(ctx context.Context, m *bus.Message) {
	submitter := principal(m)
	ctx, span := in.tracer().Start(ctx, "intake", trace.WithAttributes(
		telemetry.AttrTenant.String(in.name), telemetry.AttrSubmitter.String(submitter)))
	defer span.End()
	task, err := in.take(ctx, &submission{m: m, submitter: submitter})
	if err != nil {
		span.SetStatus(codes.Error, "refused")
		var r *refusal
		if !errors.As(err, &r) {
			in.log.ErrorContext(ctx, "task not stored", "error", err)
			r = &refusal{protocol.ReasonUnavailable, "could not record the task; try again with a new event"}
		}
		in.admission.refuse(ctx, m, r.reason, r.message)
		return
	}
	if task != nil {
		in.cfg.metrics.TaskTransition(ctx, in.name, task.Capability, string(protocol.StateSubmitted))
		in.lifecycle.sendDispatch(ctx, task)
	}
}

// take runs the checks, then stores the task (or flow) and answers. It
// returns the task when it is new: stored dispatched, its dispatch to be
// sent.
func (in *intake) take(ctx context.Context, s *submission) (*Task, error) {
	defer func() {
		// On the intake span, whatever the checks decided.
		span := trace.SpanFromContext(ctx)
		if s.req.Capability != "" {
			span.SetAttributes(telemetry.AttrCapability.String(s.req.Capability))
		}
		if s.req.Parent != "" {
			span.SetAttributes(telemetry.AttrParentTask.String(s.req.Parent))
		}
	}()
	policyCtx, policySpan := in.tracer().Start(ctx, "policy")
	for _, check := range in.checks {
		if err := check(policyCtx, s); err != nil {
			policySpan.End()
			return nil, err
		}
	}
	policySpan.End()
	task := in.newTask(ctx, s)
	return in.persist(ctx, s.m, task, s.req)
}

// The checks, in intake.checks order.

func (in *intake) knownPrincipal(_ context.Context, s *submission) error {
	role, ok := in.dir.role(s.submitter)
	if !ok {
		return refuseWith(protocol.ReasonForbidden, "unknown or revoked principal")
	}
	s.role = role
	return nil
}

func (in *intake) replyToOwnInbox(_ context.Context, s *submission) error {
	if s.m.Reply() != "" && !replyAllowed(s.submitter, s.m.Reply()) {
		return refuseWith(protocol.ReasonForbidden, "the reply subject must be your own inbox %s.*", protocol.InboxPrefix(s.submitter))
	}
	return nil
}

func (in *intake) wellFormed(_ context.Context, s *submission) error {
	if err := decode(s.m, &s.req); err != nil {
		return refuseWith(protocol.ReasonMalformed, "%v", err)
	}
	if s.req.Flow != nil && s.req.Capability == "" {
		s.req.Capability = protocol.CapabilityFlow
	}
	if err := protocol.ValidateName("capability", s.req.Capability); err != nil {
		return refuseWith(protocol.ReasonMalformed, "field capability: %v", err)
	}
	if len(s.req.Input) == 0 {
		s.req.Input = []byte("null")
	}
	s.capabilities = []string{s.req.Capability}
	return nil
}

func (in *intake) flowShape(_ context.Context, s *submission) error {
	if s.req.Capability != protocol.CapabilityFlow && s.req.Flow == nil {
		return nil
	}
	if s.req.Capability != protocol.CapabilityFlow || s.req.Flow == nil {
		return refuseWith(protocol.ReasonMalformed, `a flow needs capability "flow" and a flow definition`)
	}
	if err := protocol.ValidateFlow(s.req.Flow); err != nil {
		return refuseWith(protocol.ReasonMalformed, "flow: %v", err)
	}
	s.capabilities = s.capabilities[:0]
	for _, step := range s.req.Flow.Steps {
		s.capabilities = append(s.capabilities, step.Capability)
	}
	return nil
}

func (in *intake) allowedSubmitter(_ context.Context, s *submission) error {
	for _, c := range s.capabilities {
		if !in.policy.maySubmit(s.submitter, c) {
			return refuseWith(protocol.ReasonForbidden, "you may not ask for capability %q", c)
		}
	}
	return nil
}

func (in *intake) capabilityServed(_ context.Context, s *submission) error {
	for _, c := range s.capabilities {
		if !in.dir.hasCapability(c) {
			return refuseWith(protocol.ReasonUnknownCapability, "no agent in this tenant serves capability %q", c)
		}
	}
	return nil
}

func (in *intake) inputFits(_ context.Context, s *submission) error {
	if limit := in.maxInput(); len(s.req.Input) > limit {
		return refuseWith(protocol.ReasonTooLarge, "the task's input is %d bytes; the most a dispatch can carry on this server is %d (its max payload %d, less %d for the event around it)",
			len(s.req.Input), limit, min(in.nc.MaxPayload(), bus.DefaultMaxEventSize), dispatchOverhead)
	}
	return nil
}

func (in *intake) inputSchema(_ context.Context, s *submission) error {
	if err := validateJSON(in.schemas[s.req.Capability].input, s.req.Input); err != nil {
		return refuseWith(protocol.ReasonSchemaInvalid, "input for %s %v", s.req.Capability, err)
	}
	return nil
}

// parentRunBySubmitter: only the agent running a task may add subtasks
// to it.
func (in *intake) parentRunBySubmitter(ctx context.Context, s *submission) error {
	if s.req.Parent == "" {
		return nil
	}
	parent, _, err := in.store.get(ctx, s.req.Parent)
	if errors.Is(err, errNotFound) {
		return refuseWith(protocol.ReasonForbidden, "parent task %s does not exist", clip(s.req.Parent))
	}
	if err != nil {
		return fmt.Errorf("read parent task: %w", err)
	}
	switch {
	case parent.State == protocol.StateRunning && parent.Agent == s.submitter:
		return nil
	case parent.State == protocol.StateDispatched && in.dir.serves(s.submitter, parent.Capability):
		// The agent's "running" report may still be on its way: reports and
		// submits travel on different subjects, in no common order.
		return nil
	}
	return refuseWith(protocol.ReasonForbidden, "only the agent running task %s may submit its subtasks", clip(s.req.Parent))
}

func (in *intake) tenantRate(context.Context, *submission) error {
	if in.limiter != nil && !in.limiter.Allow() {
		return refuseWith(protocol.ReasonRateLimited, "the tenant's submission rate limit is reached; slow down and retry")
	}
	return nil
}

func (in *intake) tenantConcurrency(context.Context, *submission) error {
	if limit := in.policy.MaxConcurrent; limit > 0 && in.sched.activeCount() >= limit {
		return refuseWith(protocol.ReasonOverCapacity, "the tenant has %d unfinished tasks, its limit; retry when some end", limit)
	}
	return nil
}

// newTask builds the record of an admitted submit (not yet submitted: the
// lifecycle's first transition does that).
func (in *intake) newTask(ctx context.Context, s *submission) *Task {
	now := time.Now().UTC()
	policy := in.retryPolicy(s.req.Capability)
	timeout := time.Duration(s.req.Timeout)
	if timeout <= 0 {
		timeout = policy.TaskTimeout
	}
	task := &Task{
		ID:               newID(),
		Capability:       s.req.Capability,
		Input:            s.req.Input,
		Submitter:        s.submitter,
		SubmitterIsAgent: s.role == auth.RoleAgent,
		IdempotencyKey:   s.req.IdempotencyKey,
		Watched:          s.req.Watch,
		Parent:           s.req.Parent,
		MaxAttempts:      max(policy.MaxAttempts, 1),
		NextAttemptAt:    now,
		Deadline:         now.Add(timeout),
		CreatedAt:        now,
		UpdatedAt:        now,
		TraceParent:      telemetry.TraceParent(ctx),
	}
	trace.SpanFromContext(ctx).SetAttributes(telemetry.AttrTaskID.String(task.ID))
	return task
}

// persist stores an admitted task (or flow), claiming its idempotency key,
// links a subtask to its parent and answers the submitter. It returns the
// task when it is new, stored dispatched, nil when it was answered
// otherwise (a duplicate, or a flow, which starts itself).
func (in *intake) persist(ctx context.Context, m *bus.Message, task *Task, req protocol.SubmitRequest) (*Task, error) {
	ctx, span := in.tracer().Start(ctx, "persist")
	defer span.End()
	if req.IdempotencyKey != "" {
		existing, err := in.store.claimIdempotency(ctx, task.Submitter, req.IdempotencyKey, task.ID)
		if err != nil {
			return nil, fmt.Errorf("idempotency claim: %w", err)
		}
		if existing != "" {
			answered, err := in.answerDuplicate(ctx, m, existing)
			if answered || err != nil {
				return nil, err
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
		if err := in.flows.startFlow(ctx, task); err != nil {
			return nil, in.storedByAnother(ctx, m, task, err)
		}
		in.audit.record(ctx, auditEntry{decision: decisionAccepted, taskID: task.ID, event: m.Raw()})
		in.admission.respond(ctx, m, protocol.TypeTaskAccepted, task.ID, protocol.Accepted{TaskID: task.ID, State: task.State})
		return nil, nil
	}
	if err := transition(task, protocol.CauseSubmit, protocol.StateSubmitted); err != nil {
		return nil, err
	}
	// Due at once: the task is stored already dispatched, one write
	// instead of two. Both decisions are still audited, in order.
	if err := in.lifecycle.startAttempt(task, time.Now()); err != nil {
		return nil, err
	}
	if err := in.store.create(ctx, task); err != nil {
		return nil, in.storedByAnother(ctx, m, task, err)
	}
	if task.Parent != "" {
		_, err := in.store.update(ctx, task.Parent, func(p *Task) error {
			p.Subtasks = append(p.Subtasks, task.ID)
			return nil
		})
		if err != nil {
			in.log.WarnContext(ctx, "subtask not linked to its parent", "task", task.ID, "parent", task.Parent, "error", err)
		}
	}
	in.audit.record(ctx, auditEntry{decision: decisionAccepted, taskID: task.ID, event: m.Raw()})
	in.admission.respond(ctx, m, protocol.TypeTaskAccepted, task.ID, protocol.Accepted{TaskID: task.ID, State: task.State})
	return task, nil
}

// answerDuplicate replies to a resubmit with the task its key names. It
// returns false, without answering, when that task does not exist.
func (in *intake) answerDuplicate(ctx context.Context, m *bus.Message, taskID string) (bool, error) {
	task, _, err := in.store.get(ctx, taskID)
	if errors.Is(err, errNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the task of an idempotency key: %w", err)
	}
	in.audit.record(ctx, auditEntry{decision: decisionDuplicate, taskID: taskID, event: m.Raw()})
	in.admission.respond(ctx, m, protocol.TypeTaskAccepted, taskID, protocol.Accepted{TaskID: taskID, State: task.State, Duplicate: true})
	return true, nil
}

// storedByAnother handles a store error: a keyed submit whose task id was
// stored first by a concurrent submit with the same key (a retry that took
// over the claim, here or on another replica) is answered as a duplicate;
// any other error is returned.
func (in *intake) storedByAnother(ctx context.Context, m *bus.Message, task *Task, err error) error {
	if task.IdempotencyKey == "" || !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	answered, rerr := in.answerDuplicate(ctx, m, task.ID)
	if rerr != nil {
		return rerr
	}
	if !answered {
		return err
	}
	return nil
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
func (b *base) maxInput() int {
	return int(min(b.nc.MaxPayload(), bus.DefaultMaxEventSize)) - dispatchOverhead
}
