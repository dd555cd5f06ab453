package orchestrator_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// tagger answers with {"by": <capability>, "got": <input>}, so a chain's
// output shows every step it went through.
func tagger(capability string) agentFunc {
	return func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		out, _ := json.Marshal(map[string]any{"by": capability, "got": d.Input})
		return out, nil
	}
}

func TestDeclarativeChain(t *testing.T) {
	h := newHarness(t)
	for _, c := range []string{"plan", "code", "review"} {
		h.agent("acme", c+"er", tagger(c), c)
	}
	c := h.client("acme", "client")
	flow := &protocol.Flow{Name: "plan-code-review", Steps: []protocol.FlowStep{
		{Name: "plan", Capability: "plan", Input: map[string]any{"feature": "${input.feature}"}},
		{Name: "code", Capability: "code", Input: "${steps.plan.output}"},
		{Name: "review", Capability: "review", Input: map[string]any{"code": "${steps.code.output}", "plan": "${steps.plan.output.got}"}},
	}}
	acc := c.submit(protocol.SubmitRequest{Flow: flow, Input: json.RawMessage(`{"feature":"login"}`)})
	v := c.waitState(acc.TaskID, protocol.StateCompleted)

	var out struct {
		By  string `json:"by"`
		Got struct {
			Code struct {
				By  string `json:"by"`
				Got struct {
					By string `json:"by"`
				} `json:"got"`
			} `json:"code"`
			Plan struct {
				Feature string `json:"feature"`
			} `json:"plan"`
		} `json:"got"`
	}
	if err := json.Unmarshal(v.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.By != "review" || out.Got.Code.By != "code" || out.Got.Code.Got.By != "plan" || out.Got.Plan.Feature != "login" {
		t.Fatalf("chain output %s", v.Output)
	}
	if len(v.Subtasks) != 3 {
		t.Fatalf("flow subtasks %v", v.Subtasks)
	}
	for _, id := range v.Subtasks {
		if sub := c.get(id); sub.Parent != acc.TaskID || sub.State != protocol.StateCompleted {
			t.Fatalf("step %s: %+v", id, sub)
		}
	}
}

func TestChainStepFailureFailsFlow(t *testing.T) {
	h := newHarness(t)
	h.agent("acme", "planner", tagger("plan"), "plan")
	no := false
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return nil, &protocol.Report{Message: "cannot code this", Retryable: &no}
	}, "code")
	c := h.client("acme", "client")
	flow := &protocol.Flow{Steps: []protocol.FlowStep{{Name: "plan", Capability: "plan"}, {Name: "code", Capability: "code"}}}
	acc := c.submit(protocol.SubmitRequest{Flow: flow, Input: json.RawMessage(`1`)})
	v := c.waitState(acc.TaskID, protocol.StateFailed)
	if v.Error == "" {
		t.Fatal("a failed flow must say which step failed")
	}
}

func TestFlowRefusals(t *testing.T) {
	h := newHarness(t)
	h.agent("acme", "planner", tagger("plan"), "plan")
	c := h.client("acme", "client")
	for name, flow := range map[string]*protocol.Flow{
		"unknown capability": {Steps: []protocol.FlowStep{{Name: "a", Capability: "nope"}}},
		"forward reference":  {Steps: []protocol.FlowStep{{Name: "a", Capability: "plan", Input: "${steps.b.output}"}, {Name: "b", Capability: "plan"}}},
		"no steps":           {},
	} {
		reply := c.request(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Flow: flow})
		if reply.Type() != protocol.TypeTaskRefused {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSubtasks: an agent splits its task into subtasks (linked by parent
// id), waits for them on its control subject, and completes with their
// results; cancelling a parent cancels its subtasks.
func TestSubtasks(t *testing.T) {
	h := newHarness(t)
	h.agent("acme", "coder", tagger("code"), "code")

	// A subtask may finish before its submitter starts waiting: each id's
	// channel is made by whichever side comes first.
	var mu sync.Mutex
	finished := map[string]chan protocol.TaskView{}
	channel := func(id string) chan protocol.TaskView {
		mu.Lock()
		defer mu.Unlock()
		if finished[id] == nil {
			finished[id] = make(chan protocol.TaskView, 1)
		}
		return finished[id]
	}
	planner := h.agent("acme", "planner", func(ctx context.Context, a *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		var outputs []json.RawMessage
		for _, part := range []string{"a", "b"} {
			reply, err := a.conn.Request(ctx, protocol.TasksSubmit, agenttest.NewEvent(a.source(), protocol.TypeTaskSubmit,
				protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"` + part + `"`), Parent: d.TaskID}))
			if err != nil || reply.Type() != protocol.TypeTaskAccepted {
				return nil, &protocol.Report{Message: "subtask refused"}
			}
			var acc protocol.Accepted
			json.Unmarshal(reply.Data(), &acc)
			select {
			case v := <-channel(acc.TaskID):
				outputs = append(outputs, v.Output)
			case <-ctx.Done():
				return nil, nil
			}
		}
		out, _ := json.Marshal(outputs)
		return out, nil
	}, "plan")
	// The planner hears about finished subtasks on eq.ctl.planner.subtask.
	_, err := planner.conn.Subscribe(protocol.ControlSubtask("planner"), bus.HandlerFunc(func(_ context.Context, m *bus.Message) {
		var v protocol.TaskView
		json.Unmarshal(m.Event.Data(), &v)
		channel(v.TaskID) <- v
	}))
	if err != nil {
		t.Fatal(err)
	}
	planner.conn.NATS().Flush()

	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "plan", Input: json.RawMessage(`"feature"`)})
	v := c.waitState(acc.TaskID, protocol.StateCompleted)
	if len(v.Subtasks) != 2 {
		t.Fatalf("parent subtasks: %v", v.Subtasks)
	}
	var outputs []map[string]any
	json.Unmarshal(v.Output, &outputs)
	if len(outputs) != 2 || outputs[0]["got"] != "a" || outputs[1]["got"] != "b" {
		t.Fatalf("parent output %s", v.Output)
	}

	// A client cannot claim a parent it is not running.
	reply := c.request(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code", Parent: acc.TaskID})
	if reply.Type() != protocol.TypeTaskRefused {
		t.Fatal("a client attached a subtask to a task it does not run")
	}
}

func TestCancelFlowCancelsSteps(t *testing.T) {
	h := newHarness(t)
	started := make(chan string, 1)
	h.agent("acme", "slow", func(ctx context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		started <- d.TaskID
		<-ctx.Done()
		return nil, nil
	}, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Flow: &protocol.Flow{Steps: []protocol.FlowStep{{Name: "code", Capability: "code"}}}})
	var step string
	select {
	case step = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("step never started")
	}
	c.request(protocol.TasksCancel, protocol.TypeTaskCancel, protocol.TaskRef{TaskID: acc.TaskID})
	c.waitState(acc.TaskID, protocol.StateCancelled)
	c.waitState(step, protocol.StateCancelled)
}
