package protocol

import "slices"

// The task lifecycle as a table: which causes may move a task from which
// states to which, and who causes each. The orchestrator changes a task's
// state only through this table (orchestrator's transition), and
// docs/protocol.md shows the same table.

// Cause is what moves a task from one state to another.
type Cause string

// Every cause of a transition.
const (
	// CauseSubmit creates a task (submitted) or a flow (running).
	CauseSubmit Cause = "submit"
	// CauseDispatch sends a due task to its capability.
	CauseDispatch Cause = "dispatch"
	// CauseClaim is an agent's running report: it holds the attempt.
	CauseClaim Cause = "claim"
	// CauseComplete is the attempt's completed report.
	CauseComplete Cause = "complete"
	// CauseHold is a completed report of a gated capability: the result
	// waits for the gate's verdict.
	CauseHold Cause = "hold"
	// CauseFail is the attempt's failed report: retried while attempts and
	// time remain and the failure is retryable.
	CauseFail Cause = "fail"
	// CauseRelease hands an attempt back unspent: the agent's released
	// report, or a claim over the agent's concurrency bound.
	CauseRelease Cause = "release"
	// CauseExpire: nobody claimed the attempt in time, or it ran too long.
	CauseExpire Cause = "expire"
	// CauseReject ends an attempt whose input cannot be dispatched or
	// whose result cannot be kept (too large, or not the capability's
	// output schema): no retry makes it right.
	CauseReject Cause = "reject"
	// CauseVerdict is the gate task's end: approved or not.
	CauseVerdict Cause = "verdict"
	// CauseStep is the end of a flow's step, or of a step that could not
	// start.
	CauseStep Cause = "step"
	// CauseTimeout: the task's deadline passed.
	CauseTimeout Cause = "timeout"
	// CauseCancel: the submitter cancelled the task, or its parent ended.
	CauseCancel Cause = "cancel"
)

// Transition is one row of the lifecycle table.
type Transition struct {
	Cause Cause
	From  []State // "" is a task that does not exist yet
	To    []State
	By    string // who causes it
}

var unfinished = []State{StateSubmitted, StateDispatched, StateRunning}

var lifecycle = []Transition{
	{CauseSubmit, []State{""}, []State{StateSubmitted, StateRunning}, "a client or an agent (a subtask); a flow starts running"},
	{CauseDispatch, []State{StateSubmitted}, []State{StateDispatched}, "the orchestrator, when the task is due"},
	{CauseClaim, []State{StateDispatched}, []State{StateRunning}, "an agent holding the capability"},
	{CauseComplete, []State{StateDispatched, StateRunning}, []State{StateCompleted}, "the agent instance holding the attempt"},
	{CauseHold, []State{StateDispatched, StateRunning}, []State{StateRunning}, "the agent instance holding the attempt, for a gated capability"},
	{CauseFail, []State{StateDispatched, StateRunning}, []State{StateSubmitted, StateFailed, StateDeadLettered}, "the agent instance holding the attempt"},
	{CauseRelease, []State{StateDispatched, StateRunning}, []State{StateSubmitted}, "the agent instance holding the attempt, or the orchestrator for an agent over its concurrency bound"},
	{CauseExpire, []State{StateDispatched, StateRunning}, []State{StateSubmitted, StateDeadLettered}, "the orchestrator, when the claim or attempt timeout passes"},
	{CauseReject, []State{StateDispatched, StateRunning}, []State{StateFailed}, "the orchestrator"},
	{CauseVerdict, []State{StateRunning}, []State{StateCompleted, StateFailed}, "the gate task's end"},
	{CauseStep, []State{StateRunning}, []State{StateRunning, StateCompleted, StateFailed}, "the end of a flow's step"},
	{CauseTimeout, unfinished, []State{StateTimedOut}, "the orchestrator, when the deadline passes"},
	{CauseCancel, unfinished, []State{StateCancelled}, "the submitter, or the end of the parent task"},
}

// Lifecycle is the table of every allowed transition.
func Lifecycle() []Transition { return slices.Clone(lifecycle) }

// Allowed reports whether cause may move a task from one state to another.
func Allowed(from State, cause Cause, to State) bool {
	for _, t := range lifecycle {
		if t.Cause == cause {
			return slices.Contains(t.From, from) && slices.Contains(t.To, to)
		}
	}
	return false
}
