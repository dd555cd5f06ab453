package orchestrator_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

func echo(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
	return json.RawMessage(`{"echo":` + string(d.Input) + `}`), nil
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t)
	h.agent("acme", "coder", echo, "code")
	c := h.client("acme", "client")
	events := c.watch()
	acc := c.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"hello"`), Watch: true})
	v := c.waitState(acc.TaskID, protocol.StateCompleted)
	if string(v.Output) != `{"echo":"hello"}` || v.Agent != "coder" || v.Attempts != 1 {
		t.Fatalf("completed task: %+v", v)
	}
	want := []string{protocol.TypeTaskDispatched, protocol.TypeTaskRunning, protocol.TypeTaskCompleted}
	natstest.Eventually(t, 5*time.Second, func() bool { return slices.Equal(events.types(acc.TaskID), want) }, "client events %v, want %v", events, want)

	// Not watched: the submitter hears of the end only.
	quiet := c.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"hush"`)})
	c.waitState(quiet.TaskID, protocol.StateCompleted)
	want = []string{protocol.TypeTaskCompleted}
	natstest.Eventually(t, 5*time.Second, func() bool { return slices.Equal(events.types(quiet.TaskID), want) }, "unwatched client events %v, want %v", events.types(quiet.TaskID), want)
}

func TestRetriesThenSucceeds(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.agent("acme", "flaky", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		if calls.Add(1) <= 2 {
			return nil, &protocol.Report{Message: "transient failure"}
		}
		return json.RawMessage(`"ok"`), nil
	}, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code"})
	v := c.waitState(acc.TaskID, protocol.StateCompleted)
	if v.Attempts != 3 || calls.Load() != 3 {
		t.Fatalf("attempts %d, calls %d; want 3", v.Attempts, calls.Load())
	}
}

func TestDeadLetterAfterLastAttempt(t *testing.T) {
	h := newHarness(t)
	h.agent("acme", "broken", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return nil, &protocol.Report{Message: "always fails"}
	}, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code"})
	v := c.waitState(acc.TaskID, protocol.StateDeadLettered)
	if v.Attempts != 3 || v.Error != "always fails" {
		t.Fatalf("dead-lettered task: %+v", v)
	}
}

func TestNotRetryableFails(t *testing.T) {
	h := newHarness(t)
	no := false
	h.agent("acme", "strict", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return nil, &protocol.Report{Message: "bad input", Retryable: &no}
	}, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code"})
	if v := c.waitState(acc.TaskID, protocol.StateFailed); v.Attempts != 1 {
		t.Fatalf("failed task: %+v", v)
	}
}

func TestDeadlineExceeded(t *testing.T) {
	h := newHarness(t)
	cancelled := make(chan struct{}, 1)
	h.agent("acme", "slow", func(ctx context.Context, _ *agent, _ protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		<-ctx.Done() // runs until told to stop
		cancelled <- struct{}{}
		return nil, nil
	}, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code", Timeout: protocol.Duration(500 * time.Millisecond)})
	c.waitState(acc.TaskID, protocol.StateTimedOut)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not cancelled at the deadline")
	}
}

func TestCancelReachesRunningHandler(t *testing.T) {
	h := newHarness(t)
	started := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	h.agent("acme", "worker", func(ctx context.Context, _ *agent, _ protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		started <- struct{}{}
		<-ctx.Done()
		cancelled <- struct{}{}
		return nil, nil
	}, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code"})
	<-started
	c.waitState(acc.TaskID, protocol.StateRunning)
	reply := c.request(protocol.TasksCancel, protocol.TypeTaskCancel, protocol.TaskRef{TaskID: acc.TaskID})
	var v protocol.TaskView
	json.Unmarshal(reply.Data(), &v)
	if v.State != protocol.StateCancelled {
		t.Fatalf("cancel reply: %s", reply.Data())
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the running handler's context was not cancelled")
	}
}

// TestCancelOfAFinishedTaskChangesNothing: cancelling a completed task
// answers the task as it stands, and neither it nor its record changes.
func TestCancelOfAFinishedTaskChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.agent("acme", "coder", echo, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`1`)})
	done := c.waitState(acc.TaskID, protocol.StateCompleted)
	reply := c.request(protocol.TasksCancel, protocol.TypeTaskCancel, protocol.TaskRef{TaskID: acc.TaskID})
	var v protocol.TaskView
	if err := protocol.Decode(reply.Data(), &v); err != nil || reply.Type() != protocol.TypeTaskView {
		t.Fatalf("cancel reply %s %s: %v", reply.Type(), reply.Data(), err)
	}
	if v.State != protocol.StateCompleted || v.Error != "" || string(v.Output) != string(done.Output) {
		t.Fatalf("cancel of a completed task answered %+v", v)
	}
	if now := c.get(acc.TaskID); now.State != protocol.StateCompleted || now.Error != "" || !now.UpdatedAt.Equal(done.UpdatedAt) {
		t.Fatalf("the finished task changed: %+v", now)
	}
}

func TestIdempotentResubmit(t *testing.T) {
	h := newHarness(t)
	agent := h.agent("acme", "coder", echo, "code")
	c := h.client("acme", "client")
	req := protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`1`), IdempotencyKey: "order-42"}
	first := c.submit(req)
	c.waitState(first.TaskID, protocol.StateCompleted)
	second := c.submit(req)
	if second.TaskID != first.TaskID || !second.Duplicate {
		t.Fatalf("resubmit: %+v, first %+v", second, first)
	}
	if agent.count() != 1 {
		t.Fatalf("the agent ran %d times", agent.count())
	}
	// Another client's identical key is its own task.
	other := h.client("acme", "other").submit(req)
	if other.TaskID == first.TaskID {
		t.Fatal("idempotency keys leak between submitters")
	}
}
