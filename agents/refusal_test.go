package agents_test

import (
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestAgentHearsItsReportWasRefused: a report the orchestrator turns
// down (here about a task that does not exist, sent with the agent's own
// creds) reaches the agent's WithRefusals callback with the reason and the
// refused event's id.
func TestAgentHearsItsReportWasRefused(t *testing.T) {
	h := newHarness(t)
	creds := h.env.Agent(t, "acme", "worker", "echo")
	heard := make(chan protocol.Refused, 4)
	h.agent(creds, map[string]agents.HandlerFunc{"echo": echo}, agents.WithRefusals(func(r protocol.Refused) { heard <- r }))

	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	e, err := bus.NewEvent(protocol.Source("acme", "worker"), protocol.TypeTaskCompleted, "nope", protocol.Report{TaskID: "nope", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Sign(e); err != nil {
		t.Fatal(err)
	}
	msg, err := bus.EncodeBinary(protocol.AgentReport("worker", protocol.ReportCompleted), e)
	if err != nil {
		t.Fatal(err)
	}
	nc := h.env.Connect(t, creds, "worker-twin")
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-heard:
		if r.Reason != protocol.ReasonNotFound || r.EventID != e.ID() || r.TaskID != "nope" || r.RequestID == "" {
			t.Fatalf("heard %+v; want not_found about event %s", r, e.ID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not hear its report was refused")
	}
	// The agent still works.
	if v, _ := h.watch(h.submit("echo", map[string]any{"n": 1})); v.State != protocol.StateCompleted {
		t.Fatalf("task ended %s: %s", v.State, v.Error)
	}
}
