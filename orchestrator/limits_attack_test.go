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

// TestOversizedResultFailsSayingWhy: a result that, with the task's
// input, cannot be stored or shown to the gate (600 KB each, 1 MiB max
// payload) fails the task at once, saying so, and is never released —
// not retried until "the attempt ran out of time".
func TestOversizedResultFailsSayingWhy(t *testing.T) {
	h := newAttackHarness(t, gatedCode())
	big, _ := json.Marshal(strings.Repeat("b", 600_000))
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return big, nil
	}, "code")
	reviewed := make(chan struct{}, 1)
	h.agent("acme", "reviewer", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		reviewed <- struct{}{}
		return json.RawMessage(`{"approved":true}`), nil
	}, "review")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code", Input: big})
	v := c.waitState(acc.TaskID, protocol.StateFailed)
	// (Under load a claim may time out first, so the attempt count is not
	// checked: the error says the result, not time, ended it.)
	if !strings.Contains(v.Error, "is too large") || len(v.Output) != 0 {
		t.Fatalf("task ended %s with %q after %d attempts (output %d bytes)", v.State, v.Error, v.Attempts, len(v.Output))
	}
	select {
	case <-reviewed:
		t.Fatal("the reviewer approved a result it was never shown")
	default:
	}
	h.auditVerifies("acme")
}
