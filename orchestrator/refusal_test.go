package orchestrator_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestRefusals: unsigned, forged, replayed and wrong-tenant submissions
// each get a clear refusal with a request id, are audited under that id,
// and nothing runs.
func TestRefusals(t *testing.T) {
	h := newHarness(t)
	ran := make(chan string, 8)
	h.agent("acme", "coder", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		ran <- d.TaskID
		return json.RawMessage(`1`), nil
	}, "code")
	creds := h.env.Client(t, "acme", "client")
	nc := h.env.Connect(t, creds, "client")
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	submit := protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"x"`)}
	source := protocol.Source("acme", "client")

	signed := func(src string) *nats.Msg {
		e := agenttest.NewEvent(src, protocol.TypeTaskSubmit, submit)
		if err := signer.Sign(e); err != nil {
			t.Fatal(err)
		}
		msg, err := bus.EncodeBinary(protocol.TasksSubmit, e)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	replayed := signed(source)

	cases := []struct {
		name   string
		msg    func() *nats.Msg
		reason protocol.Reason
	}{
		{"unsigned", func() *nats.Msg {
			msg, _ := bus.EncodeBinary(protocol.TasksSubmit, agenttest.NewEvent(source, protocol.TypeTaskSubmit, submit))
			return msg
		}, "unsigned"},
		{"forged", func() *nats.Msg {
			msg := signed(source)
			msg.Data = []byte(`{"capability":"code","input":"rm -rf /"}`)
			return msg
		}, "bad_signature"},
		{"replayed, first delivery", func() *nats.Msg { return replayed }, ""},
		{"replayed", func() *nats.Msg { return replayed }, "replay"},
		{"wrong tenant", func() *nats.Msg { return signed(protocol.Source("globex", "client")) }, "signer_mismatch"},
	}
	var refusedIDs []string
	for _, tc := range cases {
		msg := tc.msg()
		reply, err := nc.RequestMsg(msg, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		e, err := bus.Decode(reply, bus.DefaultMaxEventSize)
		if err != nil {
			t.Fatalf("%s: reply: %v", tc.name, err)
		}
		if tc.reason == "" {
			if e.Type() != protocol.TypeTaskAccepted {
				t.Fatalf("%s: %s", tc.name, e.Data())
			}
			<-ran // the genuine one runs, once
			continue
		}
		var r protocol.Refused
		json.Unmarshal(e.Data(), &r)
		if e.Type() != protocol.TypeTaskRefused || r.Reason != tc.reason || r.RequestID == "" || r.Message == "" {
			t.Fatalf("%s: %s %s", tc.name, e.Type(), e.Data())
		}
		refusedIDs = append(refusedIDs, r.RequestID)
	}
	select {
	case id := <-ran:
		t.Fatalf("a refused submission ran as %s", id)
	case <-time.After(200 * time.Millisecond):
	}

	// Every refusal is in the audit stream under its request id.
	onc := h.env.Connect(t, h.env.OrchestratorCreds("acme"), "orchestrator")
	js, _ := jetstream.New(onc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, protocol.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	natstest.Eventually(t, 5*time.Second, func() bool {
		info, _ := stream.Info(ctx)
		for seq := uint64(1); info != nil && seq <= info.State.LastSeq; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err == nil && m.Header.Get(protocol.AuditHeaderDecision) == protocol.DecisionRefused {
				audited[m.Header.Get(protocol.AuditHeaderRequestID)] = true
			}
		}
		for _, id := range refusedIDs {
			if !audited[id] {
				return false
			}
		}
		return true
	}, "refusals not all audited: %v", refusedIDs)
}

// TestProgressStreamsInOrder: progress and partial results reach the
// client's watch in the order the agent sent them, before the result.
func TestProgressStreamsInOrder(t *testing.T) {
	h := newHarness(t)
	h.agent("acme", "coder", func(_ context.Context, a *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		for i, step := range []string{"reading", "thinking", "writing"} {
			a.report("progress", protocol.TypeTaskProgress, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt, Message: step})
			if i == 1 {
				a.report("partial", protocol.TypeTaskPartial, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt, Output: json.RawMessage(`"draft"`)})
			}
		}
		return json.RawMessage(`"done"`), nil
	}, "code")
	c := h.client("acme", "client")
	events := c.watch()
	acc := c.submit(protocol.SubmitRequest{Capability: "code", Watch: true})
	c.waitState(acc.TaskID, protocol.StateCompleted)
	want := []string{protocol.TypeTaskDispatched, protocol.TypeTaskRunning,
		protocol.TypeTaskProgress, protocol.TypeTaskProgress, protocol.TypeTaskPartial, protocol.TypeTaskProgress,
		protocol.TypeTaskCompleted}
	natstest.Eventually(t, 5*time.Second, func() bool { return len(events.types(acc.TaskID)) >= len(want) }, "events %v", events.types(acc.TaskID))
	got := events.types(acc.TaskID)
	// Reports travel on different subjects (running, progress, partial,
	// completed); the orchestrator forwards each kind in order. Check the
	// progress messages keep their order and all arrive.
	var progress []string
	events.mu.Lock()
	for _, e := range events.list {
		if e.Type() == protocol.TypeTaskProgress {
			var r protocol.Report
			json.Unmarshal(e.Data(), &r)
			progress = append(progress, r.Message)
		}
	}
	events.mu.Unlock()
	if len(got) != len(want) || len(progress) != 3 || progress[0] != "reading" || progress[1] != "thinking" || progress[2] != "writing" {
		t.Fatalf("events %v, progress %v", got, progress)
	}
}
