package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nuid"

	"github.com/equilateral-agents/equilateral/auth"
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

// keyOf is the public key of the creds file's user.
func keyOf(t testing.TB, creds string) string {
	t.Helper()
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	return signer.KeyID()
}

// clientKeys is a server with tenant acme and its client, and a StoreKeys
// over the data dir: the client's creds, source and the registry.
func clientKeys(t *testing.T) (*natstest.Env, string, string, *bus.StoreKeys) {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	return env, env.Client(t, "acme", "client"), protocol.Source("acme", "client"), keys
}

// A registry that has the key cached refuses it on the very first lookup
// after Rotate or Revoke returns, twenty times over; the new key verifies
// at once. The change is made through a second Store over the same data
// dir, as `equilateral client rotate` would from its own process.
func TestStoreKeysRefuseRotatedAndRevokedKeysOnTheNextLookup(t *testing.T) {
	ctx := context.Background()
	env, creds, source, keys := clientKeys(t)
	admin, err := auth.Open(env.Store.Dir())
	if err != nil {
		t.Fatal(err)
	}
	old := keyOf(t, creds)
	if _, err := keys.Key(ctx, old, source); err != nil {
		t.Fatalf("current key before any rotation: %v", err)
	}
	for i := range 20 {
		p, err := admin.Rotate(ctx, "acme", "client", "", env.Publisher)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Key(ctx, old, source); !errors.Is(err, bus.ErrUnknownSigner) {
			t.Fatalf("rotation %d: the old key was still trusted on the next lookup: %v", i+1, err)
		}
		if k, err := keys.Key(ctx, p.PublicKey, source); err != nil || k.Source != source {
			t.Fatalf("rotation %d: the new key: %+v, %v", i+1, k, err)
		}
		old = p.PublicKey
	}
	if _, err := admin.Revoke(ctx, "acme", "client", env.Publisher); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Key(ctx, old, source); !errors.Is(err, bus.ErrUnknownSigner) {
		t.Fatalf("revoked key still trusted on the next lookup: %v", err)
	}
}

// An agent that pins the orchestrator's key (agents.WithKeys over a
// StoreKeys) refuses an event signed with the orchestrator's rotated-out
// key on the next message, and takes the new key at once.
func TestPinnedOrchestratorKeyRefusedAfterRotation(t *testing.T) {
	ctx := context.Background()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	creds := env.OrchestratorCreds("acme")
	source := protocol.Source("acme", auth.OrchestratorName)
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	agent := bus.NewVerifier(keys, bus.WithTenant("acme"))
	if _, err := agent.Verify(ctx, signedBy(t, creds, source, time.Now())); err != nil {
		t.Fatalf("orchestrator event before the rotation: %v", err)
	}
	old := signedBy(t, creds, source, time.Now())
	if _, err := env.Store.Rotate(ctx, "acme", auth.OrchestratorName, "", env.Publisher); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Verify(ctx, old); !errors.Is(err, bus.ErrUnknownSigner) {
		t.Fatalf("orchestrator's rotated-out key: %v, want unknown signer", err)
	}
	if _, err := agent.Verify(ctx, signedBy(t, creds, source, time.Now())); err != nil {
		t.Fatalf("orchestrator's new key: %v", err)
	}
}

// A key created a moment ago verifies at once, and a deleted tenant's keys
// are refused at once.
func TestStoreKeysFollowCreateAndTenantDelete(t *testing.T) {
	ctx := context.Background()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	env.Tenant(t, "globex")
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	acme := keyOf(t, env.Agent(t, "acme", "coder", "code"))
	globex := keyOf(t, env.Agent(t, "globex", "coder", "code"))
	for _, k := range []struct{ key, source string }{
		{acme, protocol.Source("acme", "coder")}, {globex, protocol.Source("globex", "coder")},
	} {
		if _, err := keys.Key(ctx, k.key, k.source); err != nil {
			t.Fatalf("key created a moment ago: %v", err)
		}
	}
	if err := env.Store.DeleteTenant(ctx, "acme", env.Publisher); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Key(ctx, acme, protocol.Source("acme", "coder")); !errors.Is(err, bus.ErrUnknownSigner) {
		t.Fatalf("deleted tenant's key: %v", err)
	}
	if _, err := keys.Key(ctx, globex, protocol.Source("globex", "coder")); err != nil {
		t.Fatalf("the other tenant's key after a delete: %v", err)
	}
}

// Lookups racing rotations: whatever a lookup started before a Rotate
// returned may see, no lookup that starts after it trusts the old key,
// including lookups that find the key by reading its record (cache miss).
func TestStoreKeysNeverTrustARotatedKeyAfterRotateReturns(t *testing.T) {
	ctx := context.Background()
	env, creds, source, keys := clientKeys(t)
	var (
		mu      sync.Mutex
		retired = map[string]bool{}
		current = keyOf(t, creds)
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				mu.Lock()
				var probe []string
				for k := range retired {
					probe = append(probe, k)
				}
				probe = append(probe, current)
				mu.Unlock()
				for _, k := range probe {
					// Snapshot what is retired before the lookup starts.
					mu.Lock()
					dead := retired[k]
					mu.Unlock()
					if _, err := keys.Key(ctx, k, source); err == nil && dead {
						t.Errorf("key %.12s… retired before the lookup began was trusted", k)
						stop.Store(true)
						return
					}
				}
			}
		}()
	}
	for range 15 {
		p, err := env.Store.Rotate(ctx, "acme", "client", "", env.Publisher)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		retired[current] = true
		current = p.PublicKey
		mu.Unlock()
	}
	stop.Store(true)
	wg.Wait()
}

// A journal replaced by hand makes the registry read everything again
// rather than miss a change.
func TestStoreKeysReloadWhenTheJournalIsReplaced(t *testing.T) {
	ctx := context.Background()
	env, creds, source, keys := clientKeys(t)
	old := keyOf(t, creds)
	if _, err := keys.Key(ctx, old, source); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(env.Store.Dir(), "keys.journal")
	if _, err := env.Store.Revoke(ctx, "acme", "client", env.Publisher); err != nil {
		t.Fatal(err)
	}
	// Replace the journal with an empty one (another inode), as an
	// operator cleaning up would: the revocation's line is gone.
	if err := os.Remove(journal); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journal, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Key(ctx, old, source); !errors.Is(err, bus.ErrUnknownSigner) {
		t.Fatalf("revoked key trusted after the journal was replaced: %v", err)
	}
}

// BenchmarkStoreKeysKey is the cost of a cached lookup, the journal check
// (one fstat) included; BenchmarkStoreKeysKeyMiss is a key found by reading
// its principal record.
//
//	go test -run '^$' -bench StoreKeys -benchmem ./bus/
func BenchmarkStoreKeysKey(b *testing.B) {
	keys, key, source := benchStoreKeys(b)
	ctx := context.Background()
	if _, err := keys.Key(ctx, key, source); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Key(ctx, key, source); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreKeysKeyParallel(b *testing.B) {
	keys, key, source := benchStoreKeys(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := keys.Key(ctx, key, source); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchStoreKeys is a data dir (no server: changes go to the resolver
// directory) with one client, and a registry over it.
func benchStoreKeys(b *testing.B) (*bus.StoreKeys, string, string) {
	b.Helper()
	ctx := context.Background()
	store, err := auth.Init(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	pub := auth.NewResolverDirPublisher(store.ResolverDir())
	if _, err := store.CreateTenant(ctx, "acme", auth.DefaultLimits(), pub); err != nil {
		b.Fatal(err)
	}
	p, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: "client", Role: auth.RoleClient})
	if err != nil {
		b.Fatal(err)
	}
	// A journal with a line in it, as in a data dir that has seen changes.
	if _, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: "gone", Role: auth.RoleClient}); err != nil {
		b.Fatal(err)
	}
	if _, err := store.Revoke(ctx, "acme", "gone", pub); err != nil {
		b.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(store)
	if err != nil {
		b.Fatal(err)
	}
	return keys, p.PublicKey, protocol.Source("acme", "client")
}

// A StoreKeys over the read-only view of the data dir (auth.OpenReadOnly,
// no signing key) trusts the same keys, and refuses a key revoked through
// the full Store on its next lookup.
func TestStoreKeysFromReadOnlyDirectory(t *testing.T) {
	ctx := context.Background()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	creds := env.Client(t, "acme", "client")
	source := protocol.Source("acme", "client")
	dir, err := auth.OpenReadOnly(env.Store.Dir())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := signedBy(t, creds, source, time.Now())
	if _, err := bus.NewVerifier(keys, bus.WithTenant("acme")).Verify(ctx, e); err != nil {
		t.Fatalf("client's event, verified from the read-only view: %v", err)
	}
	orchestrator := keyOf(t, env.OrchestratorCreds("acme"))
	if k, err := keys.Key(ctx, orchestrator, protocol.Source("acme", auth.OrchestratorName)); err != nil || k.ID != orchestrator {
		t.Fatalf("orchestrator's key: %+v, %v", k, err)
	}
	if _, err := env.Store.Revoke(ctx, "acme", "client", env.Publisher); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Key(ctx, keyOf(t, creds), source); !errors.Is(err, bus.ErrUnknownSigner) {
		t.Fatalf("revoked key from the read-only view: %v, want unknown signer", err)
	}
}
