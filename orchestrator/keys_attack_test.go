package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Attack tests for item 7 of issue 10: rotation and revocation must bite
// on the very next message, in a running orchestrator that had the old
// key cached. Self-contained: a real server, real creds, the real
// orchestrator, and messages signed and sent by hand.

// keysAttackEnv is tenant acme with an agent principal for capability
// "code" (so submits for it are admitted) and a running orchestrator.
func keysAttackEnv(t *testing.T) *natstest.Env {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	env.Agent(t, "acme", "coder", "code")
	orchtest.Start(t, env, orchestrator.WithTick(10*time.Millisecond))
	return env
}

// signedSubmit is a submit for capability code signed by signer, claiming
// source.
func signedSubmit(t *testing.T, signer *bus.Signer, source string) (*nats.Msg, string) {
	t.Helper()
	e := agenttest.NewEvent(source, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"x"`)})
	if err := signer.Sign(e); err != nil {
		t.Fatal(err)
	}
	msg, err := bus.EncodeBinary(protocol.TasksSubmit, e)
	if err != nil {
		t.Fatal(err)
	}
	return msg, e.ID()
}

// ask sends msg as a request on nc and returns the orchestrator's answer.
func ask(t *testing.T, nc *nats.Conn, msg *nats.Msg) *event.Event {
	t.Helper()
	reply, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatalf("no answer to a submit: %v", err)
	}
	e, err := bus.Decode(reply, bus.DefaultMaxEventSize)
	if err != nil {
		t.Fatalf("answer is not an event: %v", err)
	}
	return e
}

func refusalOf(e *event.Event) protocol.Refused {
	var r protocol.Refused
	if e.Type() == protocol.TypeTaskRefused {
		json.Unmarshal(e.Data(), &r)
	}
	return r
}

// tenantJS is JetStream in tenant as its orchestrator user, the only
// principal that may read the tenant's state.
func tenantJS(t *testing.T, env *natstest.Env, tenant string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(env.Connect(t, env.OrchestratorCreds(tenant), "orchestrator"))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// taskIDs lists the keys of the tenant's tasks bucket.
func taskIDs(t *testing.T, js jetstream.JetStream) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "EQ_TASKS")
	if err != nil {
		t.Fatal(err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for k := range lister.Keys() {
		ids[k] = true
	}
	return ids
}

// auditRefusalCount is how many refusals for reason the audit stream
// stands for (a record may summarize repeated ones), and whether one of
// them names event id.
func auditRefusalCount(t *testing.T, js jetstream.JetStream, reason, eventID string) (int, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, named := 0, false
	err := audit.Tail(ctx, js, func(r audit.Record) error {
		if r.Decision != protocol.DecisionRefused || !strings.HasPrefix(r.Reason, reason) {
			return nil
		}
		if r.Refusal == nil {
			n++
			return nil
		}
		n += max(r.Refusal.Count, 1)
		named = named || r.Refusal.EventID == eventID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, named
}

// auditStillVerifies asserts every record of the tenant's audit verifies.
func auditStillVerifies(t *testing.T, env *natstest.Env, js jetstream.JetStream, tenant string) {
	t.Helper()
	keys, err := bus.NewStoreKeys(env.Store, bus.WithRetiredKeys())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	report, err := audit.Verify(ctx, js, tenant, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK() {
		t.Fatalf("the audit of %s no longer verifies: %+v", tenant, report.Failures)
	}
}

// TestRotatedKeyRefusedOnTheNextMessage: twenty times, a client's key is
// used (so the orchestrator has it cached), rotated, and the very first
// submit signed with the old key, sent at once over the client's new
// connection, is refused unknown_signer. None is accepted; the new key is
// accepted at once.
func TestRotatedKeyRefusedOnTheNextMessage(t *testing.T) {
	env := keysAttackEnv(t)
	ctx := context.Background()
	creds := env.Client(t, "acme", "client")
	source := protocol.Source("acme", "client")
	const rotations = 20
	accepted := 0
	for i := range rotations {
		oldSigner, err := bus.SignerFromCreds(creds)
		if err != nil {
			t.Fatal(err)
		}
		before, err := env.Dial(creds, "client")
		if err != nil {
			t.Fatal(err)
		}
		// The old key works and is now in the orchestrator's cache.
		if msg, _ := signedSubmit(t, oldSigner, source); ask(t, before, msg).Type() != protocol.TypeTaskAccepted {
			t.Fatalf("rotation %d: the current key was not accepted before the rotation", i+1)
		}
		if _, err := env.Store.Rotate(ctx, "acme", "client", "", env.Publisher); err != nil {
			t.Fatal(err)
		}
		before.Close() // the server closes it anyway: its key is revoked
		after, err := env.Dial(creds, "client")
		if err != nil {
			t.Fatalf("rotation %d: the new creds: %v", i+1, err)
		}
		msg, _ := signedSubmit(t, oldSigner, source)
		reply := ask(t, after, msg)
		if reply.Type() == protocol.TypeTaskAccepted {
			accepted++
			t.Errorf("rotation %d: a submit signed with the rotated-out key was accepted on the first try", i+1)
		} else if r := refusalOf(reply); r.Reason != "unknown_signer" {
			t.Errorf("rotation %d: old key: %s %s, want refused unknown_signer", i+1, reply.Type(), reply.Data())
		}
		// The new key is accepted at once.
		newSigner, err := bus.SignerFromCreds(creds)
		if err != nil {
			t.Fatal(err)
		}
		if msg, _ := signedSubmit(t, newSigner, source); ask(t, after, msg).Type() != protocol.TypeTaskAccepted {
			t.Errorf("rotation %d: the new key was not accepted at once", i+1)
		}
		after.Close()
	}
	if accepted > 0 {
		t.Fatalf("%d of %d submits signed with a rotated-out key were accepted", accepted, rotations)
	}
	auditStillVerifies(t, env, tenantJS(t, env, "acme"), "acme")
}

// TestRevokedPrincipalRefusedOnTheNextMessage: a client whose key the
// orchestrator has cached is revoked, and at once its signed submit is
// published through another client's live connection. Five times, each
// with another revoked client: every one is refused unknown_signer,
// nothing is created, the audit still verifies, and the tenant still
// serves its other client.
func TestRevokedPrincipalRefusedOnTheNextMessage(t *testing.T) {
	env := keysAttackEnv(t)
	ctx := context.Background()
	js := tenantJS(t, env, "acme")
	carrierCreds := env.Client(t, "acme", "carrier")
	carrier := env.Connect(t, carrierCreds, "carrier")
	const revocations = 5
	var firstID string
	for i := range revocations {
		name := fmt.Sprintf("revoked%d", i)
		creds := env.Client(t, "acme", name)
		signer, err := bus.SignerFromCreds(creds)
		if err != nil {
			t.Fatal(err)
		}
		source := protocol.Source("acme", name)
		own := env.Connect(t, creds, name)
		if msg, _ := signedSubmit(t, signer, source); ask(t, own, msg).Type() != protocol.TypeTaskAccepted {
			t.Fatalf("%s: not accepted before the revocation", name)
		}
		msg, id := signedSubmit(t, signer, source) // signed while still valid
		if i == 0 {
			firstID = id
		}
		if _, err := env.Store.Revoke(ctx, "acme", name, env.Publisher); err != nil {
			t.Fatal(err)
		}
		// At once, through a connection the server did not close.
		if err := carrier.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		if err := carrier.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Every one was handled, and refused: the first is recorded at once,
	// the rest in the summary that closes the refusal window.
	// Each read of the audit is a consumer: poll gently.
	var refused int
	var named bool
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if refused, named = auditRefusalCount(t, js, "unknown_signer", firstID); refused >= revocations && named {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit shows %d unknown_signer refusals (the first named: %v), want %d; %d tasks exist, %d of them accepted before the revocations",
				refused, named, revocations, len(taskIDs(t, js)), revocations)
		}
	}
	if refused != revocations {
		t.Errorf("%d unknown_signer refusals recorded, want %d", refused, revocations)
	}
	tasks := taskIDs(t, js)
	if len(tasks) != revocations {
		t.Errorf("%d tasks exist, want the %d accepted before the revocations", len(tasks), revocations)
	}
	auditStillVerifies(t, env, js, "acme")

	// The tenant is still served, its other client at once.
	signer, err := bus.SignerFromCreds(carrierCreds)
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := signedSubmit(t, signer, protocol.Source("acme", "carrier")); ask(t, carrier, msg).Type() != protocol.TypeTaskAccepted {
		t.Fatal("the other client's submit was not accepted")
	}
	if _, err := env.Dial(env.Store.DefaultCredsFile("acme", "revoked0"), "revoked0"); err == nil || errors.Is(err, nats.ErrTimeout) {
		t.Errorf("revoked creds still connect: %v", err)
	}
}
