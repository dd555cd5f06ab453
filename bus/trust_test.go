package bus

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTrustServer: with signature checks off, a forged signature passes
// (the server's ACLs vouch for the sender), but everything else still
// holds: an unsigned event, another tenant's source, a stale event and a
// replay are refused, and unsigned extensions are not handed on. Switched
// back on, the forgery is refused again, in every copy of the verifier.
func TestTrustServer(t *testing.T) {
	ctx := context.Background()
	reg := NewStaticKeys()
	orch := newTestPrincipal(t, reg, "eq://acme/orchestrator")
	forger := newTestPrincipal(t, nil, "eq://acme/orchestrator") // a key nobody registered
	v := NewVerifier(reg, WithTenant("acme"))
	sub := v.withOwnReplayWindow()
	now := time.Now()

	forged := testEvent(orch.source, "forged-1", now)
	if err := forger.signer.Sign(forged); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, forged); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("checks on: forged event: %v, want ErrUnknownSigner", err)
	}

	v.TrustServer(true)
	if !sub.TrustsServer() {
		t.Fatal("a copy of the verifier does not share the switch")
	}
	forged = testEvent(orch.source, "forged-2", now)
	forger.signer.Sign(forged)
	forged.SetExtension("unsigned", "added after signing")
	out, err := sub.Verify(ctx, forged)
	if err != nil {
		t.Fatalf("checks off: %v", err)
	}
	if _, ok := out.Extensions()["unsigned"]; ok {
		t.Error("an extension outside signedextattrs was handed on")
	}
	if _, err := sub.Verify(ctx, forged); !errors.Is(err, ErrReplay) {
		t.Errorf("checks off: replay: %v, want ErrReplay", err)
	}
	if _, err := sub.Verify(ctx, testEvent(orch.source, "unsigned-1", now)); !errors.Is(err, ErrUnsigned) {
		t.Errorf("checks off: unsigned: %v, want ErrUnsigned", err)
	}
	stale := testEvent(orch.source, "stale-1", now.Add(-time.Hour))
	orch.signer.Sign(stale)
	if _, err := sub.Verify(ctx, stale); !errors.Is(err, ErrStale) {
		t.Errorf("checks off: stale: %v, want ErrStale", err)
	}
	other := testEvent("eq://globex/orchestrator", "other-1", now)
	orch.signer.Sign(other)
	if _, err := sub.Verify(ctx, other); !errors.Is(err, ErrSignerMismatch) {
		t.Errorf("checks off: another tenant: %v, want ErrSignerMismatch", err)
	}

	v.TrustServer(false)
	forged = testEvent(orch.source, "forged-3", now)
	forger.signer.Sign(forged)
	if _, err := sub.Verify(ctx, forged); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("checks back on: forged event: %v, want ErrUnknownSigner", err)
	}
}
