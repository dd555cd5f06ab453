package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// Flows run in the orchestrator: the flow is a task whose steps are
// subtasks, started one after another as each completes. Every step of
// progress is a compare-and-set on the flow's record and step ids are
// derived from the flow's, so a replica or a restart picks up a flow where
// it stood, and a step is never started twice.

// flows runs flows and output gates: each moves on as its subtasks end.
type flows struct {
	*base
	lifecycle *lifecycle
}

// flowRecheck is how often the scheduler looks at a running flow, in case
// the orchestrator that finished a step died before moving the flow on.
const flowRecheck = time.Second

// derivedSep joins a task id and what is derived from it. Names match
// [a-z0-9][a-z0-9_-]* and ids from protocol.NewID are [a-z2-7]: neither
// holds '=', so a derived id names exactly one thing.
const derivedSep = "="

// derived reports whether id is a flow step's or a gate's.
func derived(id string) bool { return strings.Contains(id, derivedSep) }

// flowStepID derives a step's task id: <flow>=step=<name>.
func flowStepID(flowID, step string) string { return flowID + derivedSep + "step" + derivedSep + step }

// startFlow records a new flow and starts its first step.
func (fl *flows) startFlow(ctx context.Context, task *Task) error {
	if err := transition(task, protocol.CauseSubmit, protocol.StateRunning); err != nil {
		return err
	}
	task.Attempt = 1
	task.FlowOutputs = map[string]json.RawMessage{}
	task.AttemptDeadline = time.Now().Add(flowRecheck)
	if err := fl.store.create(ctx, task); err != nil {
		return err
	}
	fl.advanceFlow(ctx, task.ID)
	return nil
}

// advanceFlow moves a flow on from wherever it stands: start the current
// step if it does not exist, record its result when it ends, then start
// the next step or finish the flow.
func (fl *flows) advanceFlow(ctx context.Context, flowID string) {
	for {
		flow, _, err := fl.store.get(ctx, flowID)
		if err != nil || flow.Flow == nil || flow.State.Final() {
			return
		}
		step := flow.Flow.Steps[flow.FlowStep]
		stepID := flowStepID(flow.ID, step.Name)
		child, _, err := fl.store.get(ctx, stepID)
		if errors.Is(err, errNotFound) {
			fl.startFlowStep(ctx, flow, step)
			return
		}
		if err != nil || !child.State.Final() {
			return
		}
		last := flow.FlowStep == len(flow.Flow.Steps)-1
		updated, err := fl.store.update(ctx, flowID, func(f *Task) error {
			if f.FlowStep != flow.FlowStep {
				return errSkip
			}
			if child.State != protocol.StateCompleted {
				f.Error = fmt.Sprintf("step %s %s: %s", step.Name, child.State, child.Error)
				return transition(f, protocol.CauseStep, protocol.StateFailed)
			}
			if f.FlowOutputs == nil {
				f.FlowOutputs = map[string]json.RawMessage{}
			}
			f.FlowOutputs[step.Name] = child.Output
			if last {
				f.Output = child.Output
				return transition(f, protocol.CauseStep, protocol.StateCompleted)
			}
			if err := transition(f, protocol.CauseStep, protocol.StateRunning); err != nil {
				return err
			}
			f.FlowStep++
			return nil
		})
		if errors.Is(err, errSkip) {
			continue // someone else moved it: look again
		}
		if err != nil {
			fl.log.WarnContext(ctx, "flow not advanced", "task", flowID, "error", err)
			return
		}
		if updated.State.Final() {
			fl.lifecycle.recordTransition(ctx, updated, updated.Error, nil)
			return
		}
	}
}

// startFlowStep creates and dispatches the subtask of one step.
func (fl *flows) startFlowStep(ctx context.Context, flow *Task, step protocol.FlowStep) {
	input, err := flowInput(flow, step)
	if err != nil {
		fl.failFlow(ctx, flow.ID, fmt.Sprintf("step %s: %v", step.Name, err))
		return
	}
	now := time.Now().UTC()
	policy := fl.retryPolicy(step.Capability)
	deadline := flow.Deadline
	if step.Timeout > 0 {
		deadline = minTime(deadline, now.Add(time.Duration(step.Timeout)))
	}
	// The step's own span: its dispatches and retries hang under it.
	stepCtx, span := fl.startTaskSpan(ctx, "flow step "+step.Name, flow)
	span.SetAttributes(attribute.String("equilateral.flow.step", step.Name))
	span.End()
	child := &Task{
		ID:               flowStepID(flow.ID, step.Name),
		Capability:       step.Capability,
		Input:            input,
		Submitter:        flow.Submitter,
		SubmitterIsAgent: flow.SubmitterIsAgent,
		Parent:           flow.ID,
		TraceParent:      telemetry.TraceParent(stepCtx),
		MaxAttempts:      max(policy.MaxAttempts, 1),
		NextAttemptAt:    now,
		Deadline:         deadline,
		CreatedAt:        now,
		UpdatedAt:        now,
	}
	if err := transition(child, protocol.CauseSubmit, protocol.StateSubmitted); err != nil {
		return
	}
	if err := fl.store.create(ctx, child); err != nil {
		return // exists already (another replica started it) or unavailable: the recheck retries
	}
	_, err = fl.store.update(ctx, flow.ID, func(f *Task) error {
		if slices.Contains(f.Subtasks, child.ID) {
			return errSkip
		}
		f.Subtasks = append(f.Subtasks, child.ID)
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) {
		fl.log.WarnContext(ctx, "flow step not linked", "task", flow.ID, "step", step.Name, "error", err)
	}
	fl.audit.record(ctx, auditEntry{decision: decisionAccepted, reason: "flow step " + step.Name, taskID: child.ID})
	fl.lifecycle.notify(ctx, child)
	fl.lifecycle.dispatch(ctx, child.ID)
}

func (fl *flows) failFlow(ctx context.Context, flowID, why string) {
	task, err := fl.store.update(ctx, flowID, func(f *Task) error {
		f.Error = why
		return transition(f, protocol.CauseStep, protocol.StateFailed)
	})
	if err == nil {
		fl.lifecycle.recordTransition(ctx, task, why, nil)
	}
}

// recheck is the scheduler's periodic look at a running flow or a result
// held for its gate, in case the orchestrator that ended its subtask died
// before moving it on: one replica takes the look (the compare-and-set on
// the next recheck time) and advances it.
func (fl *flows) recheck(ctx context.Context, id string, advance func(context.Context, string)) {
	_, err := fl.store.update(ctx, id, func(f *Task) error {
		if f.State.Final() || time.Now().Before(f.AttemptDeadline) {
			return errSkip
		}
		f.AttemptDeadline = time.Now().Add(flowRecheck)
		return nil
	})
	if err != nil {
		return // another replica has it, or it ended
	}
	advance(ctx, id)
}

// flowInput builds a step's input: references replaced by the flow's input
// or earlier outputs; no input means the previous step's output.
func flowInput(flow *Task, step protocol.FlowStep) (json.RawMessage, error) {
	if step.Input == nil {
		if flow.FlowStep == 0 {
			return flow.FlowInput, nil
		}
		return flow.FlowOutputs[flow.Flow.Steps[flow.FlowStep-1].Name], nil
	}
	resolved, err := substitute(step.Input, func(source string, path []string) (any, error) {
		raw := flow.FlowInput
		if source != "input" {
			out, ok := flow.FlowOutputs[source]
			if !ok {
				return nil, fmt.Errorf("step %s has no output", source)
			}
			raw = out
		}
		var v any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, err
			}
		}
		for _, field := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s has no field %q", source, field)
			}
			v = m[field]
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(resolved)
}

func substitute(v any, lookup func(string, []string) (any, error)) (any, error) {
	switch x := v.(type) {
	case string:
		if source, path, ok := protocol.FlowReference(x); ok {
			return lookup(source, path)
		}
		return x, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := substitute(e, lookup)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := substitute(e, lookup)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}
