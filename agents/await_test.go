package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestClientAwait: client.Await returns each task's end, from the one
// subscription it shares: a task that ended before the first Await (read
// once, as the subscription is new), many awaited at once, a failure; and
// it gives up with its context.
func TestClientAwait(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "echoer", "echo", "fail")
	h.agent(creds, map[string]agents.HandlerFunc{
		"echo": echo,
		"fail": func(context.Context, *agents.Task) (any, error) {
			return nil, agents.Permanent(errors.New("no"))
		},
	}, agents.WithMaxConcurrent(16))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before := h.submit("echo", map[string]any{"n": 0})
	h.waitState(before, protocol.StateCompleted)
	if v, err := h.client.Await(ctx, before); err != nil || v.State != protocol.StateCompleted {
		t.Fatalf("await a task that already ended: %+v, %v", v, err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, _ := json.Marshal(map[string]any{"n": i})
			acc, err := h.client.Submit(ctx, protocol.SubmitRequest{Capability: "echo", Input: raw})
			if err != nil {
				errs <- err
				return
			}
			v, err := h.client.Await(ctx, acc.TaskID)
			want := fmt.Sprintf(`{"echo":{"n":%d}}`, i)
			if err != nil || v.State != protocol.StateCompleted || string(v.Output) != want {
				errs <- fmt.Errorf("task %d: %s %s, %v", i, v.State, v.Output, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	failed := h.submit("fail", map[string]any{})
	if v, err := h.client.Await(ctx, failed); err != nil || v.State != protocol.StateFailed || v.Error == "" {
		t.Fatalf("await a failing task: %+v, %v", v, err)
	}

	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	defer stop()
	if _, err := h.client.Await(short, "no-such-task-ends"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("await with a context that ends: %v", err)
	}
}
