package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/agents"
	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// TestOrchestratorAnnouncesItsLevel: an orchestrator at advanced in
// production says so on eq.tasks.info (with the controls of advanced and
// none of enterprise) and heads every audit record with its level; a
// client or an agent that requires enterprise refuses to work with it,
// one that requires advanced works.
func TestOrchestratorAnnouncesItsLevel(t *testing.T) {
	h := newHarness(t, orchestrator.WithSecurity(security.Settings{Level: security.Advanced, Environment: security.Production}))
	clientCreds := h.env.Client(t, "acme", "client")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl, err := eqclient.Connect(ctx, h.env.URL, clientCreds, eqclient.WithKeys(h.keys), eqclient.WithMinimumLevel(security.Advanced))
	if err != nil {
		t.Fatalf("a client requiring advanced: %v", err)
	}
	defer cl.Close()
	info, err := cl.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.SecurityLevel != "advanced" || info.Environment != "production" {
		t.Fatalf("info: %+v", info)
	}
	if !slices.Contains(info.Controls, string(security.TLSEverywhere)) || !slices.Contains(info.Controls, string(security.Audit)) ||
		slices.Contains(info.Controls, string(security.PayloadEncryption)) {
		t.Errorf("advanced announces controls %v", info.Controls)
	}

	// Below what they require: the client does not connect, the agent
	// does not run and takes nothing.
	if _, err := eqclient.Connect(ctx, h.env.URL, clientCreds, eqclient.WithMinimumLevel(security.Enterprise)); !errors.Is(err, security.ErrBelowRequired) {
		t.Errorf("a client requiring enterprise: %v, want ErrBelowRequired", err)
	}
	agentCreds := h.env.Agent(t, "acme", "coder", "code")
	a, err := agents.Connect(ctx, h.env.URL, agentCreds, agents.WithKeys(h.keys), agents.WithMinimumLevel(security.Enterprise))
	if err != nil {
		t.Fatal(err)
	}
	var ran bool
	a.HandleFunc("code", func(context.Context, *agents.Task) (any, error) { ran = true; return "done", nil })
	accepted, err := cl.Submit(ctx, protocol.SubmitRequest{Capability: "code"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(ctx); !errors.Is(err, security.ErrBelowRequired) {
		t.Errorf("an agent requiring enterprise: Run %v, want ErrBelowRequired", err)
	}
	if ran {
		t.Error("the agent that refused the orchestrator ran a task")
	}
	if v, err := cl.Get(ctx, accepted.TaskID); err != nil || v.State.Final() {
		t.Errorf("the task ended without an agent: %+v %v", v, err)
	}

	// Every audit record carries the level.
	onc := h.env.Connect(t, h.env.OrchestratorCreds("acme"), "orchestrator")
	js, _ := jetstream.New(onc)
	stream, err := js.Stream(ctx, protocol.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stream.Info(ctx)
	if err != nil || st.State.LastSeq == 0 {
		t.Fatalf("audit stream: %v, %+v", err, st)
	}
	for seq := uint64(1); seq <= st.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if got := m.Header.Get(protocol.AuditHeaderSecurityLevel); got != "advanced" {
			t.Errorf("audit record %d (%s): %s %q", seq, m.Header.Get(protocol.AuditHeaderDecision), protocol.AuditHeaderSecurityLevel, got)
		}
	}
}

// TestLevelChangesAreAudited: the first start records its level, a start
// at another level or environment records the change (from, to, who), a
// start at the same one records nothing, and the records verify.
func TestLevelChangesAreAudited(t *testing.T) {
	enhanced := security.Settings{Level: security.Enhanced, Environment: security.Development}
	h := newHarness(t, orchestrator.WithSecurity(enhanced), orchestrator.WithSecuritySource("the test"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := h.js("acme")
	levelRecords := func() int {
		stream, err := js.Stream(ctx, protocol.AuditStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(protocol.AuditSubject(protocol.DecisionLevelChanged)))
		if err != nil {
			t.Fatal(err)
		}
		return int(subjectCount(info, protocol.AuditSubject(protocol.DecisionLevelChanged)))
	}
	first, _, ok, err := orchestrator.LastLevel(ctx, js)
	if err != nil || !ok || first.From != "" || first.To != "enhanced" || first.Environment != "development" || !strings.Contains(first.By, "the test") {
		t.Fatalf("first start: %+v, %v, %v", first, ok, err)
	}

	h.stopOrchestrator()
	h.startOrchestrator(orchestrator.WithSecurity(enhanced))
	if n := levelRecords(); n != 1 {
		t.Errorf("a restart at the same level: %d level records, want 1", n)
	}

	h.stopOrchestrator()
	h.startOrchestrator(orchestrator.WithSecurity(security.Settings{Level: security.Advanced, Environment: security.Production}))
	change, _, _, err := orchestrator.LastLevel(ctx, js)
	if err != nil || change.From != "enhanced" || change.To != "advanced" || change.FromEnvironment != "development" || change.Environment != "production" {
		t.Fatalf("the change: %+v, %v", change, err)
	}
	if n := levelRecords(); n != 2 {
		t.Errorf("after one change: %d level records, want 2", n)
	}
	h.auditVerifies("acme")
}

// subjectCount is how many messages of the stream are on subject.
func subjectCount(info *jetstream.StreamInfo, subject string) uint64 {
	return info.State.Subjects[subject]
}

// TestInfoRequestsAreCheckedLikeEveryRequest: eq.tasks.info answers only
// on the sender's own inbox (a signed info aimed at the victim's inbox
// reaches nobody), refuses a body with unknown members, another event
// type and an unsigned request, and answers a signed one with the level.
func TestInfoRequestsAreCheckedLikeEveryRequest(t *testing.T) {
	h := newAttackHarness(t, orchestrator.WithSecurity(advancedSettings))
	victimCreds := h.env.Client(t, "acme", "victim")
	victimInbox, err := h.env.Connect(t, victimCreds, "victim").SubscribeSync(protocol.Inbox("victim"))
	if err != nil {
		t.Fatal(err)
	}
	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))

	aimed := mallory.signed(protocol.TasksInfo, protocol.TypeInfoGet, protocol.InfoRequest{})
	aimed.Reply = "_INBOX_victim.stolen"
	if err := mallory.nc.PublishMsg(aimed); err != nil {
		t.Fatal(err)
	}
	refusedWith(t, mallory.request(mallory.signed(protocol.TasksInfo, protocol.TypeInfoGet, map[string]any{"level": "enterprise"}), 5*time.Second), "malformed")
	refusedWith(t, mallory.request(mallory.signed(protocol.TasksInfo, protocol.TypeTaskGet, protocol.TaskRef{TaskID: "x"}), 5*time.Second), "malformed")
	unsigned := nats.NewMsg(protocol.TasksInfo)
	unsigned.Header.Set("ce-specversion", "1.0")
	unsigned.Header.Set("ce-source", mallory.source())
	unsigned.Data = []byte("{}")
	if reply := mallory.request(unsigned, 5*time.Second); reply == nil || reply.Type() != protocol.TypeTaskRefused {
		t.Errorf("an unsigned info request: %v", reply)
	}

	answer := mallory.request(mallory.signed(protocol.TasksInfo, protocol.TypeInfoGet, protocol.InfoRequest{}), 5*time.Second)
	var info protocol.Info
	if answer == nil || answer.Type() != protocol.TypeInfoView || json.Unmarshal(answer.Data(), &info) != nil || info.SecurityLevel != "advanced" {
		t.Fatalf("a signed info request: %v", answer)
	}
	// Requests on one subscription are handled in order: the aimed one
	// was answered (or not) before the last.
	if m, err := victimInbox.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("the victim's inbox got %q from an info request it never sent", m.Data)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// TestAuditFollowsTheLevel: at foundation the audit stream keeps a usage
// record of each accepted task (what `security assess` counts) and its
// level record, not the decisions after; at enhanced every decision of
// the task is on record. Both streams verify.
func TestAuditFollowsTheLevel(t *testing.T) {
	for _, c := range []struct {
		level security.Level
		want  []string
	}{
		{security.Foundation, []string{protocol.DecisionAccepted}},
		// The harness's agent says "running" before its result.
		{security.Enhanced, []string{protocol.DecisionAccepted, protocol.DecisionDispatched, string(protocol.StateRunning), string(protocol.StateCompleted)}},
	} {
		t.Run(c.level.String(), func(t *testing.T) {
			h := newHarness(t, orchestrator.WithSecurity(security.Settings{Level: c.level, Environment: security.Development}))
			h.agent("acme", "coder", echo, "code")
			cl := h.client("acme", "client")
			acc := cl.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"x"`)})
			cl.waitState(acc.TaskID, protocol.StateCompleted)
			var got []string
			levelRecorded := false
			natstest.Eventually(t, 5*time.Second, func() bool {
				got, levelRecorded = nil, false
				for _, r := range h.auditRecordsPaced("acme") {
					if r.taskID == acc.TaskID {
						got = append(got, r.decision)
					}
					levelRecorded = levelRecorded || r.decision == protocol.DecisionLevelChanged
				}
				return slices.Equal(got, c.want) && levelRecorded
			}, "%s: the task's records are not %v, or the level is not recorded", c.level, c.want)
			h.auditVerifies("acme")
		})
	}
}
