package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// harness: a real server in operator mode, tenant acme, a running
// orchestrator and a client; agents are started per test with their own
// creds.
type harness struct {
	t      *testing.T
	env    *natstest.Env
	client *client.Client
}

func newHarness(t *testing.T, opts ...orchestrator.Option) *harness {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	policy := orchestrator.RetryPolicy{
		MaxAttempts:    3,
		InitialBackoff: 20 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
		ClaimTimeout:   3 * time.Second,
		AttemptTimeout: 10 * time.Second,
		TaskTimeout:    30 * time.Second,
	}
	all := append([]orchestrator.Option{orchestrator.WithDefaultRetryPolicy(policy), orchestrator.WithTick(10 * time.Millisecond)}, opts...)
	orchtest.Start(t, env, all...)

	creds := env.Client(t, "acme", "client")
	nc := env.Connect(t, creds, "client")
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nc, "acme", "client", signer, keys)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, env: env, client: c}
}

// running is an agent whose Run is going on in the background.
type running struct {
	agent    *agents.Agent
	stop     context.CancelFunc
	finished chan struct{}
	err      error // Run's result, once finished is closed
}

// wait returns Run's result, failing the test if it takes too long.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.finished:
		return r.err
	case <-time.After(40 * time.Second):
		t.Fatal("agent did not stop")
		return nil
	}
}

// agent connects an agent with handlers per capability and runs it until
// the test ends (or stop is called).
func (h *harness) agent(creds string, handlers map[string]agents.HandlerFunc, opts ...agents.Option) *running {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := agents.Connect(ctx, h.env.URL, creds, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	for c, f := range handlers {
		if err := a.Handle(c, f); err != nil {
			h.t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(context.Background())
	r := &running{agent: a, stop: stop, finished: make(chan struct{})}
	go func() { r.err = a.Run(runCtx); close(r.finished) }()
	h.t.Cleanup(func() {
		stop()
		select {
		case <-r.finished:
		case <-time.After(40 * time.Second):
			h.t.Error("agent did not stop")
		}
	})
	h.waitInstance(a.Name(), a.Instance())
	return r
}

// submit submits a task for capability with input and returns its id.
func (h *harness) submit(capability string, input any) string {
	h.t.Helper()
	raw, _ := json.Marshal(input)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	acc, err := h.client.Submit(ctx, protocol.SubmitRequest{Capability: capability, Input: raw})
	if err != nil {
		h.t.Fatalf("submit %s: %v", capability, err)
	}
	return acc.TaskID
}

// watch follows a task to its end, collecting its events.
func (h *harness) watch(id string) (protocol.TaskView, []client.Update) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var updates []client.Update
	v, err := h.client.Watch(ctx, id, func(u client.Update) { updates = append(updates, u) })
	if err != nil {
		h.t.Fatalf("watch %s: %v", id, err)
	}
	return v, updates
}

// waitState polls until the task reaches state.
func (h *harness) waitState(id string, state protocol.State) protocol.TaskView {
	h.t.Helper()
	var v protocol.TaskView
	natstest.Eventually(h.t, 20*time.Second, func() bool {
		var err error
		v, err = h.client.Get(context.Background(), id)
		return err == nil && v.State == state
	}, "task %s never reached %s (last %s: %s)", id, state, v.State, v.Error)
	return v
}

// live reads the agent registry as the tenant's orchestrator would.
func (h *harness) live() []protocol.Heartbeat {
	h.t.Helper()
	nc := h.env.Connect(h.t, h.env.OrchestratorCreds("acme"), "orchestrator")
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, protocol.AgentsBucket)
	if err != nil {
		h.t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []protocol.Heartbeat
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		var hb protocol.Heartbeat
		if err := json.Unmarshal(e.Value(), &hb); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, hb)
	}
	return out
}

// waitListed waits until n instances of agent are in the registry.
func (h *harness) waitListed(agent string, n int) []protocol.Heartbeat {
	h.t.Helper()
	var mine []protocol.Heartbeat
	natstest.Eventually(h.t, 10*time.Second, func() bool {
		mine = mine[:0]
		for _, hb := range h.live() {
			if hb.Agent == agent {
				mine = append(mine, hb)
			}
		}
		return len(mine) == n
	}, "agent %s: want %d live instances, have %d", agent, n, len(mine))
	return mine
}

// waitInstance waits until an instance of agent is in the registry.
func (h *harness) waitInstance(agent, instance string) protocol.Heartbeat {
	h.t.Helper()
	var found protocol.Heartbeat
	natstest.Eventually(h.t, 10*time.Second, func() bool {
		for _, hb := range h.live() {
			if hb.Agent == agent && hb.Instance == instance {
				found = hb
				return true
			}
		}
		return false
	}, "agent %s instance %s never listed", agent, instance)
	return found
}

// natsOpt keeps reconnects quick in tests.
var natsOpt = agents.WithNATSOptions(nats.ReconnectWait(50 * time.Millisecond))
