package orchestrator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/equilateral-agents/equilateral/bus"
)

// TestLanesKeepOrderAndEndIdleGoroutines: messages of one key are handled
// in order, one at a time; a lane's goroutine ends once the lane is idle
// and starts again with the next message; close handles what is queued.
func TestLanesKeepOrderAndEndIdleGoroutines(t *testing.T) {
	l := newLanes(4)
	l.idle = 50 * time.Millisecond
	var mu sync.Mutex
	got := map[string][]int{}
	handled := make(chan struct{}, 1000)
	h := l.wrap(func(_ context.Context, m *bus.Message) {
		var key string
		var n int
		fmt.Sscanf(m.Event.ID(), "%1s-%d", &key, &n)
		mu.Lock()
		got[key] = append(got[key], n)
		mu.Unlock()
		handled <- struct{}{}
	}, func(m *bus.Message) string { return m.Event.ID()[:1] })
	send := func(key string, n int) {
		e := event.New()
		e.SetID(fmt.Sprintf("%s-%d", key, n))
		h(context.Background(), &bus.Message{Event: &e})
	}
	for n := range 100 {
		for _, key := range []string{"a", "b", "c"} {
			send(key, n)
		}
	}
	for range 300 {
		<-handled
	}
	for _, key := range []string{"a", "b", "c"} {
		if want := seq(100); !slices.Equal(got[key], want) {
			t.Fatalf("key %s handled in the order %v", key, got[key])
		}
	}
	running := func() int {
		n := 0
		for _, ln := range l.lanes {
			ln.mu.Lock()
			if ln.running {
				n++
			}
			ln.mu.Unlock()
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for running() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := running(); n != 0 {
		t.Fatalf("%d lanes still run after being idle", n)
	}
	send("a", 100)
	<-handled
	send("a", 101)
	l.close()
	if len(handled) != 1 || !slices.Equal(got["a"], seq(102)) {
		t.Fatalf("after an idle spell and close: %v", got["a"])
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
