package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/internal/natstest"
)

// TestIdentitiesPublishedOverNATS: a tenant's account and principals go
// into its own JetStream, each principal's record signed by the operator;
// a reader holding only the operator JWT trusts them, sees a revocation
// after the next publish, and refuses a record signed by anyone else or
// moved to another tenant.
func TestIdentitiesPublishedOverNATS(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	env.Agent(t, "acme", "coder", "code")
	env.Client(t, "acme", "client")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(env.Connect(t, env.OrchestratorCreds("acme"), "orchestrator"))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Store.PublishIdentities(ctx, js, "acme", 1); err != nil {
		t.Fatal(err)
	}
	trusted, err := auth.OperatorKeys(env.OperatorJWT(t))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, auth.IdentitiesBucket)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) (auth.Principal, error) {
		t.Helper()
		entry, err := kv.Get(ctx, "principal."+name)
		if err != nil {
			t.Fatal(err)
		}
		return auth.ReadIdentityRecord(entry.Value(), trusted, "acme")
	}
	coder, err := read("coder")
	want, _ := env.Store.Principal("acme", "coder")
	if err != nil || coder.PublicKey != want.PublicKey || coder.Role != auth.RoleAgent || len(coder.Capabilities) != 1 || coder.Revoked() {
		t.Fatalf("coder's record: %+v, %v", coder, err)
	}
	if _, err := read("orchestrator"); err != nil {
		t.Fatalf("the orchestrator's record: %v", err)
	}

	if _, err := env.Store.Revoke(ctx, "acme", "coder", env.Publisher); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.PublishIdentities(ctx, js, "acme", 1); err != nil {
		t.Fatal(err)
	}
	if coder, err := read("coder"); err != nil || !coder.Revoked() {
		t.Fatalf("after revoke, coder's record: %+v, %v", coder, err)
	}

	// A record signed by another key, or read as another tenant's, is refused.
	entry, _ := kv.Get(ctx, "principal.client")
	if _, err := auth.ReadIdentityRecord(entry.Value(), trusted, "globex"); err == nil {
		t.Fatal("acme's record was taken for globex's")
	}
	claims, err := jwt.DecodeGeneric(string(entry.Value()))
	if err != nil {
		t.Fatal(err)
	}
	mallory, _ := nkeys.CreateOperator()
	forged, err := claims.Encode(mallory)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ReadIdentityRecord([]byte(forged), trusted, "acme"); err == nil {
		t.Fatal("a record signed by another operator key was trusted")
	}
}
