package orchestrator

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Task is the durable record of one task, one JetStream KV entry per task.
// Every change is a compare-and-set on its revision, so replicas never
// make the same transition twice.
type Task struct {
	ID               string          `json:"id"`
	Capability       string          `json:"capability"`
	Input            json.RawMessage `json:"input"`
	Submitter        string          `json:"submitter"`       // principal name
	SubmitterIsAgent bool            `json:"submitter_agent"` // a subtask: report to eq.ctl, not eq.client
	Parent           string          `json:"parent,omitempty"`
	Subtasks         []string        `json:"subtasks,omitempty"`
	IdempotencyKey   string          `json:"idempotency_key,omitempty"`
	// Watched: the submitter hears of every event of the task, not only
	// its end (SubmitRequest.Watch, or a get with watch).
	Watched bool `json:"watched,omitempty"`
	// TraceParent is the span context of the task's intake (or flow step,
	// or gate): every later span about the task hangs under it.
	TraceParent string `json:"traceparent,omitempty"`
	// AttemptTrace is where the current (or last) attempt was claimed: a
	// retry's dispatch links to it.
	AttemptTrace string `json:"attempt_trace,omitempty"`
	// StartedAt is when the current attempt was claimed.
	StartedAt time.Time `json:"started_at,omitzero"`

	State       protocol.State `json:"state"`
	Attempt     int            `json:"attempt"`
	MaxAttempts int            `json:"max_attempts"`
	Agent       string         `json:"agent,omitempty"`
	// Instance is the agent instance that claimed the current attempt:
	// only it may report on the attempt.
	Instance string `json:"instance,omitempty"`
	// AttemptDeadline is when the current attempt is given up: the claim
	// timeout while dispatched, the attempt timeout while running.
	AttemptDeadline time.Time `json:"attempt_deadline,omitzero"`
	// NextAttemptAt is when a submitted task (new or backing off) is due.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Deadline      time.Time `json:"deadline"`

	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`

	// GateTask is the gate subtask holding this task's output back.
	GateTask string `json:"gate_task,omitempty"`
	// IsGate marks a gate subtask: a gated capability's results are never
	// gated again by it, and an agent submitter is not told about it.
	IsGate bool `json:"is_gate,omitempty"`

	// A flow task runs its steps as subtasks, one after another.
	Flow        *protocol.Flow             `json:"flow,omitempty"`
	FlowInput   json.RawMessage            `json:"flow_input,omitempty"`
	FlowStep    int                        `json:"flow_step,omitempty"` // index of the current step
	FlowOutputs map[string]json.RawMessage `json:"flow_outputs,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// view is the task as its submitter sees it.
func (t *Task) view() protocol.TaskView {
	return protocol.TaskView{
		TaskID:     t.ID,
		Capability: t.Capability,
		State:      t.State,
		Submitter:  t.Submitter,
		Parent:     t.Parent,
		Attempts:   t.Attempt,
		Agent:      t.Agent,
		Output:     t.releasedOutput(),
		Error:      t.Error,
		CreatedAt:  t.CreatedAt,
		UpdatedAt:  t.UpdatedAt,
		Deadline:   t.Deadline,
		Subtasks:   t.Subtasks,
		TraceID:    traceID(t.TraceParent),
	}
}

// clone copies the task deeply enough that changing the copy (as an
// update's change does) leaves t as it was. Flow is never changed.
func (t *Task) clone() *Task {
	c := *t
	c.Subtasks = slices.Clone(t.Subtasks)
	c.FlowOutputs = maps.Clone(t.FlowOutputs)
	return &c
}

// traceID is the trace id inside a W3C traceparent
// ("00-<trace id>-<span id>-<flags>"), or "".
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || parts[1] == strings.Repeat("0", 32) {
		return ""
	}
	return parts[1]
}

// releasedOutput hides a result until the task is final: a result held by
// a gate is not the submitter's to see yet.
func (t *Task) releasedOutput() json.RawMessage {
	if !t.State.Final() {
		return nil
	}
	return t.Output
}
