package orchestrator_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// TestReplayRefusedAfterRestartAndAcrossReplicas: a signed submit,
// captured and sent again after the orchestrator restarted, and then
// eight more times to two replicas at once, is refused as a replay every
// time: one task exists.
func TestReplayRefusedAfterRestartAndAcrossReplicas(t *testing.T) {
	h := newAttackHarness(t, orchestrator.WithSecurity(advancedSettings))
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`1`), nil
	}, "code")
	client := h.attacker("acme", "client", h.env.Client(t, "acme", "client"))
	captured := client.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"})
	first := client.request(captured, 5*time.Second)
	if first == nil || first.Type() != protocol.TypeTaskAccepted {
		t.Fatalf("the original submit: %v", first)
	}

	h.stopOrchestrator()
	h.startOrchestrator()
	refusedWith(t, client.request(captured, 5*time.Second), "replay")

	second := orchtest.Start(t, h.env, orchestrator.WithDefaultRetryPolicy(fastPolicy()), orchestrator.WithSecurity(advancedSettings))
	defer second()
	for range 8 {
		refusedWith(t, client.request(captured, 5*time.Second), "replay")
	}
	if keys := h.taskKeys("acme"); len(keys) != 1 {
		t.Fatalf("%d tasks from one submit replayed 9 times: %v", len(keys), keys)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// advancedSettings run an orchestrator at advanced, where replay
// protection is durable.
var advancedSettings = security.Settings{Level: security.Advanced, Environment: security.Production}

// TestReplayBelowAdvancedIsRefusedInMemoryOnly: at enhanced, durable
// replay protection (a control of advanced) is off: a replayed submit is
// refused by the replica that saw it, from memory, but once that replica
// has restarted the same captured submit makes a second task. This is
// the difference the level makes (docs/security.md, "Levels").
func TestReplayBelowAdvancedIsRefusedInMemoryOnly(t *testing.T) {
	h := newAttackHarness(t, orchestrator.WithSecurity(security.Settings{Level: security.Enhanced, Environment: security.Development}))
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`1`), nil
	}, "code")
	client := h.attacker("acme", "client", h.env.Client(t, "acme", "client"))
	captured := client.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"})
	if first := client.request(captured, 5*time.Second); first == nil || first.Type() != protocol.TypeTaskAccepted {
		t.Fatalf("the original submit: %v", first)
	}
	refusedWith(t, client.request(captured, 5*time.Second), "replay")

	h.stopOrchestrator()
	h.startOrchestrator()
	if again := client.request(captured, 5*time.Second); again == nil || again.Type() != protocol.TypeTaskAccepted {
		t.Fatalf("after a restart at enhanced, the replay: %v (durable replay protection is advanced's)", again)
	}
	if keys := h.taskKeys("acme"); len(keys) != 2 {
		t.Fatalf("%d tasks, want 2 (the original and the replay after the restart)", len(keys))
	}
	h.auditVerifies("acme")
}

// TestSignedGetCannotBeReplayedAsCancel: a client's signed get, captured
// and republished on eq.tasks.cancel by another client, is refused (the
// subject takes only cancel events); the victim's task runs on.
func TestSignedGetCannotBeReplayedAsCancel(t *testing.T) {
	h := newAttackHarness(t)
	release := make(chan struct{})
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		<-release
		return json.RawMessage(`"finished"`), nil
	}, "code")
	victim := h.attacker("acme", "victim", h.env.Client(t, "acme", "victim"))
	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))
	acc := victim.request(victim.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"}), 5*time.Second)
	var a protocol.Accepted
	json.Unmarshal(acc.Data(), &a)

	get := victim.signed(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: a.TaskID})
	if e := victim.request(get, 5*time.Second); e == nil || e.Type() != protocol.TypeTaskView {
		t.Fatalf("the victim's get: %v", e)
	}
	replayed := get
	replayed.Subject = protocol.TasksCancel
	replayed.Reply = ""
	if err := mallory.nc.PublishMsg(replayed); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		return slices.ContainsFunc(h.auditRecordsPaced("acme"), func(r auditSummary) bool {
			return r.decision == protocol.DecisionRefused && r.reason == "malformed" && r.sender == "victim"
		})
	}, "the get replayed as a cancel was not refused")
	close(release)
	natstest.Eventually(t, 10*time.Second, func() bool {
		e := victim.request(victim.signed(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: a.TaskID}), 5*time.Second)
		var v protocol.TaskView
		json.Unmarshal(e.Data(), &v)
		if v.State == protocol.StateCancelled {
			t.Fatal("the replayed get cancelled the victim's task")
		}
		return v.State == protocol.StateCompleted
	}, "the victim's task did not complete")
	h.auditVerifies("acme")
	h.otherTenantServed()
}
