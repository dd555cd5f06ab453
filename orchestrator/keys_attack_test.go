package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Rotation and revocation bite on the very next message, in a running
// orchestrator that had the old key cached.

// TestRotatedKeyRefusedOnTheNextMessage: twenty times, a client's key is
// used (so the orchestrator has it cached), rotated, and the very first
// submit signed with the old key, sent at once over the client's new
// connection, is refused unknown_signer. None is accepted; the new key is
// accepted at once.
func TestRotatedKeyRefusedOnTheNextMessage(t *testing.T) {
	h := newAttackHarness(t)
	h.env.Agent(t, "acme", "coder", "code")
	ctx := context.Background()
	creds := h.env.Client(t, "acme", "client")
	submit := protocol.SubmitRequest{Capability: "code"}
	for i := range 20 {
		before := h.attacker("acme", "client", creds)
		// The old key works and is now in the orchestrator's cache.
		if e := before.request(before.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, submit), 5*time.Second); e == nil || e.Type() != protocol.TypeTaskAccepted {
			t.Fatalf("rotation %d: the current key was not accepted before the rotation", i+1)
		}
		if _, err := h.env.Store.Rotate(ctx, "acme", "client", "", h.env.Publisher); err != nil {
			t.Fatal(err)
		}
		before.nc.Close() // the server closes it anyway: its key is revoked
		after := h.attacker("acme", "client", creds)
		// The old signer, over the new connection, on the first try.
		old := &attacker{h: h, tenant: "acme", name: "client", nc: after.nc, signer: before.signer}
		refusedWith(t, old.request(old.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, submit), 5*time.Second), "unknown_signer")
		if e := after.request(after.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, submit), 5*time.Second); e == nil || e.Type() != protocol.TypeTaskAccepted {
			t.Fatalf("rotation %d: the new key was not accepted at once", i+1)
		}
		after.nc.Close()
	}
	if n := len(h.taskKeys("acme")); n != 40 {
		t.Fatalf("%d tasks, want the 40 submitted with current keys", n)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// TestRevokedPrincipalRefusedOnTheNextMessage: a client whose key the
// orchestrator has cached is revoked, and at once its signed submit is
// published through another client's live connection. Five times, each
// with another revoked client: every one is refused unknown_signer,
// nothing is created, the audit still verifies, and the tenant still
// serves its other client.
func TestRevokedPrincipalRefusedOnTheNextMessage(t *testing.T) {
	h := newAttackHarness(t)
	h.env.Agent(t, "acme", "coder", "code")
	ctx := context.Background()
	carrier := h.attacker("acme", "carrier", h.env.Client(t, "acme", "carrier"))
	submit := protocol.SubmitRequest{Capability: "code"}
	const revocations = 5
	for i := range revocations {
		name := fmt.Sprintf("revoked%d", i)
		victim := h.attacker("acme", name, h.env.Client(t, "acme", name))
		if e := victim.request(victim.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, submit), 5*time.Second); e == nil || e.Type() != protocol.TypeTaskAccepted {
			t.Fatalf("%s: not accepted before the revocation", name)
		}
		msg := victim.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, submit) // signed while still valid
		if _, err := h.env.Store.Revoke(ctx, "acme", name, h.env.Publisher); err != nil {
			t.Fatal(err)
		}
		// At once, through a connection the server did not close.
		if err := carrier.nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	// Every one was handled and refused: the first is recorded at once,
	// the rest in the summary that closes the refusal window.
	refused := 0
	for deadline := time.Now().Add(30 * time.Second); refused < revocations; {
		refused = 0
		for _, r := range h.auditRecordsPaced("acme") {
			if r.decision == protocol.DecisionRefused && r.reason == "unknown_signer" {
				refused += max(r.count, 1)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit shows %d unknown_signer refusals, want %d", refused, revocations)
		}
	}
	if n := len(h.taskKeys("acme")); n != revocations {
		t.Fatalf("%d tasks exist, want the %d accepted before the revocations", n, revocations)
	}
	h.auditVerifies("acme")
	if e := carrier.request(carrier.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, submit), 5*time.Second); e == nil || e.Type() != protocol.TypeTaskAccepted {
		t.Fatal("the other client's submit was not accepted")
	}
	if _, err := h.env.Dial(h.env.Store.DefaultCredsFile("acme", "revoked0"), "revoked0"); err == nil || errors.Is(err, nats.ErrTimeout) {
		t.Errorf("revoked creds still connect: %v", err)
	}
	h.otherTenantServed()
}
