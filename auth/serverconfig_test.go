package auth_test

// The config auth.Init writes must work with a stock nats-server binary,
// not only with the embedded server: these tests build nats-server from the
// module go.mod requires and run it as a separate process.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestServerConfigStockServer: `nats-server -t -c` accepts the config, the
// server it starts runs in operator mode with the full resolver, and a
// tenant created live through the system account works end to end.
func TestServerConfigStockServer(t *testing.T) {
	bin := natsServerBinary(t)
	store, err := auth.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(bin, "-t", "-c", store.ServerConfigFile()).CombinedOutput()
	if err != nil {
		t.Fatalf("nats-server -t -c %s: %v\n%s", store.ServerConfigFile(), err, out)
	}
	t.Logf("nats-server -t: %s", strings.TrimSpace(string(out)))

	srv := startNATSServer(t, bin, store.ServerConfigFile())

	// Operator mode: a connection without creds is refused.
	if nc, err := nats.Connect(srv.URL, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("anonymous connection accepted: the server is not in operator mode")
	}

	pub := procSystemPublisher(t, srv.URL, store)
	tenant, err := store.CreateTenant(context.Background(), "acme", auth.DefaultLimits(), pub)
	if err != nil {
		t.Fatalf("create tenant live: %v", err)
	}
	procAgent(t, store, "acme", "coder", "code")
	procRoundTrip(t, srv.URL, store, "acme", "coder", "code")

	// The stock server encrypts its store with the config's cipher and key.
	assertStockServerEncrypts(t, srv, store)

	// The full resolver keeps what it was sent, so a restart keeps it.
	if _, err := os.Stat(filepath.Join(store.ResolverDir(), tenant.AccountKey+".jwt")); err != nil {
		t.Errorf("the server did not store the pushed account in its resolver dir: %v", err)
	}
}

// TestServerConfigOfflineTenants: tenants written into the resolver dir
// while the server is stopped are loaded when it starts, and tenants pushed
// live survive a restart.
func TestServerConfigOfflineTenants(t *testing.T) {
	bin := natsServerBinary(t)
	store, err := auth.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	offline := auth.NewResolverDirPublisher(store.ResolverDir())

	// Before the server ever ran.
	if _, err := store.CreateTenant(ctx, "early", auth.DefaultLimits(), offline); err != nil {
		t.Fatalf("create tenant offline: %v", err)
	}
	procAgent(t, store, "early", "batcher", "batch")

	srv := startNATSServer(t, bin, store.ServerConfigFile())
	procRoundTrip(t, srv.URL, store, "early", "batcher", "batch")

	// One live tenant, then stop the server and add another offline.
	if _, err := store.CreateTenant(ctx, "live", auth.DefaultLimits(), procSystemPublisher(t, srv.URL, store)); err != nil {
		t.Fatalf("create tenant live: %v", err)
	}
	procAgent(t, store, "live", "coder", "code")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateTenant(ctx, "late", auth.DefaultLimits(), offline); err != nil {
		t.Fatalf("create tenant offline after a run: %v", err)
	}
	procAgent(t, store, "late", "planner", "plan")

	srv = startNATSServer(t, bin, store.ServerConfigFile())
	procRoundTrip(t, srv.URL, store, "early", "batcher", "batch")
	procRoundTrip(t, srv.URL, store, "live", "coder", "code")
	procRoundTrip(t, srv.URL, store, "late", "planner", "plan")
}

// procSystemPublisher connects as the system account admin and returns a
// live publisher on that connection.
func procSystemPublisher(tb testing.TB, url string, store *auth.Store) *auth.NATSPublisher {
	tb.Helper()
	nc, err := nats.Connect(url,
		nats.UserCredentials(store.SystemCredsFile()),
		nats.Name("test-admin"),
		nats.NoReconnect(),
	)
	if err != nil {
		tb.Fatalf("connect as system admin: %v", err)
	}
	tb.Cleanup(nc.Close)
	return auth.NewNATSPublisher(nc)
}

// procAgent creates an agent with its default creds file.
func procAgent(tb testing.TB, store *auth.Store, tenant, name string, capabilities ...string) {
	tb.Helper()
	_, err := store.CreatePrincipal(context.Background(), auth.PrincipalSpec{
		Tenant: tenant, Name: name, Role: auth.RoleAgent, Capabilities: capabilities,
	})
	if err != nil {
		tb.Fatalf("create agent %s/%s: %v", tenant, name, err)
	}
}

// procDial connects as a principal with its creds and private inbox
// prefix; asynchronous errors (permission violations) fail the test.
func procDial(tb testing.TB, url, creds, name string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url,
		nats.UserCredentials(creds),
		nats.Name(name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(name)),
		nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			tb.Errorf("%s: asynchronous error (subscription %q): %v", name, subject, err)
		}),
	)
	if err != nil {
		tb.Fatalf("connect as %s: %v", name, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// procRoundTrip dispatches a task from the tenant's orchestrator on
// eq.cap.<capability>; the agent takes it from its queue group and answers
// on its own output subject, where the orchestrator listens.
func procRoundTrip(tb testing.TB, url string, store *auth.Store, tenant, agent, capability string) {
	tb.Helper()
	agentNC := procDial(tb, url, store.DefaultCredsFile(tenant, agent), agent)
	orch := procDial(tb, url, store.DefaultCredsFile(tenant, auth.OrchestratorName), auth.OrchestratorName)

	resultSubject := strings.TrimSuffix(protocol.AgentOutput(agent), ">") + "result"
	work, err := agentNC.QueueSubscribe(protocol.Capability(capability), "workers", func(m *nats.Msg) {
		if err := agentNC.Publish(resultSubject, append([]byte("done: "), m.Data...)); err != nil {
			tb.Errorf("%s: publish result: %v", agent, err)
		}
	})
	if err != nil {
		tb.Fatalf("%s: subscribe %s: %v", agent, protocol.Capability(capability), err)
	}
	defer work.Unsubscribe()
	results, err := orch.SubscribeSync(protocol.AllAgentsWildcard)
	if err != nil {
		tb.Fatalf("orchestrator: subscribe %s: %v", protocol.AllAgentsWildcard, err)
	}
	defer results.Unsubscribe()
	for _, nc := range []*nats.Conn{agentNC, orch} {
		if err := nc.Flush(); err != nil {
			tb.Fatal(err)
		}
	}

	task := "task for " + tenant + "/" + capability
	if err := orch.Publish(protocol.Capability(capability), []byte(task)); err != nil {
		tb.Fatalf("orchestrator: dispatch: %v", err)
	}
	m, err := results.NextMsg(5 * time.Second)
	if errors.Is(err, nats.ErrTimeout) {
		tb.Fatalf("%s/%s: no result within 5s for a task on %s", tenant, agent, protocol.Capability(capability))
	}
	if err != nil {
		tb.Fatal(err)
	}
	if m.Subject != resultSubject || string(m.Data) != "done: "+task {
		tb.Fatalf("%s/%s: got %q on %s, want %q on %s", tenant, agent, m.Data, m.Subject, "done: "+task, resultSubject)
	}
}
