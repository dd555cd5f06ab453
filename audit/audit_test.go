package audit_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// secretInput is task input that must never appear in audit output.
const secretInput = `"secret-payload-4711"`

// world: a real server, tenants acme and globex, a running orchestrator,
// an echo agent and a client in acme, and acme's audit stream read with
// its orchestrator's creds.
type world struct {
	env    *natstest.Env
	js     jetstream.JetStream
	client *client.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	env.Tenant(t, "globex")
	agentCreds := env.Agent(t, "acme", "coder", "code")
	clientCreds := env.Client(t, "acme", "client")

	orchtest.Start(t, env, orchestrator.WithTick(10*time.Millisecond))

	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	echoAgent(t, env, keys, agentCreds, "coder", "code")
	signer, err := bus.SignerFromCreds(clientCreds)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Connect(t, clientCreds, "client"), "acme", "client", signer, keys)
	if err != nil {
		t.Fatal(err)
	}
	return &world{env: env, js: auditJS(t, env, "acme"), client: c}
}

// auditJS connects as tenant's orchestrator user, as `audit` does.
func auditJS(t *testing.T, env *natstest.Env, tenant string) jetstream.JetStream {
	t.Helper()
	nc, js, err := audit.Connect(env.URL, env.Store, tenant)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return js
}

// echoAgent answers every dispatch on its capability with {"echo": input}.
func echoAgent(t *testing.T, env *natstest.Env, keys bus.KeyRegistry, creds, name, capability string) {
	t.Helper()
	agenttest.Echo(t, env.Connect(t, creds, name), keys, creds, "acme", name, capability)
}

func newEvent(source, typ string, data any) *event.Event {
	return agenttest.NewEvent(source, typ, data)
}

// runTask submits a task and waits until its completion is audited.
func (w *world) runTask(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acc, err := w.client.Submit(ctx, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(secretInput)})
	if err != nil {
		t.Fatal(err)
	}
	w.waitRecord(t, func(r audit.Record) bool { return r.Decision == "completed" && r.TaskID == acc.TaskID })
	return acc.TaskID
}

// submitUnsigned sends an unsigned submit straight over NATS, as the
// client, and returns the request id of the refusal.
func (w *world) submitUnsigned(t *testing.T) string {
	t.Helper()
	nc := w.env.Connect(t, w.env.Store.DefaultCredsFile("acme", "client"), "client")
	msg, err := bus.EncodeBinary(protocol.TasksSubmit, newEvent(protocol.Source("acme", "client"), protocol.TypeTaskSubmit,
		protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(secretInput)}))
	if err != nil {
		t.Fatal(err)
	}
	reply, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e, err := bus.Decode(reply, bus.DefaultMaxEventSize)
	if err != nil {
		t.Fatal(err)
	}
	var refused protocol.Refused
	if e.Type() != protocol.TypeTaskRefused || json.Unmarshal(e.Data(), &refused) != nil || refused.Reason != "unsigned" {
		t.Fatalf("unsigned submit answered %s: %s", e.Type(), e.Data())
	}
	w.waitRecord(t, func(r audit.Record) bool { return r.RequestID == refused.RequestID })
	return refused.RequestID
}

func records(t *testing.T, js jetstream.JetStream, opts ...audit.TailOption) []audit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []audit.Record
	if err := audit.Tail(ctx, js, func(r audit.Record) error { out = append(out, r); return nil }, opts...); err != nil {
		t.Fatal(err)
	}
	return out
}

func (w *world) waitRecord(t *testing.T, match func(audit.Record) bool) {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, func() bool { return slices.ContainsFunc(records(t, w.js), match) },
		"no such audit record")
}

func verify(t *testing.T, w *world, keys bus.KeyRegistry) audit.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	report, err := audit.Verify(ctx, w.js, "acme", keys)
	if err != nil {
		t.Fatal(err)
	}
	return report
}

func historicalKeys(t *testing.T, store *auth.Store) bus.KeyRegistry {
	t.Helper()
	keys, err := bus.NewStoreKeys(store, bus.WithRetiredKeys())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestTailAndVerify(t *testing.T) {
	w := newWorld(t)
	first := w.runTask(t)
	second := w.runTask(t)
	requestID := w.submitUnsigned(t)

	all := records(t, w.js)
	decisions := map[string][]string{} // task -> decisions
	for i, r := range all {
		if r.Sequence != uint64(i+1) || r.Time.IsZero() {
			t.Fatalf("record %d: sequence %d, time %v", i, r.Sequence, r.Time)
		}
		decisions[r.TaskID] = append(decisions[r.TaskID], r.Decision)
	}
	for _, id := range []string{first, second} {
		if want := []string{"accepted", "dispatched", "running", "completed"}; !slices.Equal(decisions[id], want) {
			t.Errorf("task %s: decisions %v, want %v", id, decisions[id], want)
		}
	}
	i := slices.IndexFunc(all, func(r audit.Record) bool { return r.RequestID == requestID })
	refused := all[i]
	if refused.Decision != "refused" || !strings.HasPrefix(refused.Reason, "unsigned:") ||
		refused.EventSource != "eq://acme/client" || refused.EventType != protocol.TypeTaskSubmit || refused.Subject != protocol.TasksSubmit {
		t.Errorf("refusal record: %+v", refused)
	}
	accepted := all[slices.IndexFunc(all, func(r audit.Record) bool { return r.TaskID == first })]
	if accepted.EventSource != "eq://acme/client" || accepted.EventID == "" || accepted.EventType != protocol.TypeTaskSubmit {
		t.Errorf("accepted record: %+v", accepted)
	}
	out, _ := json.Marshal(all)
	if strings.Contains(string(out), "secret-payload") {
		t.Fatal("a payload reached the audit tail")
	}

	// The last two only.
	last := records(t, w.js, audit.WithLast(2))
	if len(last) != 2 || last[1].Sequence != all[len(all)-1].Sequence {
		t.Fatalf("last 2 of %d: %+v", len(all), last)
	}

	report := verify(t, w, historicalKeys(t, w.env.Store))
	// A refusal is recorded as the orchestrator's signed account of the
	// refused message (its digest, never the message): it verifies.
	if refused.Refusal == nil || refused.Refusal.Digest == "" || refused.Refusal.Size == 0 || refused.Refusal.Sender != "(unverified)" {
		t.Errorf("refusal record holds no account of the message: %+v", refused.Refusal)
	}
	if !report.OK() || report.RefusedAsRecorded != 0 || report.Verified != len(all) || report.Records != len(all) {
		t.Fatalf("verify: %+v", report)
	}
	if report.FirstSequence != 1 || report.LastSequence != uint64(len(all)) || len(report.Warnings) != 0 {
		t.Fatalf("verify of an intact stream: %+v", report)
	}
}

func TestTailFollow(t *testing.T) {
	w := newWorld(t)
	w.runTask(t)
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan audit.Record, 64)
	done := make(chan error, 1)
	go func() {
		done <- audit.Tail(ctx, w.js, func(r audit.Record) error { seen <- r; return nil }, audit.WithFollow(), audit.WithLast(1))
	}()
	timeout := time.After(10 * time.Second)
	var got []string
	select { // the last record so far, before anything new is written
	case r := <-seen:
		got = append(got, r.TaskID+" "+r.Decision)
	case <-timeout:
		t.Fatal("follow did not start with the last record")
	}
	next := w.runTask(t)
	for !slices.Contains(got, next+" completed") {
		select {
		case r := <-seen:
			got = append(got, r.TaskID+" "+r.Decision)
		case <-timeout:
			t.Fatalf("follow saw %v, not %s completed", got, next)
		}
	}
	if len(got) != 5 { // the last record before, then the new task's four
		t.Errorf("follow from the last record saw %v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
}

// violations records the permission errors the server sends a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handle(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
}

func (v *violations) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.errs, "; ")
}

func (v *violations) has(kind, subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	want := strings.ToLower(`permissions violation for ` + kind + ` to "` + subject + `"`)
	return slices.ContainsFunc(v.errs, func(e string) bool { return strings.Contains(strings.ToLower(e), want) })
}

// The audit stream is out of reach of clients and agents, and even its
// writer, the orchestrator user, cannot delete or purge what it wrote.
func TestAuditStreamResistsDeletion(t *testing.T) {
	w := newWorld(t)
	w.runTask(t)
	w.submitUnsigned(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := w.js.Stream(ctx, audit.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	before := stream.CachedInfo().State

	api := []string{
		"$JS.API.STREAM.INFO." + audit.StreamName,
		"$JS.API.STREAM.MSG.GET." + audit.StreamName,
		"$JS.API.DIRECT.GET." + audit.StreamName,
		"$JS.API.CONSUMER.CREATE." + audit.StreamName,
		"$JS.API.STREAM.MSG.DELETE." + audit.StreamName,
		"$JS.API.STREAM.PURGE." + audit.StreamName,
		"$JS.API.STREAM.DELETE." + audit.StreamName,
		"$JS.API.STREAM.UPDATE." + audit.StreamName,
	}
	for _, who := range []struct{ name, creds string }{
		{"client", w.env.Store.DefaultCredsFile("acme", "client")},
		{"coder", w.env.Store.DefaultCredsFile("acme", "coder")},
	} {
		t.Run(who.name, func(t *testing.T) {
			v := &violations{}
			nc := w.env.Connect(t, who.creds, who.name, nats.ErrorHandler(v.handle))
			for _, subject := range api {
				if _, err := nc.Request(subject, []byte(`{"seq":1}`), 300*time.Millisecond); err == nil {
					t.Errorf("%s: %s answered", who.name, subject)
				}
			}
			// Through the JetStream client too: it cannot even find the stream.
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			_, err = js.Stream(short, audit.StreamName)
			cancel()
			if err == nil {
				t.Errorf("%s opened the audit stream", who.name)
			}
			nc.Subscribe(protocol.AuditWildcard, func(*nats.Msg) {})
			nc.Publish(protocol.AuditSubject("completed"), []byte("forged"))
			nc.Flush()
			natstest.Eventually(t, 5*time.Second, func() bool {
				for _, s := range api {
					if !v.has("publish", s) {
						return false
					}
				}
				return v.has("subscription", protocol.AuditWildcard) && v.has("publish", protocol.AuditSubject("completed"))
			}, "%s: not every attempt was refused by the server: %v", who.name, v)
		})
	}

	// The orchestrator's own creds: JetStream answers, and refuses.
	if err := stream.DeleteMsg(short(t), 1); err == nil {
		t.Error("the orchestrator deleted an audit record")
	}
	if err := stream.SecureDeleteMsg(short(t), 1); err == nil {
		t.Error("the orchestrator erased an audit record")
	}
	if err := stream.Purge(short(t)); err == nil {
		t.Error("the orchestrator purged the audit stream")
	}
	if err := stream.Purge(short(t), jetstream.WithPurgeSubject(protocol.AuditSubject("refused"))); err == nil {
		t.Error("the orchestrator purged the refusals")
	}
	for _, change := range []func(*jetstream.StreamConfig){
		func(c *jetstream.StreamConfig) { c.DenyDelete = false },
		func(c *jetstream.StreamConfig) { c.DenyPurge = false },
	} {
		cfg := stream.CachedInfo().Config
		change(&cfg)
		if _, err := w.js.UpdateStream(short(t), cfg); err == nil {
			t.Errorf("the orchestrator lifted the stream's protection: %+v", cfg)
		}
	}

	if err := w.js.DeleteStream(short(t), audit.StreamName); err == nil {
		t.Error("the orchestrator deleted the audit stream")
	}
	cut := stream.CachedInfo().Config
	cut.MaxMsgs = 1
	if _, err := w.js.UpdateStream(short(t), cut); err == nil {
		t.Error("the orchestrator cut the audit stream to one record")
	}

	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := info.State
	if after.FirstSeq != before.FirstSeq || after.Msgs < before.Msgs || after.NumDeleted != 0 {
		t.Fatalf("stream state before %+v, after %+v", before, after)
	}
	if !info.Config.DenyDelete || !info.Config.DenyPurge {
		t.Fatalf("stream config now %+v", info.Config)
	}
	for seq := before.FirstSeq; seq <= before.LastSeq; seq++ {
		if _, err := stream.GetMsg(ctx, seq); err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
	}
	if report := verify(t, w, historicalKeys(t, w.env.Store)); !report.OK() {
		t.Fatalf("verify after the attack: %+v", report)
	}
}

// A record appended by someone holding the orchestrator's creds, with a
// valid event whose body was altered, is reported with its sequence.
func TestVerifyFindsTampering(t *testing.T) {
	w := newWorld(t)
	task := w.runTask(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all := records(t, w.js)
	completed := all[slices.IndexFunc(all, func(r audit.Record) bool { return r.TaskID == task && r.Decision == "completed" })]
	stream, err := w.js.Stream(ctx, audit.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	original, err := stream.GetMsg(ctx, completed.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	forged := nats.NewMsg(original.Subject)
	for k, v := range original.Header {
		forged.Header[k] = v
	}
	// A forger sets its own message id (or none): a copied one would be
	// dropped as a duplicate of the original record.
	forged.Header.Del(jetstream.MsgIDHeader)
	forged.Data = []byte(strings.Replace(string(original.Data), "secret-payload-4711", "something-else-0815", 1))
	if string(forged.Data) == string(original.Data) {
		t.Fatalf("the body holds no output to alter")
	}
	ack, err := w.js.PublishMsg(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}

	report := verify(t, w, historicalKeys(t, w.env.Store))
	if report.OK() || report.Failed != 1 || len(report.Failures) != 1 {
		t.Fatalf("verify after tampering: %+v", report)
	}
	f := report.Failures[0]
	if f.Sequence != ack.Sequence || f.TaskID != task || !strings.Contains(f.Error, bus.ErrBadSignature.Error()) {
		t.Fatalf("failure %+v; want sequence %d, a bad signature", f, ack.Sequence)
	}
	if report.Verified != len(all) {
		t.Fatalf("the genuine records: %+v", report)
	}
}

// Rotating an agent retires its key; its earlier records still verify
// with the retired keys, and only with them.
func TestVerifyAfterRotation(t *testing.T) {
	w := newWorld(t)
	w.runTask(t)
	if _, err := w.env.Store.Rotate(context.Background(), "acme", "coder", "", w.env.Publisher); err != nil {
		t.Fatal(err)
	}
	report := verify(t, w, historicalKeys(t, w.env.Store))
	if !report.OK() || report.Verified != report.Records {
		t.Fatalf("verify with retired keys: %+v", report)
	}
	live, err := bus.NewStoreKeys(w.env.Store)
	if err != nil {
		t.Fatal(err)
	}
	report = verify(t, w, live)
	if report.Failed != 2 { // the coder's running and completed reports
		t.Fatalf("verify with live keys only: %+v", report)
	}
	for _, f := range report.Failures {
		if !strings.Contains(f.Error, bus.ErrUnknownSigner.Error()) {
			t.Errorf("failure %+v: want an unknown signer", f)
		}
	}
}

// Records dropped by a change of the stream's limits cannot be verified,
// but verify says they are gone.
func TestVerifyWarnsWhenHistoryIsCut(t *testing.T) {
	w := newWorld(t)
	w.runTask(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := w.js.Stream(ctx, audit.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxMsgs = 1
	if _, err := w.js.UpdateStream(short(t), cfg); err != nil {
		// Today the orchestrator role is denied STREAM.UPDATE on the audit
		// stream, so this cannot happen; the warning stays for streams an
		// operator changes with other rights.
		t.Skipf("the limit change is refused (good): %v", err)
	}
	report := verify(t, w, historicalKeys(t, w.env.Store))
	if !report.OK() || report.Records != 1 || report.FirstSequence != 4 {
		t.Fatalf("verify of a cut stream: %+v", report)
	}
	joined := strings.Join(report.Warnings, "\n")
	if !strings.Contains(joined, "records 1 to 3 are gone") || !strings.Contains(joined, "limits that drop old records") {
		t.Fatalf("warnings %q", report.Warnings)
	}
}

// Another tenant's orchestrator creds reach that tenant's stream only.
func TestAuditIsPerTenant(t *testing.T) {
	w := newWorld(t)
	w.runTask(t)
	w.submitUnsigned(t)
	globex := auditJS(t, w.env, "globex")
	// globex's audit holds its own orchestrator's level record only.
	globexRecords := records(t, globex)
	for _, r := range globexRecords {
		if strings.HasPrefix(r.EventSource, "eq://acme/") || r.TaskID != "" || r.Decision != protocol.DecisionLevelChanged {
			t.Fatalf("globex sees %+v", r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	report, err := audit.Verify(ctx, globex, "globex", historicalKeys(t, w.env.Store))
	if err != nil || report.Records != len(globexRecords) || report.Verified != report.Records {
		t.Fatalf("globex verify: %+v, %v", report, err)
	}
}

// short is the deadline of a call the server's permissions refuse: such a
// request is never answered, so it would otherwise run to the test's.
func short(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}
