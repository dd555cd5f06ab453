package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestRefusalsGoOnlyToTheSendersInbox: messages whose reply subject is
// the victim's task record ($KV.EQ_TASKS.<id>), the audit stream
// (eq.audit.completed) or fresh KV keys get no answer there, whether they
// fail verification (the attacker's exact message: ce-specversion 1.0,
// body x) or are signed by the attacker; the victim's task keeps its
// revision, no key appears, the audit verifies, the tenant is not locked
// out, and the other tenant is served.
func TestRefusalsGoOnlyToTheSendersInbox(t *testing.T) {
	h := newAttackHarness(t)
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`"victim's result"`), nil
	}, "code")
	victim := h.client("acme", "victim")
	acc := victim.submit(protocol.SubmitRequest{Capability: "code"})
	victim.waitState(acc.TaskID, protocol.StateCompleted)
	before := h.taskEntry("acme", acc.TaskID)

	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))
	targets := []string{"$KV.EQ_TASKS." + acc.TaskID, "eq.audit.completed", "_INBOX_victim.stolen"}
	for i := range 101 {
		targets = append(targets, fmt.Sprintf("$KV.EQ_TASKS.junk%03d", i))
	}
	for _, reply := range targets {
		junk := nats.NewMsg(protocol.TasksSubmit)
		junk.Header.Set("ce-specversion", "1.0")
		junk.Data = []byte("x")
		junk.Reply = reply
		if err := mallory.nc.PublishMsg(junk); err != nil {
			t.Fatal(err)
		}
		signed := mallory.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"})
		signed.Reply = reply
		if err := mallory.nc.PublishMsg(signed); err != nil {
			t.Fatal(err)
		}
		get := mallory.signed(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: acc.TaskID})
		get.Reply = reply
		if err := mallory.nc.PublishMsg(get); err != nil {
			t.Fatal(err)
		}
	}
	// The same junk with mallory's own inbox is answered, with a reason and
	// a request id: refusals do reach their sender. Messages on one
	// subscription are handled in order, so by now every one above was.
	junk := nats.NewMsg(protocol.TasksSubmit)
	junk.Header.Set("ce-specversion", "1.0")
	junk.Header.Set("ce-source", mallory.source())
	junk.Data = []byte("x")
	refusedWith(t, mallory.request(junk, 5*time.Second), "malformed")
	refusedWith(t, mallory.request(mallory.signed(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: acc.TaskID}), 5*time.Second), "not_found")
	// The signed submits went through intake's lanes: wait until each
	// decision is on record.
	natstest.Eventually(t, 10*time.Second, func() bool {
		return slices.ContainsFunc(h.auditRecordsPaced("acme"), func(r auditSummary) bool {
			return r.decision == protocol.DecisionRefused && r.reason == "forbidden" && r.sender == "mallory"
		})
	}, "the signed submits with foreign reply subjects were not refused")

	after := h.taskEntry("acme", acc.TaskID)
	if after.Revision() != before.Revision() || string(after.Value()) != string(before.Value()) {
		t.Fatalf("the victim's task was rewritten: revision %d -> %d", before.Revision(), after.Revision())
	}
	if keys := h.taskKeys("acme"); !slices.Equal(keys, []string{acc.TaskID}) {
		t.Fatalf("the tasks bucket holds %d keys, want only the victim's task: %v", len(keys), keys[:min(len(keys), 5)])
	}
	h.auditVerifies("acme")
	// Not locked out: the victim still submits and runs tasks.
	again := victim.submit(protocol.SubmitRequest{Capability: "code"})
	victim.waitState(again.TaskID, protocol.StateCompleted)
	h.otherTenantServed()
}
