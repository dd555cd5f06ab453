package orchestrator_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestAgentSubmittedFlowReportsOnlyItsEnd: an agent that submits a flow
// hears of the flow's end on eq.ctl.<agent>.subtask, once, and of none of
// the steps the orchestrator derives from it.
func TestAgentSubmittedFlowReportsOnlyItsEnd(t *testing.T) {
	h := newAttackHarness(t)
	h.agent("acme", "echoer", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return d.Input, nil
	}, "echo")
	boss := h.attacker("acme", "boss", h.env.Agent(t, "acme", "boss", "boss"))
	heard := make(chan *nats.Msg, 8)
	if _, err := boss.nc.ChanSubscribe(protocol.ControlSubtask("boss"), heard); err != nil {
		t.Fatal(err)
	}
	boss.nc.Flush()
	flow := &protocol.Flow{Name: "two", Steps: []protocol.FlowStep{
		{Name: "one", Capability: "echo", Input: "${input}"},
		{Name: "two", Capability: "echo"},
	}}
	reply := boss.request(boss.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Flow: flow, Input: json.RawMessage(`"x"`)}), 5*time.Second)
	var acc protocol.Accepted
	if reply == nil || reply.Type() != protocol.TypeTaskAccepted || protocol.Decode(reply.Data(), &acc) != nil {
		t.Fatalf("flow not accepted: %v", reply)
	}
	select {
	case msg := <-heard:
		e, err := bus.Decode(msg, bus.DefaultMaxEventSize)
		var v protocol.TaskView
		if err != nil || protocol.Decode(e.Data(), &v) != nil || v.TaskID != acc.TaskID || v.State != protocol.StateCompleted || string(v.Output) != `"x"` {
			t.Fatalf("the agent heard %v %+v; want its flow completed", err, v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent never heard its flow end")
	}
	select {
	case msg := <-heard:
		e, _ := bus.Decode(msg, bus.DefaultMaxEventSize)
		t.Fatalf("the agent heard of %v too", e.Extensions()[protocol.ExtTaskID])
	case <-time.After(500 * time.Millisecond):
	}
	// The steps are the agent's too: their events never go to a client
	// subject of its name, where an agent cannot listen.
	for _, step := range []string{"one", "two"} {
		var rec struct {
			SubmitterAgent bool `json:"submitter_agent"`
		}
		entry := h.taskEntry("acme", acc.TaskID+"=step="+step)
		if err := json.Unmarshal(entry.Value(), &rec); err != nil || !rec.SubmitterAgent {
			t.Fatalf("step %s is not recorded as an agent's: %s", step, entry.Value())
		}
	}
}
