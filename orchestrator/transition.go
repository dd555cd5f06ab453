package orchestrator

import (
	"fmt"
	"time"

	"github.com/equilateral-agents/equilateral/protocol"
)

// errIllegal is a move the lifecycle table does not allow from where the
// task stands (most often a race another transition won). Like errSkip,
// nothing is written.
var errIllegal = fmt.Errorf("%w: not a move the lifecycle allows", errSkip)

// transition is the one place a task's state changes: it moves task to
// state to because of cause, if protocol.Lifecycle allows that from the
// task's state, and keeps the attempt's bookkeeping true to the new state.
// Callers run it inside taskStore.update, so an illegal move writes
// nothing.
func transition(task *Task, cause protocol.Cause, to protocol.State) error {
	if !protocol.Allowed(task.State, cause, to) {
		return fmt.Errorf("%w: %s from %q to %s", errIllegal, cause, task.State, to)
	}
	task.State = to
	switch {
	case to.Final():
		task.AttemptDeadline, task.NextAttemptAt = time.Time{}, time.Time{}
	case to == protocol.StateSubmitted:
		// Waiting for a dispatch: no agent holds it, no attempt runs.
		task.Agent, task.Instance = "", ""
		task.AttemptDeadline = time.Time{}
	case to == protocol.StateDispatched:
		// A new attempt: nobody has claimed it yet.
		task.Agent, task.Instance = "", ""
	}
	return nil
}
