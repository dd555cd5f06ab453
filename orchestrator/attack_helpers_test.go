package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Helpers for the attack tests: an attacker holding ordinary creds, who
// builds and signs its own messages and sends them on the wire as they
// are; and checks that nothing changed for its victims.

// attacker is a principal with its own creds, connection and signer.
type attacker struct {
	h      *harness
	tenant string
	name   string
	nc     *nats.Conn
	signer *bus.Signer
}

func (h *harness) attacker(tenant, name, creds string) *attacker {
	h.t.Helper()
	nc := h.env.Connect(h.t, creds, name)
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		h.t.Fatal(err)
	}
	return &attacker{h: h, tenant: tenant, name: name, nc: nc, signer: signer}
}

func (a *attacker) source() string { return protocol.Source(a.tenant, a.name) }

// signed builds a message for subject carrying an event of typ, signed
// with the attacker's own key.
func (a *attacker) signed(subject, typ string, data any) *nats.Msg {
	a.h.t.Helper()
	e := agenttest.NewEvent(a.source(), typ, data)
	if err := a.signer.Sign(e); err != nil {
		a.h.t.Fatal(err)
	}
	msg, err := bus.EncodeBinary(subject, e)
	if err != nil {
		a.h.t.Fatal(err)
	}
	return msg
}

// request sends msg with a reply subject in the attacker's own inbox and
// returns the decoded answer, or nil if none came within d.
func (a *attacker) request(msg *nats.Msg, d time.Duration) *event.Event {
	a.h.t.Helper()
	reply, err := a.nc.RequestMsg(msg, d)
	if err != nil {
		return nil
	}
	e, err := bus.Decode(reply, bus.DefaultMaxEventSize)
	if err != nil {
		a.h.t.Fatalf("answer is not an event: %v", err)
	}
	return e
}

// refusedWith asserts e is a refusal with reason and a request id.
func refusedWith(t *testing.T, e *event.Event, reason protocol.Reason) protocol.Refused {
	t.Helper()
	if e == nil {
		t.Fatalf("no answer; want a refusal %q", reason)
	}
	var r protocol.Refused
	json.Unmarshal(e.Data(), &r)
	if e.Type() != protocol.TypeTaskRefused || r.Reason != reason || r.RequestID == "" || r.Message == "" {
		t.Fatalf("want a refusal %q with a request id, got %s %s", reason, e.Type(), e.Data())
	}
	return r
}

// js is JetStream in tenant as its orchestrator user (the only principal
// that may read the state), for checking what an attack left behind.
func (h *harness) js(tenant string) jetstream.JetStream {
	h.t.Helper()
	nc := h.env.Connect(h.t, h.env.OrchestratorCreds(tenant), "orchestrator")
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	return js
}

// tasksBucket is tenant's EQ_TASKS, read as its orchestrator.
func (h *harness) tasksBucket(ctx context.Context, tenant string) jetstream.KeyValue {
	h.t.Helper()
	kv, err := h.js(tenant).KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		h.t.Fatal(err)
	}
	return kv
}

// taskEntry is a task's raw record: its value and revision.
func (h *harness) taskEntry(tenant, id string) jetstream.KeyValueEntry {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entry, err := h.tasksBucket(ctx, tenant).Get(ctx, id)
	if err != nil {
		h.t.Fatalf("task %s: %v", id, err)
	}
	return entry
}

// taskKeys lists every key of the tenant's tasks bucket.
func (h *harness) taskKeys(tenant string) []string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lister, err := h.tasksBucket(ctx, tenant).ListKeys(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys
}

// auditVerifies asserts every record of tenant's audit stream verifies
// and returns the report.
func (h *harness) auditVerifies(tenant string) audit.Report {
	h.t.Helper()
	keys, err := bus.NewStoreKeys(h.env.Store, bus.WithRetiredKeys())
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	report, err := audit.Verify(ctx, h.js(tenant), tenant, keys)
	if err != nil {
		h.t.Fatal(err)
	}
	if !report.OK() {
		h.t.Fatalf("the audit of %s no longer verifies: %+v", tenant, report.Failures)
	}
	return report
}

// auditBytes is the size of tenant's audit stream.
func (h *harness) auditBytes(tenant string) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.js(tenant).Stream(ctx, protocol.AuditStream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Bytes
}

// newAttackHarness is a harness with two tenants, acme (where attacks
// happen) and globex (which must stay served), both known before the
// orchestrator starts.
func newAttackHarness(t *testing.T, opts ...orchestrator.Option) *harness {
	t.Helper()
	return newHarnessOf(t, []string{"acme", "globex"}, opts...)
}

var globexWorkers atomic.Int64

// otherTenantServed runs a task for tenant globex end to end: the attack
// on acme did not reach it.
func (h *harness) otherTenantServed() {
	h.t.Helper()
	name := fmt.Sprintf("worker%d", globexWorkers.Add(1))
	h.agent("globex", name, func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`"globex ok"`), nil
	}, "work-"+name)
	c := h.client("globex", "client-"+name)
	acc := c.submit(protocol.SubmitRequest{Capability: "work-" + name})
	if v := c.waitState(acc.TaskID, protocol.StateCompleted); string(v.Output) != `"globex ok"` {
		h.t.Fatalf("globex task: %+v", v)
	}
}

// auditSummary is what the attack tests look at in an audit record.
type auditSummary struct {
	decision string
	reason   string // before the first ':'
	taskID   string
	sender   string // of a refusal
	count    int    // refusals the record stands for
}

// auditRecords reads tenant's whole audit stream.
func (h *harness) auditRecords(tenant string) []auditSummary {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []auditSummary
	err := audit.Tail(ctx, h.js(tenant), func(r audit.Record) error {
		s := auditSummary{decision: r.Decision, taskID: r.TaskID}
		s.reason, _, _ = strings.Cut(r.Reason, ":")
		if r.Refusal != nil {
			s.sender, s.count = r.Refusal.Sender, r.Refusal.Count
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// auditRecordsPaced is auditRecords for polling: each read makes a
// consumer, and a tenant has a bounded number of them, so polls are
// spaced out.
func (h *harness) auditRecordsPaced(tenant string) []auditSummary {
	time.Sleep(200 * time.Millisecond)
	return h.auditRecords(tenant)
}
