package orchestrator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/protocol"
)

// TestIndexKeepsOrderOutOfOrderAndAfterForget: tasks noted out of order
// (as a watch delivers concurrent submits) page newest first, a state
// change lands on the right entry, and forgetting one keeps the rest
// findable.
func TestIndexKeepsOrderOutOfOrderAndAfterForget(t *testing.T) {
	x := newTaskIndex(time.Hour)
	t0 := time.Now()
	order := []int{0, 1, 3, 2, 5, 4, 6, 9, 7, 8}
	for _, n := range order {
		x.note(&Task{ID: fmt.Sprintf("t%d", n), Submitter: "c", CreatedAt: t0.Add(time.Duration(n) * time.Second), State: protocol.StateDispatched})
	}
	x.note(&Task{ID: "t4", Submitter: "c", CreatedAt: t0.Add(4 * time.Second), State: protocol.StateCompleted})
	x.forget("t6")
	ids, next := x.page("c", "", "", 100)
	want := []string{"t9", "t8", "t7", "t5", "t4", "t3", "t2", "t1", "t0"}
	if !slices.Equal(ids, want) || next != "" {
		t.Fatalf("page: %v (next %q), want %v", ids, next, want)
	}
	if done, _ := x.page("c", protocol.StateCompleted, "", 100); !slices.Equal(done, []string{"t4"}) {
		t.Fatalf("completed: %v", done)
	}
	s := x.by["c"]
	for i, e := range s.entries {
		if s.pos[e.id] != i {
			t.Fatalf("entry %s at %d, indexed at %d", e.id, i, s.pos[e.id])
		}
	}
	if len(s.pos) != len(s.entries) {
		t.Fatalf("%d positions for %d entries", len(s.pos), len(s.entries))
	}
}
