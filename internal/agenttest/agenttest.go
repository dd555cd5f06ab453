// Package agenttest speaks the agent side of the task protocol by hand, for
// tests of the orchestrator, the CLI and the audit (the agents SDK is its
// own package and has its own tests).
package agenttest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// NewEvent builds an unsigned event from source with bus.NewEvent; data
// that cannot be marshalled is a bug in the test, so it panics.
func NewEvent(source, typ string, data any) *event.Event {
	e, err := bus.NewEvent(source, typ, "", data)
	if err != nil {
		panic(err)
	}
	return e
}

// Echo runs an agent on nc (connected with creds) that answers every
// dispatch on capability with {"echo": input}.
func Echo(t testing.TB, nc *nats.Conn, keys bus.KeyRegistry, creds, tenant, name, capability string) {
	t.Helper()
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := bus.NewConn(nc, signer, bus.NewVerifier(keys, bus.WithTenant(tenant)))
	if err != nil {
		t.Fatal(err)
	}
	report := func(kind, typ string, r protocol.Report) {
		conn.Publish(context.Background(), protocol.AgentReport(name, kind), NewEvent(protocol.Source(tenant, name), typ, r))
	}
	_, err = conn.QueueSubscribe(protocol.Capability(capability), capability, bus.HandlerFunc(func(_ context.Context, m *bus.Message) {
		var d protocol.Dispatch
		json.Unmarshal(m.Event.Data(), &d)
		report("running", protocol.TypeTaskRunning, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt})
		report("completed", protocol.TypeTaskCompleted, protocol.Report{TaskID: d.TaskID, Attempt: d.Attempt,
			Output: json.RawMessage(`{"echo":` + string(d.Input) + `}`)})
	}))
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
}
