package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestJunkRefusalsAreStoredAsBoundedCountedRecords: 300 unsigned junk
// submits of 1 MB each (the attack that filled the shared store) leave a
// few small records in the audit stream, not 300 MB; the audit verifies
// and the other tenant is served.
func TestJunkRefusalsAreStoredAsBoundedCountedRecords(t *testing.T) {
	h := newAttackHarness(t)
	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))
	before := h.auditBytes("acme")
	body := []byte(strings.Repeat("x", 1_000_000))
	for range 300 {
		junk := nats.NewMsg(protocol.TasksSubmit)
		junk.Header.Set("ce-specversion", "1.0")
		junk.Data = body
		if err := mallory.nc.PublishMsg(junk); err != nil {
			t.Fatal(err)
		}
	}
	// Messages on one subscription are handled in order: once this one is
	// answered, all 300 were refused.
	sync := nats.NewMsg(protocol.TasksSubmit)
	sync.Header.Set("ce-specversion", "1.0")
	sync.Header.Set("ce-source", mallory.source())
	sync.Data = []byte("x")
	// The flood may overrun the orchestrator's connection (the server cuts
	// a slow consumer, and it reconnects): ask again until answered.
	var answer *event.Event
	natstest.Eventually(t, 30*time.Second, func() bool {
		answer = mallory.request(sync, 5*time.Second)
		return answer != nil
	}, "the flood's sender got no answer")
	refusedWith(t, answer, "malformed")

	var refusals []auditSummary
	natstest.Eventually(t, 10*time.Second, func() bool {
		refusals = slices.DeleteFunc(h.auditRecordsPaced("acme"), func(r auditSummary) bool { return r.decision != protocol.DecisionRefused })
		return len(refusals) > 0
	}, "no refusal on record")
	grown := h.auditBytes("acme") - before
	if grown > 16<<10 || len(refusals) > 4 {
		t.Fatalf("301 junk messages grew the audit by %d bytes in %d records: refusals must be bounded and counted", grown, len(refusals))
	}
	if refusals[0].sender != "(unverified)" {
		t.Fatalf("refusal record %+v", refusals[0])
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// TestHeartbeatFloodIsBounded: an agent's heartbeats for 300 made-up
// instances, first of 900 KiB, then small, leave at most the per-agent
// instance limit in the registry, each holding only the schema's fields.
func TestHeartbeatFloodIsBounded(t *testing.T) {
	h := newAttackHarness(t)
	flooder := h.attacker("acme", "flooder", h.env.Agent(t, "acme", "flooder", "code"))
	beat := func(instance string, extra map[string]any) *nats.Msg {
		hb := map[string]any{
			"agent": "flooder", "instance": instance, "status": "up", "capabilities": []string{"code"},
			"load": 0, "max_concurrent": 1, "interval": "5s", "started_at": time.Now().UTC(),
		}
		for k, v := range extra {
			hb[k] = v
		}
		return flooder.signed(protocol.AgentReport("flooder", protocol.HeartbeatKind), protocol.TypeAgentHeartbeat, hb)
	}
	big := strings.Repeat("v", 900<<10)
	for i := range 300 {
		if err := flooder.nc.PublishMsg(beat(fmt.Sprintf("big%03d", i), map[string]any{"version": big})); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		extra := map[string]any{"version": strings.Repeat("j", 60)}
		if i == 0 {
			extra["capabilities"] = []string{"code", "admin"} // not its own
		}
		if err := flooder.nc.PublishMsg(beat(fmt.Sprintf("i%03d", i), extra)); err != nil {
			t.Fatal(err)
		}
	}
	// A member the schema does not have is refused, not stored.
	if err := flooder.nc.PublishMsg(beat("junk", map[string]any{"junk": strings.Repeat("j", 1000)})); err != nil {
		t.Fatal(err)
	}
	flooder.nc.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	registry, err := h.js("acme").KeyValue(ctx, protocol.AgentsBucket)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		lister, err := registry.ListKeys(ctx)
		if err != nil {
			return 0
		}
		n := 0
		for range lister.Keys() {
			n++
		}
		return n
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		return slices.ContainsFunc(h.auditRecordsPaced("acme"), func(r auditSummary) bool {
			return r.reason == "over_capacity" && r.sender == "flooder"
		})
	}, "the flood met no instance limit")
	natstest.Eventually(t, 10*time.Second, func() bool {
		return slices.ContainsFunc(h.auditRecordsPaced("acme"), func(r auditSummary) bool {
			return r.reason == "malformed" && r.sender == "flooder"
		})
	}, "a heartbeat with an unknown member was not refused")
	if n := count(); n != orchestrator.DefaultMaxInstancesPerAgent {
		t.Fatalf("%d instances listed, want the limit %d", n, orchestrator.DefaultMaxInstancesPerAgent)
	}
	status, err := registry.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.Bytes() > 64<<10 {
		t.Fatalf("the registry holds %d bytes after the flood", status.Bytes())
	}
	entry, err := registry.Get(ctx, "flooder.i001")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(entry.Value()), "junk") {
		t.Fatalf("a field beyond the schema was stored: %.80s", entry.Value())
	}
	if first, err := registry.Get(ctx, "flooder.i000"); err != nil || strings.Contains(string(first.Value()), "admin") {
		t.Fatalf("a capability the agent lacks was listed: %v %.200s", err, first.Value())
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// TestListingIsPagedAndMetered: 300 list requests in a burst are bounded
// by the sender's rate (most refused rate_limited, nothing else slowed);
// a listing is a page of at most MaxListPage, newest first, with a cursor
// that walks every task once; another client's tasks never show.
func TestListingIsPagedAndMetered(t *testing.T) {
	h := newAttackHarness(t, orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		PrincipalRatePerSecond: 50, PrincipalBurst: 50,
	}}))
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`1`), nil
	}, "code")
	victim := h.client("acme", "victim")
	var ids []string
	for range 45 {
		ids = append(ids, victim.submit(protocol.SubmitRequest{Capability: "code"}).TaskID)
	}
	mallory := h.attacker("acme", "mallory", h.env.Client(t, "acme", "mallory"))
	mallory.request(mallory.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"}), 5*time.Second)

	answers := make(chan *nats.Msg, 400)
	sub, err := mallory.nc.ChanSubscribe(protocol.InboxPrefix("mallory")+".flood.*", answers)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	start := time.Now()
	for i := range 300 {
		msg := mallory.signed(protocol.TasksList, protocol.TypeTaskList, protocol.ListRequest{})
		msg.Reply = fmt.Sprintf("%s.flood.%d", protocol.InboxPrefix("mallory"), i)
		if err := mallory.nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	limited, listed := 0, 0
	for range 300 {
		select {
		case m := <-answers:
			if strings.Contains(string(m.Data), "rate_limited") {
				limited++
			} else {
				listed++
				var l protocol.Listing
				json.Unmarshal(m.Data, &l)
				if len(l.Tasks) != 1 {
					t.Fatalf("mallory's listing shows %d tasks, want only its own one", len(l.Tasks))
				}
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of 300 list requests answered", limited+listed)
		}
	}
	// At most the burst and the rate over the time the flood took.
	if bound := 50 + int(50*time.Since(start).Seconds()) + 5; listed > bound || limited < 300-bound {
		t.Fatalf("300 list requests in a burst: %d listed (bound %d), %d rate limited", listed, bound, limited)
	}

	// The victim walks its tasks in pages of 20.
	var walked []string
	after := ""
	for page := 0; ; page++ {
		reply := victim.request(protocol.TasksList, protocol.TypeTaskList, protocol.ListRequest{Limit: 20, After: after})
		var l protocol.Listing
		json.Unmarshal(reply.Data(), &l)
		if len(l.Tasks) > 20 {
			t.Fatalf("page of %d, limit 20", len(l.Tasks))
		}
		for _, v := range l.Tasks {
			walked = append(walked, v.TaskID)
		}
		if l.Next == "" {
			break
		}
		after = l.Next
		if page > 5 {
			t.Fatal("the cursor never ends")
		}
	}
	slices.Reverse(ids) // newest first
	if !slices.Equal(walked, ids) {
		t.Fatalf("paged walk gave %d tasks, want the %d submitted, newest first", len(walked), len(ids))
	}
	refusedWith(t, victim.request(protocol.TasksList, protocol.TypeTaskList, protocol.ListRequest{Limit: protocol.MaxListPage + 1}), "malformed")
	if r := refusedWith(t, victim.request(protocol.TasksList, protocol.TypeTaskList, protocol.ListRequest{State: "bogus"}), "malformed"); !strings.Contains(r.Message, "field state") {
		t.Fatalf("a list of state bogus: %s", r.Message)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}
