package auth_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/internal/natstest"
)

// The demo principals, present in every tenant of these tests.
const (
	planner      = "planner"      // agent, capability plan
	coder        = "coder"        // agent, capabilities code and review
	client       = "client"       // client
	orchestrator = "orchestrator" // the tenant's orchestrator user
)

// who is the column order of the matrices below.
var who = [4]string{planner, coder, client, orchestrator}

const (
	allow = true
	deny  = false
)

// jetStream marks a publish row whose legitimate receiver is the server's
// JetStream API: it answers on the publisher's own inbox.
const jetStream = "(jetstream)"

// quietWindow is how long a test watches for a message that must not come.
// Wherever a barrier (a Flush round trip or a sentinel message) already
// orders things, this only covers the hop from the client's read loop to a
// handler, which takes microseconds.
const quietWindow = 50 * time.Millisecond

// subscribeMatrix says who may subscribe to what. It is written out by hand
// from the subject table in PRODUCT.md, not derived from package auth, so
// a change to the ACL templates must change this table too.
var subscribeMatrix = []struct {
	subject string
	want    [4]bool // planner, coder, client, orchestrator
	// probeFrom publishes probeSubject, which a subscription to subject
	// would receive; "" where nobody may publish there unasked.
	probeFrom, probeSubject string
}{
	{">", [4]bool{deny, deny, deny, deny}, orchestrator, "eq.cap.plan"},
	{"eq.>", [4]bool{deny, deny, deny, deny}, orchestrator, "eq.cap.plan"},
	{"eq.cap.plan", [4]bool{allow, deny, deny, deny}, orchestrator, "eq.cap.plan"},
	{"eq.cap.code", [4]bool{deny, allow, deny, deny}, orchestrator, "eq.cap.code"},
	{"eq.cap.review", [4]bool{deny, allow, deny, deny}, orchestrator, "eq.cap.review"},
	{"eq.ctl.planner.>", [4]bool{allow, deny, deny, deny}, orchestrator, "eq.ctl.planner.cancel"},
	{"eq.ctl.coder.>", [4]bool{deny, allow, deny, deny}, orchestrator, "eq.ctl.coder.cancel"},
	{"_INBOX_planner.>", [4]bool{allow, deny, deny, deny}, "", ""},
	{"_INBOX_coder.>", [4]bool{deny, allow, deny, deny}, "", ""},
	{"_INBOX_client.>", [4]bool{deny, deny, allow, deny}, "", ""},
	{"_INBOX_orchestrator.>", [4]bool{deny, deny, deny, allow}, "", ""},
	{"_INBOX.>", [4]bool{deny, deny, deny, deny}, "", ""},
	{"eq.client.client.>", [4]bool{deny, deny, allow, deny}, orchestrator, "eq.client.client.done"},
	{"eq.tasks.submit", [4]bool{deny, deny, deny, allow}, client, "eq.tasks.submit"},
	{"eq.agent.planner.>", [4]bool{deny, deny, deny, allow}, planner, "eq.agent.planner.out"},
	{"eq.agent.*.>", [4]bool{deny, deny, deny, allow}, coder, "eq.agent.coder.out"},
	{"$JS.API.>", [4]bool{deny, deny, deny, deny}, orchestrator, "$JS.API.STREAM.LIST"},
	{"$SYS.>", [4]bool{deny, deny, deny, deny}, "", ""},
}

// publishMatrix says who may publish where, and how delivery is observed.
var publishMatrix = []struct {
	subject string
	want    [4]bool // planner, coder, client, orchestrator
	// observer is the principal whose standing subscription legitimately
	// receives subject ("" when none in the tenant; jetStream for the API).
	observer string
	// sentinel may publish subject; its message, seen after a denied one,
	// proves the denied one would have arrived by then.
	sentinel string
}{
	{"eq.agent.planner.out", [4]bool{allow, deny, deny, deny}, orchestrator, planner},
	{"eq.agent.coder.out", [4]bool{deny, allow, deny, deny}, orchestrator, coder},
	{"eq.tasks.submit", [4]bool{allow, allow, allow, deny}, orchestrator, client},
	{"eq.cap.plan", [4]bool{deny, deny, deny, allow}, planner, orchestrator},
	{"eq.ctl.planner.cancel", [4]bool{deny, deny, deny, allow}, planner, orchestrator},
	{"eq.client.client.done", [4]bool{deny, deny, deny, allow}, client, orchestrator},
	// Only a response to a request may go to an inbox; nobody may publish
	// there unasked, not even the orchestrator.
	{"_INBOX_client.x", [4]bool{deny, deny, deny, deny}, client, ""},
	{"$JS.API.STREAM.LIST", [4]bool{deny, deny, deny, allow}, jetStream, ""},
	{"$SYS.REQ.CLAIMS.UPDATE", [4]bool{deny, deny, deny, deny}, "", ""},
}

func TestSubscribeMatrix(t *testing.T) {
	f := startFixture(t)
	for _, tenant := range f.order {
		tc := f.tenants[tenant]
		for _, row := range subscribeMatrix {
			for i, p := range who {
				t.Run(tenant+"/"+p+"/"+row.subject, func(t *testing.T) {
					rec := &recorder{}
					nc := f.env.Connect(t, tc.creds[p], p, nats.ErrorHandler(rec.handle), nats.PermissionErrOnSubscribe(true))
					sub := subscribeSync(t, nc, row.subject)
					flush(t, nc)

					if row.want[i] == allow {
						// A refusal would have come before the Flush's PONG.
						expectNoErrors(t, nc, rec)
						if row.probeFrom == "" {
							return
						}
						payload := tc.publish(t, row.probeFrom, row.probeSubject, "probe")
						m, err := sub.NextMsg(2 * time.Second)
						if err != nil {
							t.Fatalf("%s may subscribe %s but did not get %s's %s: %v", p, row.subject, row.probeFrom, row.probeSubject, err)
						}
						if string(m.Data) != payload {
							t.Fatalf("%s on %s got %q, want %q", p, row.subject, m.Data, payload)
						}
						return
					}

					natstest.Eventually(t, 2*time.Second, func() bool { return rec.violation("Subscription", row.subject) },
						"%s subscribed to %s: want a permission violation, got errors %v", p, row.subject, rec.all())
					// The client marks the subscription dead, too.
					if _, err := sub.NextMsg(time.Millisecond); !errors.Is(err, nats.ErrPermissionViolation) {
						t.Errorf("NextMsg on refused subscription %s: %v, want ErrPermissionViolation", row.subject, err)
					}
					if row.probeFrom == "" {
						return
					}
					tc.publish(t, row.probeFrom, row.probeSubject, "probe")
					// The probe was routed before the publisher's Flush
					// returned; this Flush brings in anything routed to us.
					flush(t, nc)
					if n, _, _ := sub.Pending(); n != 0 {
						t.Fatalf("%s's refused subscription to %s received %d messages", p, row.subject, n)
					}
				})
			}
		}
	}
}

func TestPublishMatrix(t *testing.T) {
	f := startFixture(t)
	for _, tenant := range f.order {
		tc := f.tenants[tenant]
		for _, row := range publishMatrix {
			for i, p := range who {
				t.Run(tenant+"/"+p+"/"+row.subject, func(t *testing.T) {
					rec := &recorder{}
					nc := f.env.Connect(t, tc.creds[p], p, nats.ErrorHandler(rec.handle))
					payload := f.payload(tenant, "pub")
					var inbox *nats.Subscription
					if row.observer == jetStream {
						// The API answers on the reply subject, our own inbox.
						reply := "_INBOX_" + p + ".js"
						inbox = subscribeSync(t, nc, reply)
						if err := nc.PublishRequest(row.subject, reply, nil); err != nil {
							t.Fatal(err)
						}
					} else if err := nc.Publish(row.subject, []byte(payload)); err != nil {
						t.Fatal(err)
					}
					flush(t, nc)

					if row.want[i] == allow {
						expectNoErrors(t, nc, rec)
						if row.observer == jetStream {
							m, err := inbox.NextMsg(2 * time.Second)
							if err != nil {
								t.Fatalf("%s may use %s but got no answer: %v", p, row.subject, err)
							}
							if !strings.Contains(string(m.Data), "stream_list_response") {
								t.Fatalf("answer to %s: %s", row.subject, m.Data)
							}
							return
						}
						sink := tc.sinks[row.observer]
						natstest.Eventually(t, 2*time.Second, func() bool { return sink.has(payload) },
							"%s may publish %s but %s never got it", p, row.subject, row.observer)
						return
					}

					natstest.Eventually(t, 2*time.Second, func() bool { return rec.violation("Publish", row.subject) },
						"%s published to %s: want a permission violation, got errors %v", p, row.subject, rec.all())
					switch {
					case row.observer == jetStream:
						never(t, quietWindow, func() bool { n, _, _ := inbox.Pending(); return n > 0 },
							"%s was refused %s but JetStream answered", p, row.subject)
					case row.observer == "":
						// Nothing in the tenant could receive it; the
						// violation is the whole observation.
					case row.sentinel != "":
						sink := tc.sinks[row.observer]
						sentinel := tc.publish(t, row.sentinel, row.subject, "sentinel")
						natstest.Eventually(t, 2*time.Second, func() bool { return sink.has(sentinel) },
							"sentinel from %s on %s never reached %s", row.sentinel, row.subject, row.observer)
						if sink.has(payload) {
							t.Fatalf("%s was refused %s but %s received the message", p, row.subject, row.observer)
						}
					default:
						sink := tc.sinks[row.observer]
						flush(t, tc.conns[row.observer])
						never(t, quietWindow, func() bool { return sink.has(payload) },
							"%s was refused %s but %s received the message", p, row.subject, row.observer)
					}
				})
			}
		}
	}
}

// TestCrossTenant: identical subjects in two accounts are two different
// places. A message reaches its own tenant's receiver and never the other's.
func TestCrossTenant(t *testing.T) {
	f := startFixture(t)
	paths := []struct{ from, subject, to string }{
		{orchestrator, "eq.cap.plan", planner},
		{planner, "eq.agent.planner.out", orchestrator},
		{client, "eq.tasks.submit", orchestrator},
		{orchestrator, "eq.client.client.x", client},
	}
	for _, dir := range [][2]string{{"acme", "globex"}, {"globex", "acme"}} {
		home, away := f.tenants[dir[0]], f.tenants[dir[1]]
		for _, path := range paths {
			t.Run(dir[0]+"/"+path.from+"/"+path.subject, func(t *testing.T) {
				payload := home.publish(t, path.from, path.subject, "cross")
				natstest.Eventually(t, 2*time.Second, func() bool { return home.sinks[path.to].has(payload) },
					"%s's %s did not get %s from its own %s", dir[0], path.to, path.subject, path.from)
				// No barrier crosses accounts: watch a while after the
				// positive, on every receiver of the other tenant.
				never(t, 2*quietWindow, func() bool { return away.anySinkHas(payload) },
					"%s's %s on %s reached %s", dir[0], path.from, path.subject, dir[1])
			})
		}
	}
}

// TestRequestReply: a submitter's request reaches its own orchestrator,
// whose answer comes back through the submitter's private inbox; the
// orchestrator may answer once, and the other tenant's orchestrator
// never sees the request.
func TestRequestReply(t *testing.T) {
	f := startFixture(t)
	acme, globex := f.tenants["acme"], f.tenants["globex"]

	orchRec := &recorder{}
	orch := f.env.Connect(t, acme.creds[orchestrator], orchestrator, nats.ErrorHandler(orchRec.handle))
	tasks, err := orch.QueueSubscribeSync("eq.tasks.submit", "responders")
	if err != nil {
		t.Fatal(err)
	}
	rival := f.env.Connect(t, globex.creds[orchestrator], orchestrator)
	rivalTasks, err := rival.QueueSubscribeSync("eq.tasks.submit", "responders")
	if err != nil {
		t.Fatal(err)
	}
	flush(t, orch)
	flush(t, rival)

	// Agents submit subtasks, clients submit tasks: each has its own inbox.
	for _, p := range []string{client, planner, coder} {
		t.Run(p, func(t *testing.T) {
			rec := &recorder{}
			nc := f.env.Connect(t, acme.creds[p], p, nats.ErrorHandler(rec.handle))
			payload := f.payload("acme", "request")
			type result struct {
				msg *nats.Msg
				err error
			}
			done := make(chan result, 1)
			go func() {
				m, err := nc.Request("eq.tasks.submit", []byte(payload), 5*time.Second)
				done <- result{m, err}
			}()

			m, err := tasks.NextMsg(2 * time.Second)
			if err != nil {
				t.Fatalf("orchestrator got no request from %s: %v", p, err)
			}
			if string(m.Data) != payload {
				t.Fatalf("orchestrator got %q, want %q", m.Data, payload)
			}
			if want := "_INBOX_" + p + "."; !strings.HasPrefix(m.Reply, want) {
				t.Fatalf("reply subject %q, want prefix %s", m.Reply, want)
			}
			if err := m.Respond([]byte("accepted " + payload)); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("%s's request: %v", p, r.err)
			}
			if string(r.msg.Data) != "accepted "+payload {
				t.Fatalf("%s got reply %q", p, r.msg.Data)
			}
			expectNoErrors(t, nc, rec)

			// allow_responses is one message per request: a second
			// answer is an unsolicited publish into the inbox.
			if err := m.Respond([]byte("again " + payload)); err != nil {
				t.Fatal(err)
			}
			flush(t, orch)
			natstest.Eventually(t, 2*time.Second, func() bool { return orchRec.violation("Publish", m.Reply) },
				"second response to %s: want a permission violation, got %v", m.Reply, orchRec.all())
			if p == client {
				// The client's standing inbox subscription saw the first
				// answer and must not see the second.
				sink := acme.sinks[client]
				flush(t, acme.conns[client])
				natstest.Eventually(t, 2*time.Second, func() bool { return sink.has("accepted " + payload) },
					"client's inbox subscription missed the answer")
				never(t, quietWindow, func() bool { return sink.has("again " + payload) },
					"second response reached the client's inbox")
			}
		})
	}

	never(t, 2*quietWindow, func() bool { n, _, _ := rivalTasks.Pending(); return n > 0 },
		"globex's orchestrator received acme's requests")
}

// TestImpersonation: planner's creds with coder's name and inbox prefix on
// the client side buy nothing: the server fills the ACL in from the JWT.
func TestImpersonation(t *testing.T) {
	f := startFixture(t)
	acme := f.tenants["acme"]
	rec := &recorder{}
	nc := f.env.Connect(t, acme.creds[planner], coder, nats.ErrorHandler(rec.handle))

	stolen := []string{"eq.cap.code", "eq.cap.review", "eq.ctl.coder.>", "_INBOX_coder.>"}
	for _, subject := range stolen {
		subscribeSync(t, nc, subject)
	}
	payload := f.payload("acme", "impostor")
	if err := nc.Publish("eq.agent.coder.out", []byte(payload)); err != nil {
		t.Fatal(err)
	}
	flush(t, nc)
	for _, subject := range stolen {
		natstest.Eventually(t, 2*time.Second, func() bool { return rec.violation("Subscription", subject) },
			"planner posing as coder subscribed to %s; errors %v", subject, rec.all())
	}
	natstest.Eventually(t, 2*time.Second, func() bool { return rec.violation("Publish", "eq.agent.coder.out") },
		"planner posing as coder published eq.agent.coder.out; errors %v", rec.all())

	sink := acme.sinks[orchestrator]
	sentinel := acme.publish(t, coder, "eq.agent.coder.out", "sentinel")
	natstest.Eventually(t, 2*time.Second, func() bool { return sink.has(sentinel) }, "coder's own output never arrived")
	if sink.has(payload) {
		t.Fatal("the orchestrator received planner's message as coder's output")
	}

	// Its own subjects still work under the borrowed name.
	own := subscribeSync(t, nc, "eq.cap.plan")
	flush(t, nc)
	want := acme.publish(t, orchestrator, "eq.cap.plan", "own")
	if m, err := own.NextMsg(2 * time.Second); err != nil || string(m.Data) != want {
		t.Fatalf("planner lost its own capability: %v", err)
	}
}

// fixture is one server with the tenants acme and globex, each holding the
// demo principals with long-lived connections: observers that keep the
// subscriptions the real principals would keep, and publishers of probes.
type fixture struct {
	env     *natstest.Env
	order   []string
	tenants map[string]*tenantConns
}

type tenantConns struct {
	name  string
	creds map[string]string
	conns map[string]*nats.Conn
	errs  map[string]*recorder
	sinks map[string]*sink // what each principal's observer received
}

// payloads are unique and name their tenant, so any message can be traced
// to the row that sent it and to the tenant it came from.
var payloadSeq atomic.Int64

func (f *fixture) payload(tenant, label string) string {
	return fmt.Sprintf("%s/%s/%d", tenant, label, payloadSeq.Add(1))
}

func startFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{env: natstest.Start(t), order: []string{"acme", "globex"}, tenants: map[string]*tenantConns{}}
	for _, name := range f.order {
		f.env.Tenant(t, name)
		tc := &tenantConns{
			name: name,
			creds: map[string]string{
				planner:      f.env.Agent(t, name, planner, "plan"),
				coder:        f.env.Agent(t, name, coder, "code", "review"),
				client:       f.env.Client(t, name, client),
				orchestrator: f.env.OrchestratorCreds(name),
			},
			conns: map[string]*nats.Conn{},
			errs:  map[string]*recorder{},
			sinks: map[string]*sink{},
		}
		for _, p := range who {
			tc.errs[p] = &recorder{}
			tc.sinks[p] = &sink{}
			tc.conns[p] = f.env.Connect(t, tc.creds[p], p, nats.ErrorHandler(tc.errs[p].handle))
		}
		// The subscriptions each principal legitimately holds.
		tc.observe(t, planner, "eq.cap.plan", "planners")
		tc.observe(t, planner, "eq.ctl.planner.>", "")
		tc.observe(t, coder, "eq.cap.code", "coders")
		tc.observe(t, coder, "eq.cap.review", "coders")
		tc.observe(t, coder, "eq.ctl.coder.>", "")
		tc.observe(t, client, "eq.client.client.>", "")
		tc.observe(t, client, "_INBOX_client.>", "")
		tc.observe(t, orchestrator, "eq.tasks.submit", "orchestrators")
		tc.observe(t, orchestrator, "eq.agent.*.>", "")
		for _, p := range who {
			flush(t, tc.conns[p])
			expectNoErrors(t, tc.conns[p], tc.errs[p])
		}
		f.tenants[name] = tc
	}
	// Registered last, so it runs before the connections close.
	t.Cleanup(func() {
		for _, tc := range f.tenants {
			for _, p := range who {
				if errs := tc.errs[p].all(); len(errs) > 0 {
					t.Errorf("%s's observer %s hit errors: %v", tc.name, p, errs)
				}
				for _, data := range tc.sinks[p].payloads() {
					if !strings.HasPrefix(data, tc.name+"/") && !strings.HasPrefix(data, "accepted "+tc.name+"/") {
						t.Errorf("%s's %s received %q from another tenant", tc.name, p, data)
					}
				}
			}
		}
	})
	return f
}

// observe subscribes p's long-lived connection to subject, into p's sink.
func (tc *tenantConns) observe(t *testing.T, p, subject, queue string) {
	t.Helper()
	if _, err := tc.conns[p].QueueSubscribe(subject, queue, tc.sinks[p].add); err != nil {
		t.Fatalf("%s %s subscribe %s: %v", tc.name, p, subject, err)
	}
}

// publish sends a fresh payload as p and waits until the server has
// routed it (Flush), so later barriers are ordered after it.
func (tc *tenantConns) publish(t *testing.T, p, subject, label string) string {
	t.Helper()
	payload := fmt.Sprintf("%s/%s/%d", tc.name, label, payloadSeq.Add(1))
	if err := tc.conns[p].Publish(subject, []byte(payload)); err != nil {
		t.Fatalf("%s %s publish %s: %v", tc.name, p, subject, err)
	}
	flush(t, tc.conns[p])
	return payload
}

func (tc *tenantConns) anySinkHas(payload string) bool {
	for _, s := range tc.sinks {
		if s.has(payload) {
			return true
		}
	}
	return false
}

// subscribeSync subscribes the way the real principal would: capability
// and task subjects are queue groups. Each call gets a group of its own, so
// a member left over from an earlier, closing connection cannot steal a
// probe.
func subscribeSync(t *testing.T, nc *nats.Conn, subject string) *nats.Subscription {
	t.Helper()
	var sub *nats.Subscription
	var err error
	if strings.HasPrefix(subject, "eq.cap.") || subject == "eq.tasks.submit" {
		sub, err = nc.QueueSubscribeSync(subject, fmt.Sprintf("q%d", payloadSeq.Add(1)))
	} else {
		sub, err = nc.SubscribeSync(subject)
	}
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	return sub
}

func flush(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if err := nc.FlushTimeout(2 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// expectNoErrors checks a connection after a Flush: the server sends a
// refusal before the PONG, so the read loop has seen any by now.
func expectNoErrors(t *testing.T, nc *nats.Conn, rec *recorder) {
	t.Helper()
	if err := nc.LastError(); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if errs := rec.all(); len(errs) > 0 {
		t.Fatalf("unexpected async errors: %v", errs)
	}
}

// recorder keeps a connection's async errors, so a permission violation is
// observed rather than assumed.
type recorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *recorder) handle(_ *nats.Conn, _ *nats.Subscription, err error) { r.add(err) }

func (r *recorder) add(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// violation reports whether the server refused op ("Publish" or
// "Subscription") on exactly subject. The server names the subject, which
// keeps one refusal from being credited to another.
func (r *recorder) violation(op, subject string) bool {
	want := fmt.Sprintf("Permissions Violation for %s to %q", op, subject)
	for _, err := range r.all() {
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
			return true
		}
	}
	return false
}

// sink collects messages from async subscriptions.
type sink struct {
	mu   sync.Mutex
	data []string
}

func (s *sink) add(m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, string(m.Data))
}

func (s *sink) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.data...)
}

func (s *sink) has(payload string) bool {
	for _, d := range s.payloads() {
		if d == payload {
			return true
		}
	}
	return false
}

// never fails the test if cond holds at any time within d: the way to wait
// for something that must not happen.
func never(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.After(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			t.Fatalf(format, args...)
		}
		select {
		case <-deadline:
			if cond() {
				t.Fatalf(format, args...)
			}
			return
		case <-tick.C:
		}
	}
}
