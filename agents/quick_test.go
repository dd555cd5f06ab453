package agents_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// reportKinds records, per task, the kinds of report agent sends
// (eq.agent.<agent>.<kind>), seen as the orchestrator user sees them.
func reportKinds(t *testing.T, h *harness, agent string) func(taskID string) []string {
	t.Helper()
	nc := h.env.Connect(t, h.env.OrchestratorCreds("acme"), "observer")
	var mu sync.Mutex
	kinds := map[string][]string{}
	if _, err := nc.Subscribe(protocol.AgentOutput(agent), func(m *nats.Msg) {
		kind := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		if kind == "heartbeat" {
			return
		}
		mu.Lock()
		id := m.Header.Get("ce-" + protocol.ExtTaskID)
		kinds[id] = append(kinds[id], kind)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	return func(taskID string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(kinds[taskID])
	}
}

// TestQuickTasksSkipRunning: a handler that ends within the quick window
// is reported once, with its end; one that runs longer, reports progress
// or has no quick window says "running" first. Every task completes.
func TestQuickTasksSkipRunning(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name    string
		handler agents.HandlerFunc
		opts    []agents.Option
		want    []string
	}{
		{"quick", echo, nil, []string{"completed"}},
		{"slow", func(ctx context.Context, task *agents.Task) (any, error) {
			time.Sleep(2 * agents.DefaultQuickWindow)
			return "late", nil
		}, nil, []string{"running", "completed"}},
		{"talker", func(ctx context.Context, task *agents.Task) (any, error) {
			return "said", task.Progress(ctx, "starting")
		}, nil, []string{"running", "progress", "completed"}},
		{"eager", echo, []agents.Option{agents.WithQuickWindow(0)}, []string{"running", "completed"}},
	}
	for _, c := range cases {
		capability := "cap" + c.name
		creds := h.env.Agent(t, "acme", c.name, capability)
		kinds := reportKinds(t, h, c.name)
		h.agent(creds, map[string]agents.HandlerFunc{capability: c.handler}, c.opts...)
		id := h.submit(capability, map[string]any{"n": 1})
		if v := h.waitState(id, protocol.StateCompleted); v.Agent != c.name || v.Attempts != 1 {
			t.Fatalf("%s: task %+v", c.name, v)
		}
		natstest.Eventually(t, 5*time.Second, func() bool { return slices.Equal(kinds(id), c.want) },
			"%s: reports %v, want %v", c.name, kinds(id), c.want)
	}
}
