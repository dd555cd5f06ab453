package auth_test

// Scale benchmarks for the identity layer. BenchmarkCreateTenants runs a
// stock nats-server as its own process so its memory can be read from
// /proc; run it once:
//
//	go test -run '^$' -bench CreateTenants -benchtime=1x ./auth/

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/internal/natstest"
)

const (
	scaleTenants         = 1000
	scaleAgentsPerTenant = 10
)

// scaleLimits are default limits with JetStream sized so that a thousand
// tenants fit on one server of a small box (4 GiB of memory and 16 GiB of
// disk reserved in all): a server reserves the sum of its tenants'
// JetStream limits, and the default 256 MiB/1 GiB would stop at a few
// dozen tenants here.
func scaleLimits() auth.Limits {
	l := auth.DefaultLimits()
	l.JSMemory, l.JSDisk = 4<<20, 16<<20
	return l
}

// BenchmarkCreateTenants creates 1,000 tenants with 10 agents each (a0..a9,
// one capability each) against a running server, live through one system
// connection. Each iteration gets a fresh data dir and server.
//
// Creating a tenant stores its JWT in the full resolver's directory, and
// the JetStream check (CheckJetStream) connects its orchestrator once,
// which loads the account and enables its JetStream. The server's memory
// is read twice: right after the creates (server-RSS-MiB) and with each
// tenant's orchestrator connected and staying connected (loaded-RSS-MiB).
// ms/js-check is the part of ms/tenant spent in the JetStream checks
// (the server's capacity before, the orchestrator's account info after).
// HWM is the peak over the whole run.
//
// Metrics (per iteration): total-s, tenants/s and agents/s for the creates
// alone; ms/tenant, the mean CreateTenant call; ms/agent, the mean cost of
// an agent when a tenant's 10 agents are made in one CreatePrincipals batch; ms/push, the part of ms/tenant spent waiting for the server to
// accept the account ($SYS.REQ.CLAIMS.UPDATE); load-1000-s, connecting the
// 1,000 orchestrators (not in total-s); the server's VmRSS at start, after
// the creates and with all accounts loaded, and its VmHWM.
func BenchmarkCreateTenants(b *testing.B) {
	bin := natsServerBinary(b)
	b.ResetTimer() // not the build
	ctx := context.Background()
	var (
		elapsed, tenantTime, agentTime, loadTime, pushTime, checkTime time.Duration
		rss, loadedRSS, hwm, startRSS                                 float64
	)
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		store, err := auth.Init(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		srv := startNATSServer(b, bin, store.ServerConfigFile())
		pub := &timedPublisher{Publisher: procSystemPublisher(b, srv.URL, store)}
		startRSS += mustProcMiB(b, srv.Pid(), "VmRSS")

		b.StartTimer()
		start := time.Now()
		for ti := 0; ti < scaleTenants; ti++ {
			tenant := fmt.Sprintf("t%04d", ti)
			t0 := time.Now()
			if _, err := store.CreateTenant(ctx, tenant, scaleLimits(), pub); err != nil {
				b.Fatalf("create tenant %s: %v", tenant, err)
			}
			t1 := time.Now()
			tenantTime += t1.Sub(t0)
			// One batch per tenant, as a provisioning script would do it.
			specs := make([]auth.PrincipalSpec, scaleAgentsPerTenant)
			for a := range specs {
				specs[a] = auth.PrincipalSpec{
					Tenant:       tenant,
					Name:         fmt.Sprintf("a%d", a),
					Role:         auth.RoleAgent,
					Capabilities: []string{fmt.Sprintf("c%d", a)},
				}
			}
			if _, err := store.CreatePrincipals(ctx, specs); err != nil {
				b.Fatalf("create agents of %s: %v", tenant, err)
			}
			agentTime += time.Since(t1)
		}
		elapsed += time.Since(start)
		b.StopTimer()
		pushTime += pub.took
		checkTime += pub.checkTook
		rss += mustProcMiB(b, srv.Pid(), "VmRSS")

		// Load every account: one orchestrator connection per tenant.
		loadStart := time.Now()
		conns := make([]*nats.Conn, 0, scaleTenants)
		for ti := 0; ti < scaleTenants; ti++ {
			tenant := fmt.Sprintf("t%04d", ti)
			nc, err := nats.Connect(srv.URL,
				nats.UserCredentials(store.DefaultCredsFile(tenant, auth.OrchestratorName)),
				nats.Name(auth.OrchestratorName),
				nats.NoReconnect(),
			)
			if err != nil {
				b.Fatalf("connect orchestrator of %s: %v", tenant, err)
			}
			conns = append(conns, nc)
		}
		for _, nc := range conns {
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		loadTime += time.Since(loadStart)
		loadedRSS += mustProcMiB(b, srv.Pid(), "VmRSS")
		hwm += mustProcMiB(b, srv.Pid(), "VmHWM")
		for _, nc := range conns {
			nc.Close()
		}
		if err := srv.Stop(); err != nil {
			b.Fatal(err)
		}
	}

	n := float64(b.N)
	agents := float64(scaleTenants * scaleAgentsPerTenant)
	b.ReportMetric(elapsed.Seconds()/n, "total-s")
	b.ReportMetric(scaleTenants*n/elapsed.Seconds(), "tenants/s")
	b.ReportMetric(agents*n/elapsed.Seconds(), "agents/s")
	b.ReportMetric(float64(tenantTime.Microseconds())/1000/(scaleTenants*n), "ms/tenant")
	b.ReportMetric(float64(agentTime.Microseconds())/1000/(agents*n), "ms/agent")
	b.ReportMetric(float64(pushTime.Microseconds())/1000/(scaleTenants*n), "ms/push")
	b.ReportMetric(float64(checkTime.Microseconds())/1000/(scaleTenants*n), "ms/js-check")
	b.ReportMetric(startRSS/n, "server-start-RSS-MiB")
	b.ReportMetric(rss/n, "server-RSS-MiB")
	b.ReportMetric(loadedRSS/n, "loaded-RSS-MiB")
	b.ReportMetric(hwm/n, "server-HWM-MiB")
	b.ReportMetric(loadTime.Seconds()/n, "load-1000-s")
}

// timedPublisher adds up how long the server takes to accept updates
// (one $SYS.REQ.CLAIMS.UPDATE round trip per tenant).
type timedPublisher struct {
	auth.Publisher
	took      time.Duration
	checkTook time.Duration
}

func (p *timedPublisher) UpdateAccount(ctx context.Context, accountJWT string) error {
	start := time.Now()
	defer func() { p.took += time.Since(start) }()
	return p.Publisher.UpdateAccount(ctx, accountJWT)
}

// The JetStream checks go through as they would without the timer, and
// are timed apart (checkTook).
func (p *timedPublisher) JetStreamCapacity(ctx context.Context) (auth.JetStreamCapacity, error) {
	start := time.Now()
	defer func() { p.checkTook += time.Since(start) }()
	return p.Publisher.(auth.JetStreamChecker).JetStreamCapacity(ctx)
}

func (p *timedPublisher) CheckJetStream(ctx context.Context, creds []byte, inboxPrefix string) error {
	start := time.Now()
	defer func() { p.checkTook += time.Since(start) }()
	return p.Publisher.(auth.JetStreamChecker).CheckJetStream(ctx, creds, inboxPrefix)
}

func mustProcMiB(tb testing.TB, pid int, field string) float64 {
	tb.Helper()
	v, err := procStatusMiB(pid, field)
	if err != nil {
		tb.Fatalf("read server memory: %v", err)
	}
	return v
}

// BenchmarkCreateAgent is the cost of one agent (key, JWT signed by the
// tenant's agent key, creds and record written) in a tenant that exists.
func BenchmarkCreateAgent(b *testing.B) {
	env := natstest.Start(b)
	env.Tenant(b, "acme")
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		_, err := env.Store.CreatePrincipal(ctx, auth.PrincipalSpec{
			Tenant: "acme", Name: fmt.Sprintf("a%d", i), Role: auth.RoleAgent, Capabilities: []string{"code"},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateTenant is the cost of one tenant (account and role keys,
// orchestrator creds, pushed live to an in-process server).
func BenchmarkCreateTenant(b *testing.B) {
	env := natstest.Start(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := env.Store.CreateTenant(ctx, fmt.Sprintf("t%d", i), scaleLimits(), env.Publisher); err != nil {
			b.Fatal(err)
		}
	}
}
