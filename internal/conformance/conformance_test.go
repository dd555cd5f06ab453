package conformance_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
)

// world is a real nats-server in operator mode with tenant acme, a real
// orchestrator, and two principals speaking the protocol by hand: client
// "client" and agent "worker" (capability "work").
type world struct {
	t       *testing.T
	url     string
	schemas schemas
	orchKey string // the orchestrator's pinned key (§1)
	client  *party
	worker  *party
}

// party is one principal: its identity from its creds, its connection and
// the subscriptions a program of its role makes.
type party struct {
	identity
	nc   *nats.Conn
	subs map[string]chan *nats.Msg // by subscribed subject
}

const tenant = "acme"

func newWorld(t *testing.T) *world {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, tenant)
	agentCreds := env.Agent(t, tenant, "worker", "work")
	clientCreds := env.Client(t, tenant, "client")
	orchtest.Start(t, env,
		orchestrator.WithDefaultRetryPolicy(orchestrator.RetryPolicy{
			MaxAttempts: 3, InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
			ClaimTimeout: 5 * time.Second, AttemptTimeout: 30 * time.Second, TaskTimeout: time.Minute,
		}),
		orchestrator.WithTick(10*time.Millisecond))

	w := &world{t: t, url: env.URL, schemas: loadSchemas(t)}
	// The orchestrator's key, pinned as docs/protocol.md §1 says: the
	// public_key of its principal record in the data dir.
	raw, err := os.ReadFile(filepath.Join(env.Store.Dir(), "tenants", tenant, "principals", "orchestrator.json"))
	if err != nil {
		t.Fatal(err)
	}
	var record struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(raw, &record); err != nil || record.PublicKey == "" {
		t.Fatalf("orchestrator record: %v", err)
	}
	w.orchKey = record.PublicKey

	w.worker = w.connect(agentCreds, "agent", "eq.ctl.worker.>")
	if w.worker.tenant != tenant || w.worker.name != "worker" || len(w.worker.capabilities) != 1 || w.worker.capabilities[0] != "work" {
		t.Fatalf("agent identity from its creds: %+v", w.worker.identity)
	}
	w.worker.queueSubscribe("eq.cap.work", "work")
	w.client = w.connect(clientCreds, "client", "eq.client.client.>")
	if w.client.tenant != tenant || w.client.name != "client" {
		t.Fatalf("client identity from its creds: %+v", w.client.identity)
	}
	return w
}

// connect dials with the creds and the private inbox prefix (§1) and
// subscribes subject.
func (w *world) connect(creds, role, subject string) *party {
	w.t.Helper()
	id := readCreds(w.t, creds)
	if id.role != role {
		w.t.Fatalf("%s has role %q, want %q", creds, id.role, role)
	}
	nc, err := nats.Connect(w.url, nats.UserCredentials(creds), nats.CustomInboxPrefix("_INBOX_"+id.name), nats.NoReconnect())
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(nc.Close)
	p := &party{identity: id, nc: nc, subs: map[string]chan *nats.Msg{}}
	p.subscribe(w.t, subject)
	return p
}

func (p *party) subscribe(t *testing.T, subject string) {
	t.Helper()
	ch := make(chan *nats.Msg, 64)
	if _, err := p.nc.ChanSubscribe(subject, ch); err != nil {
		t.Fatal(err)
	}
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	p.subs[subject] = ch
}

func (p *party) queueSubscribe(subject, queue string) {
	ch := make(chan *nats.Msg, 64)
	if _, err := p.nc.ChanQueueSubscribe(subject, queue, ch); err != nil {
		panic(err)
	}
	p.nc.Flush()
	p.subs[subject] = ch
}

// received is an event the orchestrator sent, verified, with its body.
type received struct {
	event
	subject string
	body    map[string]any
}

func (r received) str(field string) string {
	s, _ := r.body[field].(string)
	return s
}

func (r received) num(field string) float64 {
	n, _ := r.body[field].(float64)
	return n
}

// open reads and checks a message from the orchestrator as an agent or
// client must (§6): binary mode, signed by the orchestrator's pinned key
// under its source, fresh, and a body that matches its schema.
func (w *world) open(msg *nats.Msg) received {
	w.t.Helper()
	if msg.Header.Get("Content-Type") != "" || msg.Header.Get("ce-specversion") != "1.0" {
		w.t.Fatalf("on %s: not a binary-mode CloudEvent: %v", msg.Subject, msg.Header)
	}
	e := readBinary(w.t, msg)
	if src := e.attrs["source"]; src != "eq://"+tenant+"/orchestrator" {
		w.t.Fatalf("on %s: source %q is not the orchestrator", msg.Subject, src)
	}
	if why := verify(e, w.orchKey, time.Now()); why != "" {
		w.t.Fatalf("on %s: %s: %s", msg.Subject, e.attrs["type"], why)
	}
	if e.attrs["datacontenttype"] != "application/json" {
		w.t.Fatalf("on %s: datacontenttype %q", msg.Subject, e.attrs["datacontenttype"])
	}
	name := schemaOf(msg.Subject, e.attrs["type"])
	if err := w.schemas.validate(name, e.data); err != nil {
		w.t.Fatalf("on %s: %s is not a %s (docs/schema/%s.json): %v\n%s", msg.Subject, e.attrs["type"], name, name, err, e.data)
	}
	r := received{event: e, subject: msg.Subject}
	if err := json.Unmarshal(e.data, &r.body); err != nil {
		w.t.Fatal(err)
	}
	return r
}

// next waits for the next message on one of p's subscriptions.
func (w *world) next(p *party, subject, wantType string) received {
	w.t.Helper()
	select {
	case msg := <-p.subs[subject]:
		r := w.open(msg)
		if r.attrs["type"] != wantType {
			w.t.Fatalf("on %s: got %s %s, want %s", msg.Subject, r.attrs["type"], r.data, wantType)
		}
		return r
	case <-time.After(10 * time.Second):
		w.t.Fatalf("nothing on %s; want %s", subject, wantType)
	}
	panic("unreachable")
}

// request sends a request (§9) and opens the answer.
func (w *world) request(p *party, msg *nats.Msg) received {
	w.t.Helper()
	reply, err := p.nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		w.t.Fatalf("request on %s: %v", msg.Subject, err)
	}
	if !strings.HasPrefix(reply.Subject, "_INBOX_"+p.name+".") {
		w.t.Fatalf("answered on %s, not in %s's inbox", reply.Subject, p.name)
	}
	return w.open(reply)
}

// clientRequest builds, signs and sends a client request of kind op
// (submit, get, list, cancel) with a JSON body.
func (w *world) clientRequest(op, body string) received {
	w.t.Helper()
	e := newEvent(w.client.identity, "io.equilateral.task."+op+".v1", body, nil)
	return w.request(w.client, e.binary(w.client.identity, "eq.tasks."+op))
}

// report publishes an agent report of kind with a JSON body and returns
// the event's id.
func (w *world) report(kind, taskID, body string) string {
	w.t.Helper()
	typ := "io.equilateral.task." + kind + ".v1"
	if kind == "heartbeat" {
		typ = "io.equilateral.agent.heartbeat.v1"
	}
	var exts map[string]string
	if taskID != "" {
		exts = map[string]string{"taskid": taskID}
	}
	e := newEvent(w.worker.identity, typ, body, exts)
	if err := w.worker.nc.PublishMsg(e.binary(w.worker.identity, "eq.agent.worker."+kind)); err != nil {
		w.t.Fatal(err)
	}
	return e.attrs["id"]
}

// submit submits and returns the accepted task id.
func (w *world) submit(body string) string {
	w.t.Helper()
	r := w.clientRequest("submit", body)
	if r.attrs["type"] != "io.equilateral.task.accepted.v1" {
		w.t.Fatalf("submit %s: %s %s", body, r.attrs["type"], r.data)
	}
	id := r.str("task_id")
	// A task sent to an agent at once is stored dispatched.
	if id == "" || r.exts["taskid"] != id || r.str("state") != "dispatched" {
		w.t.Fatalf("accepted: %s, taskid %q", r.data, r.exts["taskid"])
	}
	return id
}

// dispatched takes the next dispatch on eq.cap.work and checks it names
// taskID and attempt.
func (w *world) dispatched(taskID string, attempt int) received {
	w.t.Helper()
	d := w.next(w.worker, "eq.cap.work", "io.equilateral.task.dispatched.v1")
	if d.str("task_id") != taskID || d.num("attempt") != float64(attempt) || d.str("capability") != "work" ||
		d.exts["taskid"] != taskID || d.exts["attempt"] != itoa(attempt) {
		w.t.Fatalf("dispatch %s with extensions %v; want task %s attempt %d", d.data, d.exts, taskID, attempt)
	}
	return d
}

// clientEvent takes the client's next event and checks its type and task.
func (w *world) clientEvent(taskID, typ string) received {
	w.t.Helper()
	r := w.next(w.client, "eq.client.client.>", typ)
	if r.subject != "eq.client.client.task."+taskID || r.exts["taskid"] != taskID {
		w.t.Fatalf("%s for %s on %s", typ, r.exts["taskid"], r.subject)
	}
	return r
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func ref(taskID string) string { return `{"task_id":"` + taskID + `"}` }

// TestRoundTrip: a client submits; the agent verifies the orchestrator's
// dispatch, claims it, reports progress and the result; the client sees
// the accepted answer, every event in order and the result, and gets and
// lists the task. A second submit with the same idempotency key answers
// the same task and dispatches nothing.
func TestRoundTrip(t *testing.T) {
	w := newWorld(t)
	const submit = `{"capability":"work","input":{"n":1},"idempotency_key":"order-1","timeout":"30s","watch":true}`
	id := w.submit(submit)
	d := w.dispatched(id, 1)
	if in, _ := json.Marshal(d.body["input"]); string(in) != `{"n":1}` {
		t.Fatalf("dispatch input %s", in)
	}
	deadline, err := time.Parse(time.RFC3339Nano, d.str("deadline"))
	if err != nil || time.Until(deadline) > 31*time.Second || time.Until(deadline) < 20*time.Second {
		t.Fatalf("deadline %q is not the submit's 30s", d.str("deadline"))
	}
	if v := w.clientEvent(id, "io.equilateral.task.dispatched.v1"); v.str("state") != "dispatched" || v.num("attempts") != 1 {
		t.Fatalf("dispatched event: %s", v.data)
	}

	w.report("running", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1"}`)
	if v := w.clientEvent(id, "io.equilateral.task.running.v1"); v.str("state") != "running" || v.str("agent") != "worker" {
		t.Fatalf("running event: %s", v.data)
	}
	w.report("progress", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1","message":"half way"}`)
	if p := w.clientEvent(id, "io.equilateral.task.progress.v1"); p.str("message") != "half way" || p.str("task_id") != id {
		t.Fatalf("progress event: %s", p.data)
	}
	w.report("completed", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1","output":{"sum":2}}`)
	done := w.clientEvent(id, "io.equilateral.task.completed.v1")
	if out, _ := json.Marshal(done.body["output"]); done.str("state") != "completed" || string(out) != `{"sum":2}` {
		t.Fatalf("completed event: %s", done.data)
	}

	if v := w.clientRequest("get", ref(id)); v.attrs["type"] != "io.equilateral.task.view.v1" || v.str("state") != "completed" || v.exts["taskid"] != id {
		t.Fatalf("get: %s %s", v.attrs["type"], v.data)
	}
	list := w.clientRequest("list", `{"state":"completed","limit":10}`)
	tasks, _ := list.body["tasks"].([]any)
	if list.attrs["type"] != "io.equilateral.task.listing.v1" || len(tasks) != 1 || tasks[0].(map[string]any)["task_id"] != id {
		t.Fatalf("list: %s %s", list.attrs["type"], list.data)
	}
	if list := w.clientRequest("list", ``); len(list.body["tasks"].([]any)) != 1 {
		t.Fatalf("list without data: %s", list.data)
	}

	again := w.clientRequest("submit", submit)
	if again.attrs["type"] != "io.equilateral.task.accepted.v1" || again.str("task_id") != id || again.body["duplicate"] != true || again.str("state") != "completed" {
		t.Fatalf("resubmit with the same key: %s", again.data)
	}
	select {
	case msg := <-w.worker.subs["eq.cap.work"]:
		t.Fatalf("a duplicate was dispatched: %s", msg.Data)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStructuredModeSubmit: a submit in structured mode, signed over the
// data's bytes as they sit in the body, is accepted; its dispatch is
// binary.
func TestStructuredModeSubmit(t *testing.T) {
	w := newWorld(t)
	e := newEvent(w.client.identity, "io.equilateral.task.submit.v1", `{"capability":"work","input":["a", "b"]}`,
		map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	r := w.request(w.client, e.structured(w.client.identity, "eq.tasks.submit"))
	if r.attrs["type"] != "io.equilateral.task.accepted.v1" {
		t.Fatalf("structured submit: %s %s", r.attrs["type"], r.data)
	}
	d := w.dispatched(r.str("task_id"), 1)
	if in, _ := json.Marshal(d.body["input"]); string(in) != `["a","b"]` {
		t.Fatalf("dispatch input %s", in)
	}
}

// TestCancel: the client cancels a running task; the answer is the
// cancelled task, the agent gets control.cancel naming the attempt, the
// client the cancelled event; a result the agent sends afterwards is
// refused stale and cancelled again, and the task stays cancelled.
func TestCancel(t *testing.T) {
	w := newWorld(t)
	id := w.submit(`{"capability":"work","input":"x","watch":true}`)
	w.dispatched(id, 1)
	w.clientEvent(id, "io.equilateral.task.dispatched.v1")
	w.report("running", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1"}`)
	w.clientEvent(id, "io.equilateral.task.running.v1")

	v := w.clientRequest("cancel", ref(id))
	if v.attrs["type"] != "io.equilateral.task.view.v1" || v.str("state") != "cancelled" || v.str("error") != "cancelled by client" {
		t.Fatalf("cancel answer: %s %s", v.attrs["type"], v.data)
	}
	c := w.next(w.worker, "eq.ctl.worker.>", "io.equilateral.control.cancel.v1")
	if c.subject != "eq.ctl.worker.cancel" || c.str("task_id") != id || c.num("attempt") != 1 || c.str("message") != "cancelled by client" || c.exts["taskid"] != id {
		t.Fatalf("control.cancel on %s: %s", c.subject, c.data)
	}
	w.clientEvent(id, "io.equilateral.task.cancelled.v1")

	late := w.report("completed", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1","output":"too late"}`)
	r := w.next(w.worker, "eq.ctl.worker.>", "io.equilateral.report.refused.v1")
	if r.subject != "eq.ctl.worker.refused" || r.str("reason") != "stale" || r.str("event_id") != late || r.str("task_id") != id ||
		r.num("attempt") != 1 || r.str("request_id") == "" || r.exts["requestid"] != r.str("request_id") {
		t.Fatalf("late result refused on %s: %s %v", r.subject, r.data, r.exts)
	}
	if c := w.next(w.worker, "eq.ctl.worker.>", "io.equilateral.control.cancel.v1"); c.str("task_id") != id || c.num("attempt") != 1 {
		t.Fatalf("cancel after the late result: %s", c.data)
	}
	if v := w.clientRequest("get", ref(id)); v.str("state") != "cancelled" || v.body["output"] != nil {
		t.Fatalf("after the late result: %s", v.data)
	}
}

// TestSubmitWithoutInput: a submit without input is dispatched with
// "input": null, a value the Dispatch schema takes (null is a JSON
// value), and the task runs to its end like any other: here a quick one,
// completed without a running report, its submitter told of the end only.
func TestSubmitWithoutInput(t *testing.T) {
	w := newWorld(t)
	id := w.submit(`{"capability":"work"}`)
	var msg *nats.Msg
	select {
	case msg = <-w.worker.subs["eq.cap.work"]:
	case <-time.After(10 * time.Second):
		t.Fatal("no dispatch")
	}
	e := readBinary(t, msg)
	if why := verify(e, w.orchKey, time.Now()); why != "" {
		t.Fatal(why)
	}
	if !strings.Contains(string(e.data), `"task_id":"`+id+`"`) || !strings.Contains(string(e.data), `"input":null`) {
		t.Fatalf("dispatch of a submit without input: %s", e.data)
	}
	if err := w.schemas.validate("Dispatch", e.data); err != nil {
		t.Fatalf("the Dispatch schema refuses input null: %v", err)
	}
	// Not watched: the client hears of the end only, and the agent may
	// end the attempt without saying "running" first.
	w.report("completed", id, `{"task_id":"`+id+`","attempt":1,"instance":"i1","output":"ran"}`)
	if v := w.clientEvent(id, "io.equilateral.task.completed.v1"); v.str("state") != "completed" || v.str("output") != "ran" {
		t.Fatalf("completed event: %s", v.data)
	}
}
