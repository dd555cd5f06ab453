package orchestrator_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestRefusedReportsReachTheAgent: an agent whose report or heartbeat is
// turned down hears why on eq.ctl.<agent>.refused, naming the event it
// sent: an unknown member (result for output), a wrong type, an attempt
// that is over, a task that does not exist, a heartbeat interval given as
// a number, a report whose signature no longer holds. None of them changes
// the task, which the agent then completes with a good report.
func TestRefusedReportsReachTheAgent(t *testing.T) {
	h := newAttackHarness(t)
	worker := h.attacker("acme", "worker", h.env.Agent(t, "acme", "worker", "work"))
	refusals := make(chan *nats.Msg, 16)
	if _, err := worker.nc.ChanSubscribe(protocol.ControlRefused("worker"), refusals); err != nil {
		t.Fatal(err)
	}
	dispatches := make(chan *nats.Msg, 1)
	if _, err := worker.nc.ChanSubscribe(protocol.Capability("work"), dispatches); err != nil {
		t.Fatal(err)
	}
	worker.nc.Flush()
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "work", Input: json.RawMessage(`{"n":1}`)})
	var d protocol.Dispatch
	select {
	case msg := <-dispatches:
		e, err := bus.Decode(msg, bus.DefaultMaxEventSize)
		if err != nil || protocol.Decode(e.Data(), &d) != nil {
			t.Fatalf("dispatch unreadable: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no dispatch")
	}
	before := h.taskEntry("acme", acc.TaskID).Revision()

	report := func(kind string, body any) *nats.Msg {
		return worker.signed(protocol.AgentReport("worker", kind), protocol.ReportType(kind), body)
	}
	tampered := report(protocol.ReportCompleted, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt, Output: json.RawMessage(`1`)})
	tampered.Data = []byte(`{"task_id":"` + d.TaskID + `","attempt":1,"output":2}`)
	tests := []struct {
		name   string
		msg    *nats.Msg
		reason protocol.Reason
		says   string
		taskID string
	}{
		{"result for output", report(protocol.ReportCompleted, map[string]any{"task_id": d.TaskID, "attempt": d.Attempt, "result": 42}),
			protocol.ReasonMalformed, "field result: unknown field", d.TaskID},
		{"attempt as a string", report(protocol.ReportRunning, map[string]any{"task_id": d.TaskID, "attempt": "1"}),
			protocol.ReasonMalformed, "field attempt: want an integer", d.TaskID},
		{"attempt that is over", report(protocol.ReportCompleted, protocol.Report{TaskID: d.TaskID, Attempt: 7, Output: json.RawMessage(`1`)}),
			protocol.ReasonStale, "attempt 7 is over", d.TaskID},
		{"instance not a token", report(protocol.ReportRunning, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt, Instance: "a.b"}),
			protocol.ReasonMalformed, "field instance", d.TaskID},
		{"no such task", report(protocol.ReportCompleted, protocol.Report{TaskID: "nope", Attempt: 1}),
			protocol.ReasonNotFound, "no such task", "nope"},
		{"interval as a number", report(protocol.HeartbeatKind, map[string]any{"agent": "worker", "instance": "i1", "status": "up",
			"capabilities": []string{"work"}, "load": 0, "max_concurrent": 1, "started_at": time.Now().UTC(), "interval": 5}),
			protocol.ReasonMalformed, "field interval: want a duration string", ""},
		{"signature broken", tampered, protocol.ReasonBadSignature, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := worker.nc.PublishMsg(tt.msg); err != nil {
				t.Fatal(err)
			}
			var got protocol.Refused
			select {
			case msg := <-refusals:
				e, err := bus.Decode(msg, bus.DefaultMaxEventSize)
				if err != nil || e.Type() != protocol.TypeReportRefused || protocol.Decode(e.Data(), &got) != nil {
					t.Fatalf("refusal unreadable: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the agent was not told its report was refused")
			}
			if got.Reason != tt.reason || !strings.Contains(got.Message, tt.says) || got.RequestID == "" ||
				got.EventID != tt.msg.Header.Get("ce-id") || got.TaskID != tt.taskID {
				t.Fatalf("refusal %+v; want reason %s saying %q about event %s, task %q", got, tt.reason, tt.says, tt.msg.Header.Get("ce-id"), tt.taskID)
			}
		})
	}
	if rev := h.taskEntry("acme", acc.TaskID).Revision(); rev != before {
		t.Fatalf("refused reports changed the task: revision %d, was %d", rev, before)
	}
	for _, kind := range []string{protocol.ReportRunning, protocol.ReportCompleted} {
		if err := worker.nc.PublishMsg(report(kind, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt, Instance: "i1", Output: json.RawMessage(`{"done":true}`)})); err != nil {
			t.Fatal(err)
		}
	}
	if v := c.waitState(acc.TaskID, protocol.StateCompleted); string(v.Output) != `{"done":true}` {
		t.Fatalf("output %s", v.Output)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}
