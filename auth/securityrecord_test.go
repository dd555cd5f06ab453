package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/security"
)

// TestSecurityRecordPublishedOverNATS: the data dir's level, environment
// and enrolled admins are published with the identities, signed by the
// operator; an orchestrator without the data dir (Remote) reads them, and
// a record signed by anyone else, written by the tenant's own
// orchestrator user, is not taken.
func TestSecurityRecordPublishedOverNATS(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	dir := env.Store.Dir()
	want := security.Settings{Level: security.Advanced, Environment: security.Production}
	if err := security.WriteSettings(dir, want); err != nil {
		t.Fatal(err)
	}
	if _, err := mfa.Enroll(dir, "alice"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(env.Connect(t, env.OrchestratorCreds("acme"), "orchestrator"))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Store.PublishIdentities(ctx, js, "acme", 1); err != nil {
		t.Fatal(err)
	}

	// The orchestrator's host: the operator JWT and the creds only.
	remote := env.OpenRemote(t, "acme")
	rec, ok := remote.SecurityRecord("acme")
	if !ok || rec.Settings != want || rec.MFAAdmins != 1 {
		t.Fatalf("remote security record: %+v, %v", rec, ok)
	}

	// The tenant's orchestrator user can write the bucket, but a record it
	// signs itself (claiming enterprise and ten admins) is not taken.
	kv, err := js.KeyValue(ctx, auth.IdentitiesBucket)
	if err != nil {
		t.Fatal(err)
	}
	forger, _ := nkeys.CreateAccount()
	acct, _ := env.Store.Tenant("acme")
	claims := jwt.NewGenericClaims(acct.AccountKey)
	claims.Name = "acme/security"
	claims.Data = map[string]any{"equilateral": "equilateral-security", "record": map[string]any{
		"settings": map[string]any{"level": "enterprise", "environment": "enterprise"}, "mfa_admins": 10}}
	forged, err := claims.Encode(forger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "security", []byte(forged)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool {
		_, ok := remote.SecurityRecord("acme")
		return !ok
	}, "a forged security record was taken")
	trusted, _ := auth.OperatorKeys(env.OperatorJWT(t))
	if _, err := auth.ReadSecurityRecord([]byte(forged), trusted, "acme"); err == nil {
		t.Error("ReadSecurityRecord took a record the operator did not sign")
	}
}
