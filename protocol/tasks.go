package protocol

import (
	"encoding/json"
	"fmt"
	"time"
)

// Task wire types: the data of the task events. Every one travels as the
// data of a signed CloudEvent (content type application/json).

// State is a task's lifecycle state (docs/protocol.md maps them to A2A).
type State string

const (
	StateSubmitted    State = "submitted"
	StateDispatched   State = "dispatched"
	StateRunning      State = "running"
	StateCompleted    State = "completed"
	StateFailed       State = "failed"
	StateTimedOut     State = "timed_out"
	StateCancelled    State = "cancelled"
	StateDeadLettered State = "dead_lettered"
)

// Final reports whether no transition leaves s.
func (s State) Final() bool {
	switch s {
	case StateCompleted, StateFailed, StateTimedOut, StateCancelled, StateDeadLettered:
		return true
	}
	return false
}

// Extension attributes Equilateral puts on task events (all signed).
const (
	ExtTaskID      = "taskid"      // the task an event is about
	ExtCausationID = "causationid" // the parent task of a subtask
	ExtAttempt     = "attempt"     // dispatch attempt, from 1
	ExtRequestID   = "requestid"   // correlates a refusal with logs and audit
)

// Operation subjects a submitter may call besides TasksSubmit.
const (
	// TasksGet returns one task. eq.tasks.get
	TasksGet = "eq.tasks.get"
	// TasksList lists the caller's tasks. eq.tasks.list
	TasksList = "eq.tasks.list"
	// TasksCancel cancels a task and its subtasks. eq.tasks.cancel
	TasksCancel = "eq.tasks.cancel"
	// TasksInfo says what the orchestrator runs at (its security level),
	// for clients and agents that require a level. eq.tasks.info
	TasksInfo = "eq.tasks.info"
)

// Event types of requests and replies.
const (
	TypeTaskSubmit      = "io.equilateral.task.submit.v1"
	TypeTaskGet         = "io.equilateral.task.get.v1"
	TypeTaskList        = "io.equilateral.task.list.v1"
	TypeTaskCancel      = "io.equilateral.task.cancel.v1"
	TypeTaskAccepted    = "io.equilateral.task.accepted.v1"
	TypeTaskRefused     = "io.equilateral.task.refused.v1"
	TypeTaskView        = "io.equilateral.task.view.v1"
	TypeTaskListing     = "io.equilateral.task.listing.v1"
	TypeControlCancel   = "io.equilateral.control.cancel.v1"
	TypeReportRefused   = "io.equilateral.report.refused.v1"
	TypeAuditDecision   = "io.equilateral.audit.decision.v1"
	TypeSubtaskFinished = "io.equilateral.subtask.finished.v1"
	TypeAgentHeartbeat  = "io.equilateral.agent.heartbeat.v1"
	TypeTaskPartial     = "io.equilateral.task.partial.v1"
	TypeInfoGet         = "io.equilateral.info.get.v1"
	TypeInfoView        = "io.equilateral.info.view.v1"
)

// InfoRequest is the data of io.equilateral.info.get.v1: nothing.
type InfoRequest struct{}

// Info is the answer to io.equilateral.info.get.v1: the security level the
// orchestrator runs at (PRODUCT.md "Progressive security"), its
// environment, and the controls the level switches on. A client or agent
// that requires a level compares SecurityLevel with it: foundation <
// enhanced < advanced < enterprise.
type Info struct {
	SecurityLevel string   `json:"security_level"`
	Environment   string   `json:"environment"`
	Controls      []string `json:"controls"`
}

// SubmitRequest is the data of io.equilateral.task.submit.v1.
type SubmitRequest struct {
	// Capability names what to run: required, except for a flow, where it
	// may be left out or be "flow".
	Capability string `json:"capability,omitempty"`
	// Input is any JSON value, given to the agent as it is (null if left
	// out).
	Input          json.RawMessage `json:"input,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	// Timeout bounds the whole task (all attempts); zero means the
	// capability's default.
	Timeout Duration `json:"timeout,omitempty"`
	// Parent is set by an agent submitting a subtask of the task it runs.
	Parent string `json:"parent,omitempty"`
	// Flow, when set, makes this a flow: Capability must be "flow" and
	// Input is the flow's input.
	Flow *Flow `json:"flow,omitempty"`
	// Watch asks for every event of the task on the submitter's events
	// subject; without it only the final one is sent.
	Watch bool `json:"watch,omitempty"`
}

// Accepted is the reply to a submit.
type Accepted struct {
	TaskID string `json:"task_id"`
	State  State  `json:"state"`
	// Duplicate is true when the idempotency key named an existing task.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Refused says the orchestrator turned a message down: the data of
// io.equilateral.task.refused.v1 (the reply to a request) and of
// io.equilateral.report.refused.v1 (sent to an agent on
// eq.ctl.<agent>.refused about its report or heartbeat). Message is safe
// to show; RequestID finds the details in the audit stream.
type Refused struct {
	Reason    Reason `json:"reason"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	// EventID is the id of the refused event, when it could be read.
	EventID string `json:"event_id,omitempty"`
	// TaskID and Attempt name the task a refused report was about.
	TaskID  string `json:"task_id,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
}

// TaskRef names a task (get and cancel requests).
type TaskRef struct {
	TaskID string `json:"task_id"`
	// Watch (get only) starts sending every event of the task, as a
	// submit's watch does.
	Watch bool `json:"watch,omitempty"`
}

// ListRequest asks for one page of the caller's tasks, newest first.
type ListRequest struct {
	State State `json:"state,omitempty"`
	// Limit is the page size: 1 to MaxListPage (default DefaultListPage).
	Limit int `json:"limit,omitempty"`
	// After is the Next of the previous page; empty for the first page.
	After string `json:"after,omitempty"`
}

// Page sizes of a task listing.
const (
	DefaultListPage = 50
	MaxListPage     = 200
)

// Dispatch is the data of io.equilateral.task.dispatched.v1 on
// eq.cap.<capability>: one attempt of a task for an agent to run.
type Dispatch struct {
	TaskID     string          `json:"task_id"`
	Attempt    int             `json:"attempt"`
	Capability string          `json:"capability"`
	Input      json.RawMessage `json:"input"`
	Deadline   time.Time       `json:"deadline"`
	Parent     string          `json:"parent,omitempty"`
	// ClaimBy is when the attempt is given up unless its agent has said
	// "running" or ended it: an agent that ends sooner need not say
	// "running" at all.
	ClaimBy time.Time `json:"claim_by,omitzero"`
}

// Report is what an agent publishes on eq.agent.<agent>.<kind> about
// an attempt: running, progress, partial, completed or failed (the event
// type says which).
type Report struct {
	TaskID  string `json:"task_id"`
	Attempt int    `json:"attempt"`
	// Instance is the agent instance reporting (its heartbeat's instance
	// id). The first report of an attempt claims it for that instance;
	// later reports from any other instance are refused.
	Instance string          `json:"instance,omitempty"`
	Message  string          `json:"message,omitempty"` // progress text or error
	Output   json.RawMessage `json:"output,omitempty"`  // partial or final result
	// Retryable is false for a failure no retry can fix.
	Retryable *bool `json:"retryable,omitempty"`
}

// TaskView is a task as its submitter may see it.
type TaskView struct {
	TaskID     string          `json:"task_id"`
	Capability string          `json:"capability"`
	State      State           `json:"state"`
	Submitter  string          `json:"submitter"`
	Parent     string          `json:"parent,omitempty"`
	Attempts   int             `json:"attempts"`
	Agent      string          `json:"agent,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Deadline   time.Time       `json:"deadline"`
	Subtasks   []string        `json:"subtasks,omitempty"`
	// TraceID is the W3C trace id of the task's flow (empty when the
	// submit was not traced): look it up in Jaeger.
	TraceID string `json:"trace_id,omitempty"`
}

// Listing answers a list request.
type Listing struct {
	Tasks []TaskView `json:"tasks"`
	// Next, when set, asks for the following page (ListRequest.After).
	Next string `json:"next,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1m30s" in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler. A duration is a string of
// decimal numbers with units, as Go writes them: "300ms", "30s", "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &FieldError{Msg: fmt.Sprintf(`want a duration string such as "30s" or "1m30s", got %s`, printable(clipBytes(b)))}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return &FieldError{Msg: fmt.Sprintf(`want a duration such as "30s" or "1m30s" (units ns, us, ms, s, m, h), got %q`, printable(s))}
	}
	*d = Duration(v)
	return nil
}

func clipBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// Flow is a declarative chain of steps run by the orchestrator: each step
// is a task for a capability, its input built from the flow's input and
// earlier steps' outputs. In a step's input, a string that is exactly
// "${input}" is replaced by the flow's input and "${steps.<name>.output}"
// by that step's output (a trailing ".field" path selects inside it).
type Flow struct {
	Name  string     `json:"name" yaml:"name"`
	Steps []FlowStep `json:"steps" yaml:"steps"`
}

// FlowStep is one step of a Flow.
type FlowStep struct {
	Name       string `json:"name" yaml:"name"`
	Capability string `json:"capability" yaml:"capability"`
	// Input is any JSON value; references are substituted. Empty means
	// the previous step's output (the flow's input for the first step).
	Input   any      `json:"input,omitempty" yaml:"input,omitempty"`
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// CapabilityFlow marks a task that runs a Flow rather than an agent.
const CapabilityFlow = "flow"

// String writes d as Go does: "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }
