package orchestrator_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Attack: mallory, a client of the victim's tenant, asks to watch the
// victim's running task (a get with watch: true and its id). She is told
// "not found", as for any task not hers; the task is not marked watched
// (the victim, who did not ask, still hears only its end) and nothing
// reaches mallory's events. The audit verifies and the other tenant is
// served.
func TestWatchOnlyYourOwnTask(t *testing.T) {
	h := newAttackHarness(t)
	release := make(chan struct{})
	h.agent("acme", "coder", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		<-release
		return json.RawMessage(`"done"`), nil
	}, "code")
	victim := h.client("acme", "client")
	victimEvents := victim.watch()
	acc := victim.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"x"`)})
	victim.waitState(acc.TaskID, protocol.StateRunning)

	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))
	malloryEvents, err := mallory.nc.SubscribeSync(protocol.ClientEvents("mallory"))
	if err != nil {
		t.Fatal(err)
	}
	refusedWith(t, mallory.request(mallory.signed(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: acc.TaskID, Watch: true}), 5*time.Second), protocol.ReasonNotFound)

	close(release)
	victim.waitState(acc.TaskID, protocol.StateCompleted)
	want := []string{protocol.TypeTaskCompleted}
	natstest.Eventually(t, 5*time.Second, func() bool { return slices.Equal(victimEvents.types(acc.TaskID), want) },
		"the victim's events for an unwatched task are not just its end")
	if m, err := malloryEvents.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("mallory heard of the victim's task on %s", m.Subject)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}
