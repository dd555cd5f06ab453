package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// harness: a real server, tenant acme, a running orchestrator, and helpers
// to act as agents and clients with their own creds.
type harness struct {
	t    *testing.T
	env  *natstest.Env
	keys bus.KeyRegistry
	stop func() // stops the orchestrator
	// opts are the harness's orchestrator options, kept for every restart.
	opts []orchestrator.Option
}

func fastPolicy() orchestrator.RetryPolicy {
	return orchestrator.RetryPolicy{
		MaxAttempts:    3,
		InitialBackoff: 20 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
		ClaimTimeout:   time.Second,
		AttemptTimeout: 2 * time.Second,
		TaskTimeout:    10 * time.Second,
	}
}

func newHarness(t *testing.T, opts ...orchestrator.Option) *harness {
	t.Helper()
	return newHarnessOf(t, []string{"acme"}, opts...)
}

// newHarnessOf is a harness whose tenants exist before the orchestrator
// starts.
func newHarnessOf(t *testing.T, tenants []string, opts ...orchestrator.Option) *harness {
	t.Helper()
	env := natstest.Start(t)
	for _, name := range tenants {
		env.Tenant(t, name)
	}
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, env: env, keys: keys, opts: opts}
	h.startOrchestrator()
	return h
}

func (h *harness) startOrchestrator(opts ...orchestrator.Option) {
	h.t.Helper()
	all := append([]orchestrator.Option{orchestrator.WithDefaultRetryPolicy(fastPolicy()), orchestrator.WithTick(10 * time.Millisecond)}, h.opts...)
	all = append(all, opts...)
	h.stop = orchtest.Start(h.t, h.env, all...)
}

func (h *harness) stopOrchestrator() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// conn connects a principal with a bus.Conn of its own creds.
func (h *harness) conn(tenant, name, creds string) *bus.Conn {
	h.t.Helper()
	nc := h.env.Connect(h.t, creds, name)
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := bus.NewConn(nc, signer, bus.NewVerifier(h.keys, bus.WithTenant(tenant)),
		bus.WithRefusalHandler(func(_ context.Context, msg *nats.Msg, err error) {
			h.t.Logf("%s refused a message on %s: %v", name, msg.Subject, err)
		}))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// client is a submitter.
type client struct {
	h      *harness
	name   string
	tenant string
	conn   *bus.Conn
}

func (h *harness) client(tenant, name string) *client {
	creds := h.env.Client(h.t, tenant, name)
	return &client{h: h, name: name, tenant: tenant, conn: h.conn(tenant, name, creds)}
}

func (c *client) source() string { return protocol.Source(c.tenant, c.name) }

// request sends an operation and returns the reply event.
func (c *client) request(subject, typ string, data any) *event.Event {
	c.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := c.conn.Request(ctx, subject, agenttest.NewEvent(c.source(), typ, data))
	if err != nil {
		c.h.t.Fatalf("%s: %v", subject, err)
	}
	return reply
}

func (c *client) submit(req protocol.SubmitRequest) protocol.Accepted {
	c.h.t.Helper()
	reply := c.request(protocol.TasksSubmit, protocol.TypeTaskSubmit, req)
	if reply.Type() != protocol.TypeTaskAccepted {
		c.h.t.Fatalf("submit refused: %s", reply.Data())
	}
	var a protocol.Accepted
	json.Unmarshal(reply.Data(), &a)
	return a
}

func (c *client) get(id string) protocol.TaskView {
	c.h.t.Helper()
	reply := c.request(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: id})
	if reply.Type() != protocol.TypeTaskView {
		c.h.t.Fatalf("get refused: %s", reply.Data())
	}
	var v protocol.TaskView
	json.Unmarshal(reply.Data(), &v)
	return v
}

// waitState polls until the task is in state (or fails the test).
func (c *client) waitState(id string, state protocol.State) protocol.TaskView {
	c.h.t.Helper()
	var v protocol.TaskView
	natstest.Eventually(c.h.t, 10*time.Second, func() bool {
		v = c.get(id)
		return v.State == state
	}, "task %s never reached %s (last: %+v)", id, state, &v)
	return v
}

// watch collects the task events sent to this client.
func (c *client) watch() *events {
	ev := &events{}
	sub, err := c.conn.Subscribe(protocol.ClientEvents(c.name), bus.HandlerFunc(func(_ context.Context, m *bus.Message) {
		ev.mu.Lock()
		ev.list = append(ev.list, m.Event)
		ev.mu.Unlock()
	}))
	if err != nil {
		c.h.t.Fatal(err)
	}
	c.conn.NATS().Flush()
	c.h.t.Cleanup(func() { sub.Unsubscribe() })
	return ev
}

type events struct {
	mu   sync.Mutex
	list []*event.Event
}

func (e *events) types(taskID string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.list {
		if ev.Extensions()[protocol.ExtTaskID] == taskID {
			out = append(out, ev.Type())
		}
	}
	return out
}

// agent runs a handler for dispatches of its capabilities, speaking the
// protocol by hand (the agents SDK comes later).
type agent struct {
	h      *harness
	name   string
	tenant string
	conn   *bus.Conn

	mu        sync.Mutex
	cancelled map[string]chan struct{}
	received  int
}

// agentFunc handles one attempt; ctx is cancelled when the orchestrator
// cancels the task. It returns output or an error report.
type agentFunc func(ctx context.Context, a *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report)

func (h *harness) agent(tenant, name string, handle agentFunc, capabilities ...string) *agent {
	creds := h.env.Agent(h.t, tenant, name, capabilities...)
	a := &agent{h: h, name: name, tenant: tenant, conn: h.conn(tenant, name, creds), cancelled: map[string]chan struct{}{}}
	_, err := a.conn.Subscribe(protocol.Control(name), bus.HandlerFunc(func(_ context.Context, m *bus.Message) {
		if m.Event.Type() != protocol.TypeControlCancel {
			return
		}
		id, _ := m.Event.Extensions()[protocol.ExtTaskID].(string)
		a.mu.Lock()
		if ch, ok := a.cancelled[id]; ok {
			close(ch)
			delete(a.cancelled, id)
		}
		a.mu.Unlock()
	}))
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range capabilities {
		_, err := a.conn.QueueSubscribe(protocol.Capability(c), c, bus.HandlerFunc(func(_ context.Context, m *bus.Message) {
			var d protocol.Dispatch
			json.Unmarshal(m.Event.Data(), &d)
			go a.run(d, handle)
		}))
		if err != nil {
			h.t.Fatal(err)
		}
	}
	a.conn.NATS().Flush()
	return a
}

func (a *agent) source() string { return protocol.Source(a.tenant, a.name) }

func (a *agent) report(kind, typ string, r protocol.Report) {
	e := agenttest.NewEvent(a.source(), typ, r)
	err := a.conn.Publish(context.Background(), protocol.AgentReport(a.name, kind), e)
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) { // closed: the test is over
		a.h.t.Errorf("report: %v", err)
	}
}

func (a *agent) run(d protocol.Dispatch, handle agentFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	a.mu.Lock()
	a.cancelled[d.TaskID] = stop
	a.received++
	a.mu.Unlock()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	a.report("running", protocol.TypeTaskRunning, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt})
	out, failure := handle(ctx, a, d)
	if ctx.Err() != nil {
		return // cancelled: say nothing more
	}
	if failure != nil {
		failure.TaskID, failure.Attempt = d.TaskID, d.Attempt
		a.report("failed", protocol.TypeTaskFailed, *failure)
		return
	}
	a.report("completed", protocol.TypeTaskCompleted, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt, Output: out})
}

func (a *agent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.received
}
