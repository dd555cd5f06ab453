package bench

import (
	"bytes"
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
)

// rig submits tasks as a client of the client SDK and waits for each
// task's end with client.Await, as a long-lived client would.
type rig struct {
	client     *client.Client
	capability string
	payload    int
	// echoed: the agents serving capability echo their input, so each
	// output is checked against it.
	echoed bool
}

// newRig makes the client on nc (connected with the principal's creds
// and inbox prefix), verifying with keys what the orchestrator sends as
// its security level says (client.AdoptLevel), traced to tp.
func newRig(ctx context.Context, nc *nats.Conn, tenant, name string, signer *bus.Signer, keys bus.KeyRegistry, tp trace.TracerProvider, capability string, payload int, echoed bool) (*rig, error) {
	cl, err := client.New(nc, tenant, name, signer, keys, bus.WithTracerProvider(tp))
	if err != nil {
		return nil, err
	}
	if _, err := cl.AdoptLevel(ctx); err != nil {
		return nil, fmt.Errorf("bench: ask the orchestrator its security level: %w", err)
	}
	return &rig{client: cl, capability: capability, payload: payload, echoed: echoed}, nil
}

// roundTrip submits task n and waits until it is completed, with its
// input echoed when the agents echo.
func (r *rig) roundTrip(ctx context.Context, n int64) error {
	in := input(n, r.payload)
	acc, err := r.client.Submit(ctx, protocol.SubmitRequest{Capability: r.capability, Input: in})
	if err != nil {
		return err
	}
	v, err := r.client.Await(ctx, acc.TaskID)
	if err != nil {
		return fmt.Errorf("task %s: no end: %w", acc.TaskID, err)
	}
	if v.State != protocol.StateCompleted {
		return fmt.Errorf("task %s ended %s: %s", v.TaskID, v.State, v.Error)
	}
	if r.echoed && !bytes.Equal(v.Output, in) {
		return fmt.Errorf("task %s: its output is not its input echoed (%d bytes for %d)", v.TaskID, len(v.Output), len(in))
	}
	return nil
}
