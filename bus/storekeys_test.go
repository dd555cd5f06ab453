package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nuid"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// signedBy signs a fresh event from source with the key in creds.
func signedBy(t *testing.T, creds, source string, at time.Time) *event.Event {
	t.Helper()
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetID(nuid.Next())
	e.SetSource(source)
	e.SetType(protocol.TypeTaskCompleted)
	e.SetTime(at)
	e.SetData(event.ApplicationJSON, map[string]string{"status": "ok"})
	if err := signer.Sign(&e); err != nil {
		t.Fatal(err)
	}
	return &e
}

// Keys that rotation retired, and revoked principals' keys, are refused by
// the live registry and accepted, each for its own source only, by the
// historical one.
func TestStoreKeysRetired(t *testing.T) {
	ctx := context.Background()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	coderCreds := env.Agent(t, "acme", "coder", "code")
	plannerCreds := env.Agent(t, "acme", "planner", "plan")
	coder, planner := protocol.Source("acme", "coder"), protocol.Source("acme", "planner")
	now := time.Now()

	// Signed before the rotation and the revocation.
	beforeRotation := signedBy(t, coderCreds, coder, now)
	beforeRevocation := signedBy(t, plannerCreds, planner, now)
	impersonation := signedBy(t, coderCreds, planner, now) // coder's key, planner's name

	p, err := env.Store.Rotate(ctx, "acme", "coder", "", env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.RetiredKeys) != 1 || p.RetiredKeys[0].PublicKey == p.PublicKey {
		t.Fatalf("rotated principal's retired keys: %+v", p.RetiredKeys)
	}
	if _, err := env.Store.Revoke(ctx, "acme", "planner", env.Publisher); err != nil {
		t.Fatal(err)
	}
	afterRotation := signedBy(t, coderCreds, coder, now) // the new creds

	live, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	historical, err := bus.NewStoreKeys(env.Store, bus.WithRetiredKeys())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		event *event.Event
		live  error // nil: accepted
		old   error
	}{
		{"retired key", beforeRotation, bus.ErrUnknownSigner, nil},
		{"revoked principal", beforeRevocation, bus.ErrUnknownSigner, nil},
		{"current key", afterRotation, nil, nil},
		{"retired key for another source", impersonation, bus.ErrUnknownSigner, bus.ErrSignerMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, check := range []struct {
				what string
				keys bus.KeyRegistry
				want error
			}{{"live", live, tc.live}, {"historical", historical, tc.old}} {
				_, err := bus.NewVerifier(check.keys, bus.WithTenant("acme")).Verify(ctx, tc.event)
				if (check.want == nil) != (err == nil) || (check.want != nil && !errors.Is(err, check.want)) {
					t.Errorf("%s registry: %v, want %v", check.what, err, check.want)
				}
			}
		})
	}

	// A registry made before the rotation does not learn the retired key
	// by lookup either: the cache-miss path follows the same rule.
	fresh, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Key(ctx, p.RetiredKeys[0].PublicKey, coder); !errors.Is(err, bus.ErrUnknownSigner) {
		t.Fatalf("live lookup of a retired key: %v", err)
	}
	if k, err := historical.Key(ctx, p.RetiredKeys[0].PublicKey, planner); err != nil || k.Source != coder {
		t.Fatalf("historical lookup must return the key's own source: %+v, %v", k, err)
	}
}

// WithoutFreshness skips the skew bound and the replay window, and keeps
// every other check, the tenant's included.
func TestWithoutFreshness(t *testing.T) {
	ctx := context.Background()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	env.Tenant(t, "globex")
	creds := env.Agent(t, "acme", "coder", "code")
	globexCreds := env.Agent(t, "globex", "coder", "code")
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	old := signedBy(t, creds, protocol.Source("acme", "coder"), time.Now().Add(-30*24*time.Hour))

	if _, err := bus.NewVerifier(keys, bus.WithTenant("acme")).Verify(ctx, old); !errors.Is(err, bus.ErrStale) {
		t.Fatalf("live verifier on a month-old event: %v, want stale", err)
	}
	offline := bus.NewVerifier(keys, bus.WithTenant("acme"), bus.WithoutFreshness())
	for i := range 2 { // the second time would be a replay
		if _, err := offline.Verify(ctx, old); err != nil {
			t.Fatalf("offline verifier, time %d: %v", i+1, err)
		}
	}
	tampered := old.Clone()
	tampered.DataEncoded = []byte(`{"status":"forged"}`)
	if _, err := offline.Verify(ctx, &tampered); !errors.Is(err, bus.ErrBadSignature) {
		t.Fatalf("offline verifier on tampered data: %v", err)
	}
	foreign := signedBy(t, globexCreds, protocol.Source("globex", "coder"), time.Now())
	if _, err := offline.Verify(ctx, foreign); !errors.Is(err, bus.ErrSignerMismatch) {
		t.Fatalf("offline verifier on another tenant's event: %v", err)
	}
}
