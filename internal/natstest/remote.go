package natstest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/equilateral-agents/equilateral/auth"
)

// OperatorJWT is the data dir's operator JWT (public): the trust anchor of
// an orchestrator that learns identities over NATS.
func (e *Env) OperatorJWT(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.Store.Dir(), "operator", "operator.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// OpenRemote is what an orchestrator on a host of its own reads
// identities with: a creds dir holding only the tenants' orchestrator
// creds (<tenant>.creds), and the operator JWT. It is closed when the test
// ends.
func (e *Env) OpenRemote(t testing.TB, tenants ...string) *auth.Remote {
	t.Helper()
	credsDir := t.TempDir()
	for _, tenant := range tenants {
		creds, err := os.ReadFile(e.OrchestratorCreds(tenant))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(credsDir, tenant+".creds"), creds, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	remote, err := auth.OpenRemote(e.URL, credsDir, e.OperatorJWT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remote.Close)
	return remote
}
