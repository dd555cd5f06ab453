package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// Output gates: a capability's results are released only after another
// capability approves them (the seed's SecurityReviewer as a gate). When a
// gated task's agent reports success, the task stays running with its
// output held back, and a gate subtask is started; its verdict completes
// or fails the task. Like flows, gates move on through compare-and-set
// steps and a periodic recheck, so a restart loses nothing.

// gateTaskID derives the gate task's id: <task>=gate. Derived ids join
// with '=', which no name (step, capability) and no random id contains,
// so no flow step can take another task's gate id in advance.
func gateTaskID(taskID string) string { return taskID + derivedSep + "gate" }

// gateFor names the capability gating c, if any.
func (b *base) gateFor(c string) string { return b.policy.Capabilities[c].Gate }

// holdForGate is part of a successful report's transition: keep the output
// back and wait for the gate.
func (fl *flows) holdForGate(task *Task, output json.RawMessage) error {
	if err := transition(task, protocol.CauseHold, protocol.StateRunning); err != nil {
		return err
	}
	task.Output = output
	task.Error = ""
	task.GateTask = gateTaskID(task.ID)
	task.AttemptDeadline = time.Now().Add(flowRecheck)
	return nil
}

// advanceGate starts the gate task if it does not exist, or applies its
// verdict once it ended.
func (fl *flows) advanceGate(ctx context.Context, taskID string) {
	task, _, err := fl.store.get(ctx, taskID)
	if err != nil || task.GateTask == "" || task.State.Final() {
		return
	}
	gate, _, err := fl.store.get(ctx, task.GateTask)
	if errors.Is(err, errNotFound) {
		fl.startGate(ctx, task)
		return
	}
	if err != nil || !gate.State.Final() {
		return
	}
	approved, why := verdict(gate)
	ctx, span := fl.startTaskSpan(ctx, "gate verdict", task)
	span.SetAttributes(attribute.Bool("equilateral.gate.approved", approved), attribute.String("equilateral.gate", gate.Capability))
	defer span.End()
	updated, err := fl.store.update(ctx, taskID, func(tk *Task) error {
		if tk.GateTask != gate.ID {
			return errSkip
		}
		if approved {
			return transition(tk, protocol.CauseVerdict, protocol.StateCompleted)
		}
		tk.Error = why
		tk.Output = nil // a rejected result is never released
		return transition(tk, protocol.CauseVerdict, protocol.StateFailed)
	})
	if err != nil {
		fl.logSkip(ctx, "gate verdict", taskID, err)
		return
	}
	fl.lifecycle.recordTransition(ctx, updated, updated.Error, nil)
}

// verdict reads a finished gate task.
func verdict(gate *Task) (bool, string) {
	if gate.State != protocol.StateCompleted {
		return false, fmt.Sprintf("held by the %s gate: the gate task %s (%s)", gate.Capability, gate.State, gate.Error)
	}
	var v protocol.GateVerdict
	if err := protocol.Decode(gate.Output, &v); err != nil {
		return false, fmt.Sprintf("held by the %s gate: its output is not a verdict {\"approved\": ..., \"findings\": [...]}: %v", gate.Capability, err)
	}
	if !v.Approved {
		if len(v.Findings) == 0 {
			return false, "rejected by the " + gate.Capability + " gate"
		}
		return false, "rejected by the " + gate.Capability + " gate: " + strings.Join(v.Findings, "; ")
	}
	return true, ""
}

func (fl *flows) startGate(ctx context.Context, task *Task) {
	gate := fl.gateFor(task.Capability)
	gateCtx, span := fl.startTaskSpan(ctx, "gate "+gate, task)
	span.End()
	input, _ := json.Marshal(protocol.GateRequest{Capability: task.Capability, Input: task.Input, Output: task.Output, TaskID: task.ID})
	now := time.Now().UTC()
	policy := fl.retryPolicy(gate)
	child := &Task{
		ID:               task.GateTask,
		Capability:       gate,
		Input:            input,
		Submitter:        task.Submitter,
		SubmitterIsAgent: task.SubmitterIsAgent,
		Parent:           task.ID,
		TraceParent:      telemetry.TraceParent(gateCtx),
		MaxAttempts:      max(policy.MaxAttempts, 1),
		NextAttemptAt:    now,
		Deadline:         task.Deadline,
		CreatedAt:        now,
		UpdatedAt:        now,
		IsGate:           true,
	}
	if err := transition(child, protocol.CauseSubmit, protocol.StateSubmitted); err != nil {
		return
	}
	if err := fl.store.create(ctx, child); err != nil {
		return // exists (another replica) or unavailable: the recheck retries
	}
	fl.audit.record(ctx, auditEntry{decision: decisionAccepted, reason: "gate " + gate + " for " + task.ID, taskID: child.ID})
	fl.lifecycle.notify(ctx, child)
	fl.lifecycle.dispatch(ctx, child.ID)
}
