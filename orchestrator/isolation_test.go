package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
)

// TestTenantIsolation: tenant globex cannot see or touch tenant acme's
// tasks, results or audit, through any subject it may use.
func TestTenantIsolation(t *testing.T) {
	h := newHarness(t)
	h.env.Tenant(t, "globex")
	h.startOrchestrator() // a second orchestrator: it serves globex too
	h.agent("acme", "coder", echo, "code")
	globexRan := make(chan string, 4)
	h.agent("globex", "coder", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		globexRan <- d.TaskID
		return json.RawMessage(`"globex"`), nil
	}, "code")

	acme := h.client("acme", "client")
	acc := acme.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"secret"`)})
	acme.waitState(acc.TaskID, protocol.StateCompleted)

	// Same client name in the other tenant: the task id means nothing there.
	globex := h.client("globex", "client")
	for _, op := range []struct{ subject, typ string }{
		{protocol.TasksGet, protocol.TypeTaskGet},
		{protocol.TasksCancel, protocol.TypeTaskCancel},
	} {
		reply := globex.request(op.subject, op.typ, protocol.TaskRef{TaskID: acc.TaskID})
		var r protocol.Refused
		json.Unmarshal(reply.Data(), &r)
		if reply.Type() != protocol.TypeTaskRefused || r.Reason != "not_found" {
			t.Fatalf("%s of acme's task from globex: %s %s", op.subject, reply.Type(), reply.Data())
		}
	}
	listing := globex.request(protocol.TasksList, protocol.TypeTaskList, protocol.ListRequest{})
	var l protocol.Listing
	json.Unmarshal(listing.Data(), &l)
	if len(l.Tasks) != 0 {
		t.Fatalf("globex lists %d tasks", len(l.Tasks))
	}
	select {
	case id := <-globexRan:
		t.Fatalf("globex's agent ran task %s", id)
	case <-time.After(100 * time.Millisecond):
	}

	// Globex's orchestrator user has JetStream, but only its own: acme's
	// tasks and audit are not there.
	onc := h.env.Connect(t, h.env.OrchestratorCreds("globex"), "orchestrator")
	js, err := jetstream.New(onc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, acc.TaskID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("acme's task readable in globex's store: %v", err)
	}
	stream, err := js.Stream(ctx, "EQ_AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.GetLastMsgForSubject(ctx, "eq.audit.accepted"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("globex's audit holds a record: %v", err)
	}

	// Within acme, another client cannot read this client's task either.
	other := h.client("acme", "other")
	reply := other.request(protocol.TasksGet, protocol.TypeTaskGet, protocol.TaskRef{TaskID: acc.TaskID})
	if reply.Type() != protocol.TypeTaskRefused {
		t.Fatalf("another client of acme read the task: %s", reply.Data())
	}
}
