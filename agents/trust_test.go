package agents_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// Attack: a dispatch signed with a key that is not the orchestrator's,
// though it names the orchestrator as its source and travels on the
// orchestrator's own connection (stolen creds used with another key, or a
// compromised relay). At advanced, where agents verify every hop
// (security.VerifyEveryHop), an agent that pins the orchestrator's key
// never runs it; the genuine task after it runs. (Below advanced the
// server's ACLs are what stand between the agent and a forger: docs/security.md.)
func TestPinnedAgentRefusesForgedDispatch(t *testing.T) {
	h := newHarness(t, orchestrator.WithSecurity(security.Settings{Level: security.Advanced, Environment: security.Production}))
	creds := h.env.Agent(t, "acme", "careful", "echo")
	keys, err := bus.NewStoreKeys(h.env.Store)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ran []string
	h.agent(creds, map[string]agents.HandlerFunc{"echo": func(ctx context.Context, task *agents.Task) (any, error) {
		mu.Lock()
		ran = append(ran, task.ID)
		mu.Unlock()
		return "ok", nil
	}}, agents.WithKeys(keys))

	forger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := forger.Seed()
	signer, err := bus.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	nc := h.env.Connect(t, h.env.OrchestratorCreds("acme"), "orchestrator")
	conn, err := bus.NewConn(nc, signer, bus.NewVerifier(keys))
	if err != nil {
		t.Fatal(err)
	}
	forged := agenttest.NewEvent(protocol.Source("acme", "orchestrator"), protocol.TypeTaskDispatched, protocol.Dispatch{
		TaskID: "forged-task", Attempt: 1, Capability: "echo", Input: []byte(`{}`), Deadline: time.Now().Add(time.Minute),
	})
	if err := conn.Publish(context.Background(), protocol.Capability("echo"), forged); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The server delivered the forged dispatch before it saw this submit,
	// so once the genuine task is done the forged one was judged too.
	id := h.submit("echo", map[string]any{})
	h.waitState(id, protocol.StateCompleted)
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 1 || ran[0] != id {
		t.Fatalf("handler ran %v; want only the genuine task %s", ran, id)
	}
}
