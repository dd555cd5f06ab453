package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
)

// rig submits tasks as a client of the client SDK and waits for each
// task's final event on the client's events.
type rig struct {
	client     *client.Client
	finals     *finals
	capability string
	payload    int
	// echoed: the agents serving capability echo their input, so each
	// output is checked against it.
	echoed bool
}

// newRig makes the client on nc (connected with the principal's creds
// and inbox prefix) and subscribes to its events, all verified with keys
// and traced to tp.
func newRig(nc *nats.Conn, tenant, name string, signer *bus.Signer, keys bus.KeyRegistry, tp trace.TracerProvider, capability string, payload int, echoed bool) (*rig, error) {
	cl, err := client.New(nc, tenant, name, signer, keys, bus.WithTracerProvider(tp))
	if err != nil {
		return nil, err
	}
	conn, err := bus.NewConn(nc, signer, bus.NewVerifier(keys, bus.WithTenant(tenant)), bus.WithTracerProvider(tp))
	if err != nil {
		return nil, err
	}
	f := &finals{waiting: map[string]chan protocol.TaskView{}, early: map[string]protocol.TaskView{}}
	if _, err := conn.Subscribe(protocol.ClientEvents(name), bus.HandlerFunc(f.handle)); err != nil {
		return nil, fmt.Errorf("bench: subscribe to the client's events: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	return &rig{client: cl, finals: f, capability: capability, payload: payload, echoed: echoed}, nil
}

// roundTrip submits task n and waits until it is completed, with its
// input echoed when the agents echo.
func (r *rig) roundTrip(ctx context.Context, n int64) error {
	in := input(n, r.payload)
	acc, err := r.client.Submit(ctx, protocol.SubmitRequest{Capability: r.capability, Input: in})
	if err != nil {
		return err
	}
	v, err := r.finals.wait(ctx, acc.TaskID)
	if err != nil {
		return err
	}
	if v.State != protocol.StateCompleted {
		return fmt.Errorf("task %s ended %s: %s", v.TaskID, v.State, v.Error)
	}
	if r.echoed && !bytes.Equal(v.Output, in) {
		return fmt.Errorf("task %s: its output is not its input echoed (%d bytes for %d)", v.TaskID, len(v.Output), len(in))
	}
	return nil
}

// finals routes the client's final task events to whoever waits for
// them; an event may arrive before its waiter knows the task id.
type finals struct {
	mu      sync.Mutex
	waiting map[string]chan protocol.TaskView
	early   map[string]protocol.TaskView
}

func (f *finals) handle(_ context.Context, m *bus.Message) {
	var v protocol.TaskView
	if json.Unmarshal(m.Event.Data(), &v) != nil || !v.State.Final() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.waiting[v.TaskID]; ok {
		delete(f.waiting, v.TaskID)
		ch <- v
		return
	}
	f.early[v.TaskID] = v
}

func (f *finals) wait(ctx context.Context, id string) (protocol.TaskView, error) {
	f.mu.Lock()
	if v, ok := f.early[id]; ok {
		delete(f.early, id)
		f.mu.Unlock()
		return v, nil
	}
	ch := make(chan protocol.TaskView, 1)
	f.waiting[id] = ch
	f.mu.Unlock()
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
		return protocol.TaskView{}, fmt.Errorf("task %s: no final event: %w", id, context.Cause(ctx))
	}
}
