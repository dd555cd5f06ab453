package agents_test

import (
	"context"
	"encoding/json"
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

// Attack: while a task runs, a "completed" event with a forged result is
// published on its submitter's events subject, signed with a key that is
// not the orchestrator's though it names the orchestrator as its source
// and travels on the orchestrator's own connection (stolen creds used
// with another key). At advanced a client that adopted the level checks
// every event (verification at every hop): Await never returns the
// forgery, and returns the real result once the agent ends the task.
func TestClientAtAdvancedRefusesForgedEnd(t *testing.T) {
	h := newHarness(t, orchestrator.WithSecurity(security.Settings{Level: security.Advanced, Environment: security.Production}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.client.AdoptLevel(ctx); err != nil {
		t.Fatal(err)
	}
	if h.client.Verifier().TrustsServer() {
		t.Fatal("a client at advanced trusts the server instead of checking signatures")
	}
	release := make(chan struct{})
	creds := h.env.Agent(t, "acme", "slow", "slow")
	h.agent(creds, map[string]agents.HandlerFunc{"slow": func(ctx context.Context, task *agents.Task) (any, error) {
		<-release
		return "genuine", nil
	}})
	id := h.submit("slow", map[string]any{})

	// The first Await subscribes; the forgery comes after.
	type ended struct {
		v   protocol.TaskView
		err error
	}
	done := make(chan ended, 1)
	go func() {
		v, err := h.client.Await(ctx, id)
		done <- ended{v, err}
	}()
	time.Sleep(200 * time.Millisecond)

	forger, _ := nkeys.CreateUser()
	seed, _ := forger.Seed()
	signer, err := bus.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	nc := h.env.Connect(t, h.env.OrchestratorCreds("acme"), "orchestrator")
	conn, err := bus.NewConn(nc, signer, bus.NewVerifier(bus.NewStaticKeys()))
	if err != nil {
		t.Fatal(err)
	}
	forged := agenttest.NewEvent(protocol.Source("acme", "orchestrator"), protocol.TypeTaskCompleted, protocol.TaskView{
		TaskID: id, Capability: "slow", State: protocol.StateCompleted, Output: json.RawMessage(`"forged"`),
	})
	forged.SetExtension(protocol.ExtTaskID, id)
	if err := conn.Publish(ctx, protocol.ClientTask("client", id), forged); err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	select {
	case e := <-done:
		t.Fatalf("Await returned before the task ended: %+v, %v", e.v, e.err)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	e := <-done
	if e.err != nil || e.v.State != protocol.StateCompleted || string(e.v.Output) != `"genuine"` {
		t.Fatalf("Await: %+v, %v; want the genuine result", e.v, e.err)
	}
}
