package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

func echo(_ context.Context, task *agents.Task) (any, error) {
	var in map[string]any
	if err := task.Decode(&in); err != nil {
		return nil, err
	}
	return map[string]any{"echo": in}, nil
}

func TestTaskRoundTripAndRegistry(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "echoer", "echo", "spare")
	h.agent(creds, map[string]agents.HandlerFunc{"echo": echo}, agents.WithVersion("1.2.3"), agents.WithMaxConcurrent(3))

	v, _ := h.watch(h.submit("echo", map[string]any{"n": 1}))
	if v.State != protocol.StateCompleted || string(v.Output) != `{"echo":{"n":1}}` || v.Agent != "echoer" {
		t.Fatalf("task ended %s by %q with %s (%s)", v.State, v.Agent, v.Output, v.Error)
	}
	hb := h.waitListed("echoer", 1)[0]
	if hb.Status != protocol.AgentUp || hb.Version != "1.2.3" || hb.MaxConcurrent != 3 ||
		len(hb.Capabilities) != 1 || hb.Capabilities[0] != "echo" || hb.LastSeen.IsZero() {
		t.Fatalf("registry entry %+v", hb)
	}
}

func TestHandleRefusesCapabilityTheCredsDoNotAllow(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "narrow", "echo")
	a, err := agents.Connect(context.Background(), h.env.URL, creds)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Handle("code", agents.HandlerFunc(echo))
	if err == nil || !strings.Contains(err.Error(), `do not allow capability "code"`) {
		t.Fatalf("Handle(code) = %v", err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no handlers") {
		t.Fatalf("Run without handlers = %v", err)
	}
}

func TestConnectRefusesClientCreds(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Client(t, "acme", "notanagent")
	if _, err := agents.Connect(context.Background(), h.env.URL, creds); err == nil || !strings.Contains(err.Error(), "not an agent") {
		t.Fatalf("Connect with client creds = %v", err)
	}
}

func TestProgressAndPartialsArriveInOrder(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "streamer", "stream")
	const n = 40
	h.agent(creds, map[string]agents.HandlerFunc{"stream": func(ctx context.Context, task *agents.Task) (any, error) {
		for i := range n {
			if err := task.Progress(ctx, fmt.Sprintf("step %d", i)); err != nil {
				return nil, err
			}
			if err := task.Partial(ctx, map[string]int{"i": i}); err != nil {
				return nil, err
			}
		}
		return map[string]int{"done": n}, nil
	}})

	// Watched from the submit on: progress the agent sends before the
	// client's watch starts is sent too.
	acc, err := h.client.Submit(context.Background(), protocol.SubmitRequest{Capability: "stream", Input: json.RawMessage(`{}`), Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	v, updates := h.watch(acc.TaskID)
	if v.State != protocol.StateCompleted {
		t.Fatalf("task %s: %s", v.State, v.Error)
	}
	var got []string
	for _, u := range updates {
		switch u.Type {
		case protocol.TypeTaskProgress:
			got = append(got, u.Report.Message)
		case protocol.TypeTaskPartial:
			got = append(got, string(u.Report.Output))
		}
	}
	if len(got) != 2*n {
		t.Fatalf("got %d progress and partial events, want %d: %v", len(got), 2*n, got)
	}
	for i := range n {
		if got[2*i] != fmt.Sprintf("step %d", i) || got[2*i+1] != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("out of order at %d: %q, %q", i, got[2*i], got[2*i+1])
		}
	}
}

func TestCancelReachesTheHandler(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "waiter", "wait")
	started := make(chan struct{}, 1)
	cause := make(chan error, 1)
	h.agent(creds, map[string]agents.HandlerFunc{"wait": func(ctx context.Context, task *agents.Task) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	}})

	id := h.submit("wait", map[string]any{})
	<-started
	h.waitState(id, protocol.StateRunning)
	if _, err := h.client.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cause:
		if !errors.Is(err, agents.ErrCancelled) {
			t.Fatalf("handler context ended with %v, want ErrCancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never heard of the cancel")
	}
	if v := h.waitState(id, protocol.StateCancelled); v.Output != nil {
		t.Fatalf("cancelled task has output %s", v.Output)
	}
}

func TestPermanentErrorFailsWithoutRetry(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "picky", "picky")
	var calls atomic.Int32
	h.agent(creds, map[string]agents.HandlerFunc{"picky": func(ctx context.Context, task *agents.Task) (any, error) {
		calls.Add(1)
		var in struct{ N int }
		if err := task.Decode(&in); err != nil {
			return nil, err
		}
		return nil, agents.Permanent(errors.New("n must be positive"))
	}})
	v, _ := h.watch(h.submit("picky", map[string]any{"n": -1}))
	if v.State != protocol.StateFailed || v.Error != "n must be positive" || v.Attempts != 1 || calls.Load() != 1 {
		t.Fatalf("task %s after %d attempts (%d calls): %q", v.State, v.Attempts, calls.Load(), v.Error)
	}
}

func TestTransientErrorIsRetried(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "flaky", "flaky")
	h.agent(creds, map[string]agents.HandlerFunc{"flaky": func(ctx context.Context, task *agents.Task) (any, error) {
		if task.Attempt == 1 {
			return nil, errors.New("upstream busy")
		}
		return map[string]int{"attempt": task.Attempt}, nil
	}})
	v, _ := h.watch(h.submit("flaky", map[string]any{}))
	if v.State != protocol.StateCompleted || v.Attempts != 2 || string(v.Output) != `{"attempt":2}` {
		t.Fatalf("task %s after %d attempts: %s %q", v.State, v.Attempts, v.Output, v.Error)
	}
}

func TestPanickingHandlerFailsTheTask(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "crashy", "crash")
	h.agent(creds, map[string]agents.HandlerFunc{"crash": func(ctx context.Context, task *agents.Task) (any, error) {
		var m map[string]int
		m["boom"] = 1 // nil map: panics
		return nil, nil
	}})
	v, _ := h.watch(h.submit("crash", map[string]any{}))
	if v.State != protocol.StateFailed || v.Error != "the handler crashed" {
		t.Fatalf("task %s: %q", v.State, v.Error)
	}
}

func TestSubtasksRunAndReportToTheirParent(t *testing.T) {
	h := newHarness(t)
	workerCreds := h.env.Agent(t, "acme", "worker", "square")
	bossCreds := h.env.Agent(t, "acme", "boss", "sum")
	h.agent(workerCreds, map[string]agents.HandlerFunc{"square": func(ctx context.Context, task *agents.Task) (any, error) {
		var n int
		if err := task.Decode(&n); err != nil {
			return nil, err
		}
		return n * n, nil
	}})
	var parentSeen atomic.Value
	h.agent(bossCreds, map[string]agents.HandlerFunc{"sum": func(ctx context.Context, task *agents.Task) (any, error) {
		var ns []int
		if err := task.Decode(&ns); err != nil {
			return nil, err
		}
		ids := make([]string, len(ns))
		for i, n := range ns {
			id, err := task.Submit(ctx, "square", n, agents.SubmitOptions{})
			if err != nil {
				return nil, err
			}
			ids[i] = id
		}
		total := 0
		for _, id := range ids {
			v, err := task.Wait(ctx, id)
			if err != nil {
				return nil, err
			}
			if v.State != protocol.StateCompleted {
				return nil, fmt.Errorf("subtask %s %s", id, v.State)
			}
			parentSeen.Store(v.Parent)
			var sq int
			json.Unmarshal(v.Output, &sq)
			total += sq
		}
		return total, nil
	}})

	id := h.submit("sum", []int{1, 2, 3, 4})
	v, _ := h.watch(id)
	if v.State != protocol.StateCompleted || string(v.Output) != "30" {
		t.Fatalf("task %s: %s %q", v.State, v.Output, v.Error)
	}
	if len(v.Subtasks) != 4 || parentSeen.Load() != id {
		t.Fatalf("parent %s lists subtasks %v; a subtask names parent %v", id, v.Subtasks, parentSeen.Load())
	}
}

func TestDrainLetsRunningTasksFinish(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "steady", "slow")
	release := make(chan struct{})
	r := h.agent(creds, map[string]agents.HandlerFunc{"slow": func(ctx context.Context, task *agents.Task) (any, error) {
		<-release
		return "finished", nil
	}}, agents.WithDrainTimeout(20*time.Second))
	id := h.submit("slow", map[string]any{})
	h.waitState(id, protocol.StateRunning)

	r.stop()
	h.waitListed("steady", 1) // still listed, now draining
	natstest.Eventually(t, 5*time.Second, func() bool { return h.waitListed("steady", 1)[0].Status == protocol.AgentDraining },
		"the draining agent never said so")
	close(release)
	if err := r.wait(t); err != nil {
		t.Fatalf("Run after drain = %v", err)
	}
	if v := h.waitState(id, protocol.StateCompleted); string(v.Output) != `"finished"` {
		t.Fatalf("output %s", v.Output)
	}
	h.waitListed("steady", 0) // "stopped" removes it at once
}

func TestDrainHandsBackWorkItCannotFinish(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "shared", "job")
	holding := make(chan struct{}, 1)
	first := h.agent(creds, map[string]agents.HandlerFunc{"job": func(ctx context.Context, task *agents.Task) (any, error) {
		holding <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}}, agents.WithDrainTimeout(200*time.Millisecond))
	id := h.submit("job", map[string]any{})
	<-holding
	h.waitState(id, protocol.StateRunning)

	// A second instance with the same creds can take the work over.
	h.agent(creds, map[string]agents.HandlerFunc{"job": func(ctx context.Context, task *agents.Task) (any, error) {
		return "second instance", nil
	}})
	first.stop()
	if err := first.wait(t); err != nil {
		t.Fatalf("Run after drain = %v", err)
	}
	v := h.waitState(id, protocol.StateCompleted)
	if string(v.Output) != `"second instance"` || v.Attempts != 1 {
		t.Fatalf("handed-back task: %s after %d attempts (a hand-back must not spend one)", v.Output, v.Attempts)
	}
}

func TestBusyAgentHandsBackWhatItCannotClaim(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "single", "one")
	h.agent(creds, map[string]agents.HandlerFunc{"one": func(ctx context.Context, task *agents.Task) (any, error) {
		time.Sleep(150 * time.Millisecond) // the work itself
		return task.ID, nil
	}}, agents.WithMaxConcurrent(1), agents.WithClaimWait(20*time.Millisecond))
	var ids []string
	for range 4 {
		ids = append(ids, h.submit("one", map[string]any{}))
	}
	for _, id := range ids {
		if v := h.waitState(id, protocol.StateCompleted); v.Attempts != 1 {
			t.Fatalf("task %s took %d attempts: hand-backs must not spend attempts", id, v.Attempts)
		}
	}
}

func TestRevokedAgentStopsCleanly(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "doomed", "echo")
	r := h.agent(creds, map[string]agents.HandlerFunc{"echo": echo}, natsOpt)
	if _, err := h.env.Store.Revoke(context.Background(), "acme", "doomed", h.env.Publisher); err != nil {
		t.Fatal(err)
	}
	err := r.wait(t)
	if !errors.Is(err, agents.ErrConnectionClosed) {
		t.Fatalf("Run = %v, want ErrConnectionClosed", err)
	}
	t.Logf("revoked agent stopped: %v", err)
}

// A handler that ignores its context cannot keep a draining agent alive,
// and its task is handed back at the drain timeout, not when it returns.
func TestDrainDoesNotWaitForAStuckHandler(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "stubborn", "stuck")
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	first := h.agent(creds, map[string]agents.HandlerFunc{"stuck": func(ctx context.Context, task *agents.Task) (any, error) {
		<-never // ignores ctx
		return "too late", nil
	}}, agents.WithDrainTimeout(100*time.Millisecond))
	id := h.submit("stuck", map[string]any{})
	h.waitState(id, protocol.StateRunning)

	h.agent(creds, map[string]agents.HandlerFunc{"stuck": func(ctx context.Context, task *agents.Task) (any, error) {
		return "second instance", nil
	}})
	first.stop()
	// The task moves on while the stuck handler is still stuck.
	if v := h.waitState(id, protocol.StateCompleted); string(v.Output) != `"second instance"` || v.Attempts != 1 {
		t.Fatalf("task: %s after %d attempts", v.Output, v.Attempts)
	}
	if err := first.wait(t); err != nil {
		t.Fatalf("Run after drain = %v", err)
	}
}

// TestTaskWithoutInputRuns: a submit that leaves input out is dispatched
// with input null, which the SDK reads like any other input.
func TestTaskWithoutInputRuns(t *testing.T) {
	h := newHarness(t)
	h.agent(h.env.Agent(t, "acme", "echoer", "echo"), map[string]agents.HandlerFunc{"echo": echo})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	acc, err := h.client.Submit(ctx, protocol.SubmitRequest{Capability: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := h.watch(acc.TaskID); v.State != protocol.StateCompleted || string(v.Output) != `{"echo":null}` {
		t.Fatalf("task ended %s with %s (%s)", v.State, v.Output, v.Error)
	}
}
