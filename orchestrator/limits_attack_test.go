package orchestrator_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestOnePrincipalCannotSpendTheTenantsRate: a client that floods submits
// is held to its own share; another client of the tenant is still served
// at once.
func TestOnePrincipalCannotSpendTheTenantsRate(t *testing.T) {
	h := newAttackHarness(t, orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		RatePerSecond: 1000, Burst: 1000, PrincipalRatePerSecond: 5, PrincipalBurst: 5,
	}}))
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`1`), nil
	}, "code")
	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))
	limited := 0
	for range 30 {
		e := mallory.request(mallory.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"}), 5*time.Second)
		if e != nil && strings.Contains(string(e.Data()), "rate_limited") {
			limited++
		}
	}
	if limited < 20 {
		t.Fatalf("only %d of 30 flooding submits were held back", limited)
	}
	victim := h.client("acme", "victim")
	acc := victim.submit(protocol.SubmitRequest{Capability: "code"})
	victim.waitState(acc.TaskID, protocol.StateCompleted)
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// TestOversizedInputRefusedAtIntake: an input that fits a submit but not
// the dispatch that must carry it is refused at once, saying so, rather
// than failing later as "no agent took the task in time".
func TestOversizedInputRefusedAtIntake(t *testing.T) {
	h := newAttackHarness(t)
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`1`), nil
	}, "code")
	client := h.attacker("acme", "client", h.env.Client(t, "acme", "client"))
	input, _ := json.Marshal(strings.Repeat("a", 1_046_000))
	e := client.request(client.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code", Input: input}), 5*time.Second)
	r := refusedWith(t, e, "too_large")
	if !strings.Contains(r.Message, "max payload") {
		t.Fatalf("the refusal does not say why: %q", r.Message)
	}
	if keys := h.taskKeys("acme"); len(keys) != 0 {
		t.Fatalf("an oversized task was stored: %v", keys)
	}
	h.otherTenantServed()
}

// TestIDsAreUnpredictable: the ids a principal sees (its tasks, its
// refusals' request ids) are 128-bit random values: nothing in one tells
// the next, so another principal's next task id cannot be guessed (with
// NUIDs, consecutive ids shared a 12-character prefix).
func TestIDsAreUnpredictable(t *testing.T) {
	h := newAttackHarness(t)
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`1`), nil
	}, "code")
	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))
	victim := h.client("acme", "victim")
	var seen []string
	for range 10 {
		e := mallory.request(mallory.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"}), 5*time.Second)
		var a protocol.Accepted
		json.Unmarshal(e.Data(), &a)
		seen = append(seen, a.TaskID)
		r := refusedWith(t, mallory.request(mallory.signed(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: "nope"}), 5*time.Second), "not_found")
		seen = append(seen, r.RequestID)
		seen = append(seen, victim.submit(protocol.SubmitRequest{Capability: "code"}).TaskID)
	}
	for i, id := range seen {
		if !protocol.IsID(id) {
			t.Fatalf("id %q is not a 128-bit random id", id)
		}
		for _, other := range seen[:i] {
			if id[:6] == other[:6] {
				t.Fatalf("ids %s and %s share a prefix: ids are sequential", other, id)
			}
		}
	}
}
