package orchestrator

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/equilateral-agents/equilateral/protocol"
)

var allStates = []protocol.State{"", protocol.StateSubmitted, protocol.StateDispatched, protocol.StateRunning,
	protocol.StateCompleted, protocol.StateFailed, protocol.StateTimedOut, protocol.StateCancelled, protocol.StateDeadLettered}

// TestTransitionFollowsTheTable: every move the lifecycle table lists is
// made, every other is refused with errSkip (nothing written), and no
// cause leaves a final state.
func TestTransitionFollowsTheTable(t *testing.T) {
	for _, row := range protocol.Lifecycle() {
		for _, from := range allStates {
			for _, to := range allStates {
				task := &Task{State: from, Agent: "a", Instance: "i"}
				err := transition(task, row.Cause, to)
				listed := slices.Contains(row.From, from) && slices.Contains(row.To, to)
				switch {
				case listed && err != nil:
					t.Errorf("%s %q→%s: %v, want it made", row.Cause, from, to, err)
				case !listed && !errors.Is(err, errSkip):
					t.Errorf("%s %q→%s: %v, want it refused", row.Cause, from, to, err)
				case !listed && task.State != from:
					t.Errorf("%s %q→%s: refused but the state changed to %s", row.Cause, from, to, task.State)
				case listed && from.Final():
					t.Errorf("%s leaves the final state %s", row.Cause, from)
				case listed && to == protocol.StateSubmitted && (task.Agent != "" || task.Instance != ""):
					t.Errorf("%s %q→submitted kept the agent %s/%s", row.Cause, from, task.Agent, task.Instance)
				}
			}
		}
	}
}

// TestStateChangesOnlyInTransition: no other code of the orchestrator
// sets a task's state.
func TestStateChangesOnlyInTransition(t *testing.T) {
	assign := regexp.MustCompile(`\.State\s*=[^=]|\bState:\s*protocol\.State`)
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if f == "transition.go" || filepath.Ext(f) != ".go" || regexp.MustCompile(`_test\.go$`).MatchString(f) {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range assign.FindAllIndex(src, -1) {
			line := 1 + len(regexp.MustCompile("\n").FindAll(src[:loc[0]], -1))
			t.Errorf("%s:%d sets a task's state outside transition", f, line)
		}
	}
}
