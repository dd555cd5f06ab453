// Package natstest starts real, in-process NATS servers in operator mode
// for tests: a fresh data dir, the embedded server on a free port, and a
// system-account publisher to create tenants live.
package natstest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/embedded"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Env is a data dir with its server running.
type Env struct {
	Store     *auth.Store
	Server    *embedded.Server
	URL       string
	Publisher *auth.NATSPublisher
	SysConn   *nats.Conn
	// ClientOptions are added to every connection Dial and Connect make
	// (before their own options), and to SysConn's; orchtest passes them
	// to the orchestrator. StartTLS sets them to trust its CA.
	ClientOptions []nats.Option
	// CAFile is the CA certificate clients trust when the server runs TLS
	// (StartTLS); empty otherwise.
	CAFile string
}

// Start initialises a data dir in t.TempDir and starts its server. All is
// torn down by t.Cleanup.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartEdited(t, nil)
}

// StartEdited is Start with the server config rewritten by edit before the
// server starts (a nil edit changes nothing).
func StartEdited(t testing.TB, edit func(config string) string) *Env {
	t.Helper()
	return start(t, edit, nil, "")
}

// start is StartEdited with clientOpts on every connection of the Env
// (caFile: the CA they trust, if the server runs TLS).
func start(t testing.TB, edit func(config string) string, clientOpts []nats.Option, caFile string) *Env {
	t.Helper()
	store, err := auth.Init(t.TempDir())
	if err != nil {
		t.Fatalf("init data dir: %v", err)
	}
	if edit != nil {
		raw, err := os.ReadFile(store.ServerConfigFile())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(store.ServerConfigFile(), []byte(edit(string(raw))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := embedded.Start(store.ServerConfigFile(), embedded.WithPort(-1))
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	sysOpts := append([]nats.Option{nats.UserCredentials(store.SystemCredsFile()), nats.Name("natstest-admin")}, clientOpts...)
	sys, err := nats.Connect(srv.ClientURL(), sysOpts...)
	if err != nil {
		t.Fatalf("connect system user: %v", err)
	}
	t.Cleanup(sys.Close)
	return &Env{
		Store: store, Server: srv, URL: srv.ClientURL(), Publisher: auth.NewNATSPublisher(sys), SysConn: sys,
		ClientOptions: clientOpts, CAFile: caFile,
	}
}

// Tenant creates a tenant with default limits, live.
func (e *Env) Tenant(t testing.TB, name string) auth.Tenant {
	t.Helper()
	return e.TenantWithLimits(t, name, auth.DefaultLimits())
}

// TenantWithLimits creates a tenant with the given limits, live.
func (e *Env) TenantWithLimits(t testing.TB, name string, limits auth.Limits) auth.Tenant {
	t.Helper()
	tenant, err := e.Store.CreateTenant(context.Background(), name, limits, e.Publisher)
	if err != nil {
		t.Fatalf("create tenant %s: %v", name, err)
	}
	return tenant
}

// Agent creates an agent and returns its creds file.
func (e *Env) Agent(t testing.TB, tenant, name string, capabilities ...string) string {
	t.Helper()
	p, err := e.Store.CreatePrincipal(context.Background(), auth.PrincipalSpec{
		Tenant: tenant, Name: name, Role: auth.RoleAgent, Capabilities: capabilities,
	})
	if err != nil {
		t.Fatalf("create agent %s/%s: %v", tenant, name, err)
	}
	return e.Store.DefaultCredsFile(p.Tenant, p.Name)
}

// Client creates a client and returns its creds file.
func (e *Env) Client(t testing.TB, tenant, name string) string {
	t.Helper()
	p, err := e.Store.CreatePrincipal(context.Background(), auth.PrincipalSpec{
		Tenant: tenant, Name: name, Role: auth.RoleClient,
	})
	if err != nil {
		t.Fatalf("create client %s/%s: %v", tenant, name, err)
	}
	return e.Store.DefaultCredsFile(p.Tenant, p.Name)
}

// OrchestratorCreds is the creds file of a tenant's orchestrator user.
func (e *Env) OrchestratorCreds(tenant string) string {
	return e.Store.DefaultCredsFile(tenant, auth.OrchestratorName)
}

// Connect connects as the principal whose creds file is given, with its
// private inbox prefix, and fails the test if it cannot.
func (e *Env) Connect(t testing.TB, creds, name string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := e.Dial(creds, name, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Dial connects like Connect but returns the error. The Env's
// ClientOptions come before opts.
func (e *Env) Dial(creds, name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.UserCredentials(creds),
		nats.Name(name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(name)),
		nats.NoReconnect(),
	}
	base = append(base, e.ClientOptions...)
	return nats.Connect(e.URL, append(base, opts...)...)
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
