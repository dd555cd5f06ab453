package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/embedded"
	"github.com/equilateral-agents/equilateral/internal/natstest"
)

// Attack tests for the tenant part of item 3 of issue 10: one tenant
// filled the server's shared JetStream store and another tenant's submits
// then failed with "insufficient resources". Every tenant now has finite
// JetStream limits, and a server never promises more than it has.

// orchestratorJS is JetStream in tenant as its orchestrator, the only
// principal that may write JetStream in a tenant (auth.rolePermissions).
func orchestratorJS(t *testing.T, env *natstest.Env, tenant string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(env.Connect(t, env.OrchestratorCreds(tenant), auth.OrchestratorName))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// fill writes 64 KiB values into a new bucket of storage until JetStream
// refuses one, and returns the refusal (nil if max writes all went in).
func fill(ctx context.Context, t *testing.T, js jetstream.JetStream, bucket string, storage jetstream.StorageType, max int) (int, error) {
	t.Helper()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, Storage: storage})
	if err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	value := bytes.Repeat([]byte("x"), 64<<10)
	for i := range max {
		if _, err := kv.Put(ctx, fmt.Sprintf("k%d", i), value); err != nil {
			return i, err
		}
	}
	return max, nil
}

// TestTenantAtItsJetStreamLimitDoesNotStarveAnother: tenant hog, with 2 MiB
// of disk and 1 MiB of memory, writes as its own orchestrator until
// JetStream refuses it with the account's limit; tenant victim, with the
// default limits on the same server, still creates streams and stores.
func TestTenantAtItsJetStreamLimitDoesNotStarveAnother(t *testing.T) {
	env := natstest.Start(t)
	small := auth.DefaultLimits()
	small.JSDisk, small.JSMemory = 2<<20, 1<<20
	env.TenantWithLimits(t, "hog", small)
	env.Tenant(t, "victim")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	hog := orchestratorJS(t, env, "hog")
	for _, c := range []struct {
		bucket  string
		storage jetstream.StorageType
	}{{"FILL_DISK", jetstream.FileStorage}, {"FILL_MEMORY", jetstream.MemoryStorage}} {
		n, err := fill(ctx, t, hog, c.bucket, c.storage, 1000) // 64 MiB if nothing stopped it
		if err == nil {
			t.Fatalf("%s: hog wrote %d × 64 KiB past its limit", c.bucket, n)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "resource limits exceeded for account") {
			t.Fatalf("%s: refused after %d writes with %v, want the account's limit", c.bucket, n, err)
		}
		if n*64<<10 > 2<<20 {
			t.Fatalf("%s: %d KiB stored, over the 2 MiB limit", c.bucket, n*64)
		}
		t.Logf("%s: hog refused after %d writes: %v", c.bucket, n, err)
	}

	// The victim is served: new streams, and writes to disk and memory.
	victim := orchestratorJS(t, env, "victim")
	for _, c := range []struct {
		bucket  string
		storage jetstream.StorageType
	}{{"EQ_TASKS", jetstream.FileStorage}, {"EQ_AGENTS", jetstream.MemoryStorage}} {
		if n, err := fill(ctx, t, victim, c.bucket, c.storage, 40); err != nil {
			t.Fatalf("victim's %s refused after %d writes while hog is full: %v", c.bucket, n, err)
		}
	}
	info, err := victim.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Limits.MaxStore != auth.DefaultJSDisk || info.Limits.MaxMemory != auth.DefaultJSMemory {
		t.Errorf("victim's limits %+v, want the defaults", info.Limits)
	}
}

// TestEveryTenantGetsFiniteJetStreamLimitsByDefault: a tenant created with
// the defaults has the documented finite limits on the server.
func TestEveryTenantGetsFiniteJetStreamLimitsByDefault(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := orchestratorJS(t, env, "acme").AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := jetstream.AccountLimits{MaxMemory: 256 << 20, MaxStore: 1 << 30, MaxStreams: 32, MaxConsumers: 1024}
	got := info.Limits
	if got.MaxMemory != want.MaxMemory || got.MaxStore != want.MaxStore || got.MaxStreams != want.MaxStreams || got.MaxConsumers != want.MaxConsumers {
		t.Fatalf("default tenant's JetStream limits %+v, want %+v", got, want)
	}
}

// capacityEnv is a data dir whose server has memory and store bytes of
// JetStream, running.
func capacityEnv(t *testing.T, memory, store int64) (*auth.Store, *auth.NATSPublisher, func() *auth.NATSPublisher) {
	t.Helper()
	s, err := auth.Init(t.TempDir(), auth.WithJetStreamCapacity(memory, store))
	if err != nil {
		t.Fatal(err)
	}
	var srv *embedded.Server
	start := func() *auth.NATSPublisher {
		srv, err = embedded.Start(s.ServerConfigFile(), embedded.WithPort(-1))
		if err != nil {
			t.Fatal(err)
		}
		sys, err := nats.Connect(srv.ClientURL(), nats.UserCredentials(s.SystemCredsFile()), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sys.Close)
		return auth.NewNATSPublisher(sys)
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	pub := start()
	t.Cleanup(stop)
	restart := func() *auth.NATSPublisher {
		stop()
		return start()
	}
	return s, pub, restart
}

// jetStreamWorks asserts tenant's orchestrator has working JetStream on
// the server pub is connected to.
func jetStreamWorks(t *testing.T, s *auth.Store, pub *auth.NATSPublisher, tenant string) {
	t.Helper()
	creds, err := os.ReadFile(s.DefaultCredsFile(tenant, auth.OrchestratorName))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.CheckJetStream(ctx, creds, "_INBOX_orchestrator"); err != nil {
		t.Fatalf("tenant %s: %v", tenant, err)
	}
}

// TestTenantCreateRefusesLimitsTheServerCannotHold: on a server with
// 2.5 GiB of JetStream storage and 600 MiB of memory, two default tenants
// fit, a third does not: it is refused naming the limit and what is left,
// and nothing of it stays. The tenants that fit keep working, after a
// restart too, and a tenant from before the finite defaults (unlimited
// JetStream) reserves nothing and keeps working.
func TestTenantCreateRefusesLimitsTheServerCannotHold(t *testing.T) {
	ctx := context.Background()
	s, pub, restart := capacityEnv(t, 600<<20, 5<<29)
	for _, name := range []string{"first", "second"} {
		if _, err := s.CreateTenant(ctx, name, auth.DefaultLimits(), pub); err != nil {
			t.Fatalf("tenant %s: %v", name, err)
		}
	}
	legacy := auth.DefaultLimits()
	legacy.JSDisk, legacy.JSMemory, legacy.JSStreams, legacy.JSConsumers = auth.Unlimited, auth.Unlimited, auth.Unlimited, auth.Unlimited
	if _, err := s.CreateTenant(ctx, "legacy", legacy, pub); err != nil {
		t.Fatalf("tenant with unlimited JetStream: %v", err)
	}

	before := dataTree(t, s.Dir())
	_, err := s.CreateTenant(ctx, "third", auth.DefaultLimits(), pub)
	var capErr *auth.CapacityError
	if !errors.Is(err, auth.ErrJetStreamCapacity) || !errors.As(err, &capErr) {
		t.Fatalf("third default tenant on a 2.5 GiB server: %v, want a capacity error", err)
	}
	for _, want := range []string{"third", "1GiB of JetStream storage", "512MiB left", "max_file_store is 2560MiB", "2 other tenants reserve 2GiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	// The same answer without the reservation index (a data dir from
	// before it): it is rebuilt from the tenants' records.
	if err := os.Remove(filepath.Join(s.Dir(), "jetstream-reservations.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenant(ctx, "third", auth.DefaultLimits(), pub); !errors.As(err, &capErr) || capErr.Left != 512<<20 {
		t.Fatalf("third tenant, index rebuilt: %v", err)
	}
	if _, err := s.CreateTenant(ctx, "fat", auth.Limits{
		Connections: auth.Unlimited, Subscriptions: auth.Unlimited, MaxPayload: auth.DefaultMaxPayload, Data: auth.Unlimited,
		JetStream: true, JSDisk: 100 << 20, JSMemory: 256 << 20, JSStreams: 32, JSConsumers: 1024,
	}, pub); !errors.As(err, &capErr) || capErr.Resource != "memory" || capErr.Left != 88<<20 {
		t.Fatalf("a tenant over the memory left: %v, want a memory capacity error with 88 MiB left", err)
	}
	if diff := treeDiff(before, dataTree(t, s.Dir())); len(diff) > 0 {
		t.Errorf("refused tenants left traces: %v", diff)
	}

	// What fits still fits: the tenants created work, and again after a
	// restart, whatever order their orchestrators connect in.
	for _, name := range []string{"first", "second", "legacy"} {
		jetStreamWorks(t, s, pub, name)
	}
	pub = restart()
	for _, name := range []string{"legacy", "second", "first"} {
		jetStreamWorks(t, s, pub, name)
	}
}

// lyingCapacity reports a server with room for everything, so the check
// before publishing lets the tenant through and only the server decides.
type lyingCapacity struct{ *auth.NATSPublisher }

func (lyingCapacity) JetStreamCapacity(context.Context) (auth.JetStreamCapacity, error) {
	return auth.JetStreamCapacity{MaxMemory: 1 << 50, MaxStore: 1 << 50}, nil
}

// TestTenantCreateFailsWhenTheServerDoesNotEnableJetStream: if the server
// itself refuses to enable JetStream for the new account (its limits do
// not fit), tenant create fails with ErrJetStreamUnavailable instead of
// leaving a tenant whose JetStream silently does not work; the account is
// deleted again and nothing stays in the data dir.
func TestTenantCreateFailsWhenTheServerDoesNotEnableJetStream(t *testing.T) {
	ctx := context.Background()
	s, pub, _ := capacityEnv(t, 600<<20, 5<<29)
	if _, err := s.CreateTenant(ctx, "first", auth.DefaultLimits(), pub); err != nil {
		t.Fatal(err)
	}
	jetStreamWorks(t, s, pub, "first")
	huge := auth.DefaultLimits()
	huge.JSDisk = 2 << 30 // 1 GiB + 2 GiB > 2.5 GiB
	before := dataTree(t, s.Dir())
	_, err := s.CreateTenant(ctx, "huge", huge, lyingCapacity{pub})
	if !errors.Is(err, auth.ErrJetStreamUnavailable) {
		t.Fatalf("tenant the server cannot hold: %v, want ErrJetStreamUnavailable", err)
	}
	if !strings.Contains(err.Error(), "jetstream not enabled") || !strings.Contains(err.Error(), "not created") {
		t.Errorf("refusal %q does not give the server's answer and the outcome", err)
	}
	if _, err := s.Tenant("huge"); !errors.Is(err, auth.ErrUnknownTenant) {
		t.Errorf("refused tenant is on record: %v", err)
	}
	if diff := treeDiff(before, dataTree(t, s.Dir())); len(diff) > 0 {
		t.Errorf("refused tenant left traces: %v", diff)
	}
	// The server deleted the account (its JWT is kept as .deleted).
	deleted, _ := filepath.Glob(filepath.Join(s.ResolverDir(), "*.jwt.deleted"))
	if len(deleted) != 1 {
		t.Errorf("resolver dir has %d deleted accounts, want the refused one", len(deleted))
	}
	jetStreamWorks(t, s, pub, "first")
}
