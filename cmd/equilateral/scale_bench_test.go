package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/testbin"
	"github.com/equilateral-agents/equilateral/protocol"
)

const (
	memTenants         = 1000
	memAgentsPerTenant = 10
	// memHeartbeaters publish the agents' heartbeats side by side.
	memHeartbeaters = 4
	// memSettle is how long the orchestrator idles, all agents listed,
	// before its memory is read.
	memSettle = 15 * time.Second
)

// BenchmarkOrchestratorMemory is the orchestrator's memory with 1,000
// tenants and 10,000 idle agents in their live registries. Run it once
// (it takes a few minutes and most of a 2-core machine):
//
//	go test -run '^$' -bench OrchestratorMemory -benchtime=1x -timeout 30m ./cmd/equilateral/
//
// An embedded server in this process holds 1,000 tenants (JetStream
// limits of 4 MiB memory and 16 MiB disk each, so they fit on one
// server), each with 10 agents a0..a9 (capability c0..c9) and a client.
// The orchestrator is the equilateral binary in its own process, at
// enhanced in development (an admin is enrolled for the gate), with
// GODEBUG=gctrace=1 so its stderr tells its Go heap. Once it serves
// every tenant, each agent connects, publishes one signed heartbeat as
// the SDK does (status up, its capability, a 10 s interval) and
// disconnects; the registries then hold 10,000 instances. After memSettle
// every agent heartbeats again (the entries live AgentsTTL, 30 s), and
// with all 10,000 renewed and live the orchestrator's VmRSS and VmHWM
// are read from /proc.
//
// Metrics: rss-MiB and hwm-MiB (the peak, tenant start-up included);
// heap-MiB, the live heap after the last GC, and stacks-MiB, the
// goroutine stacks it scanned, from that GC's trace line; idle-cpu-%,
// the orchestrator's CPU over memSettle (100 is one core); ready-s,
// starting until every tenant is served; heartbeat-s, the second round
// of 10,000 heartbeats (the first also fills each agent's instance
// count from its bucket).
//
// The scenario runs once, whatever b.N: it is the measurement.
func BenchmarkOrchestratorMemory(b *testing.B) {
	bin := testbin.Build(b, ".")
	ctx := context.Background()
	env := natstest.Start(b)
	dir := env.Store.Dir()

	start := time.Now()
	for ti := range memTenants {
		tenant := memTenant(ti)
		if _, err := env.Store.CreateTenant(ctx, tenant, memLimits(), env.Publisher); err != nil {
			b.Fatalf("create tenant %s: %v", tenant, err)
		}
		specs := []auth.PrincipalSpec{{Tenant: tenant, Name: "client", Role: auth.RoleClient}}
		for a := range memAgentsPerTenant {
			specs = append(specs, auth.PrincipalSpec{Tenant: tenant, Name: memAgent(a), Role: auth.RoleAgent,
				Capabilities: []string{memCapability(a)}})
		}
		if _, err := env.Store.CreatePrincipals(ctx, specs); err != nil {
			b.Fatalf("create principals of %s: %v", tenant, err)
		}
	}
	b.Logf("%d tenants with %d agents each and a client in %v", memTenants, memAgentsPerTenant, time.Since(start).Round(time.Millisecond))
	// The enhanced level's gate needs an enrolled admin (MFA).
	if _, err := mfa.Enroll(dir, "bench"); err != nil {
		b.Fatal(err)
	}

	orch := startMemOrchestrator(b, bin, dir, env.URL)
	start = time.Now()
	for orch.served() < memTenants {
		if orch.exited() || time.Since(start) > 15*time.Minute {
			b.Fatalf("the orchestrator serves %d of %d tenants; its log ends:\n%s", orch.served(), memTenants, orch.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ready := time.Since(start)
	b.Logf("orchestrator serves %d tenants after %v", memTenants, ready.Round(time.Millisecond))

	hb := newHeartbeater(b, env)
	took := hb.round(b)
	waitRecorded(b, env, 1)
	b.Logf("%d agents registered; the first round of heartbeats took %v", memTenants*memAgentsPerTenant, took.Round(time.Millisecond))
	pid := orch.cmd.Process.Pid
	cpu := mustCPUSeconds(b, pid)
	time.Sleep(memSettle) // idle, as measured: nothing to wait for
	idleCPU := (mustCPUSeconds(b, pid) - cpu) / memSettle.Seconds()
	took = hb.round(b)
	waitRecorded(b, env, 2)
	if live, _ := registryState(b, env.Server.NATS()); live != memTenants*memAgentsPerTenant {
		b.Fatalf("%d of %d agents are live after a round of heartbeats that took %v (an entry lives %v)",
			live, memTenants*memAgentsPerTenant, took.Round(time.Millisecond), protocol.AgentsTTL)
	}

	rss, hwm := mustMemMiB(b, pid, "VmRSS"), mustMemMiB(b, pid, "VmHWM")
	heap, stacks, gcLine := orch.lastGC()
	b.Logf("orchestrator pid %d: VmRSS %.1f MiB, VmHWM %.1f MiB, idle CPU %.0f%% of a core; last GC: %s", pid, rss, hwm, 100*idleCPU, gcLine)
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(hwm, "hwm-MiB")
	b.ReportMetric(heap, "heap-MiB")
	b.ReportMetric(stacks, "stacks-MiB")
	b.ReportMetric(100*idleCPU, "idle-cpu-%")
	b.ReportMetric(ready.Seconds(), "ready-s")
	b.ReportMetric(took.Seconds(), "heartbeat-s")
}

func memTenant(i int) string     { return fmt.Sprintf("t%04d", i) }
func memAgent(i int) string      { return fmt.Sprintf("a%d", i) }
func memCapability(i int) string { return fmt.Sprintf("c%d", i) }

// memLimits are default limits with JetStream sized so that a thousand
// tenants fit on one server (as in auth's BenchmarkCreateTenants).
func memLimits() auth.Limits {
	l := auth.DefaultLimits()
	l.JSMemory, l.JSDisk = 4<<20, 16<<20
	return l
}

// memOrchestrator is the orchestrator process and what its stderr said.
type memOrchestrator struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process is gone

	mu      sync.Mutex
	tenants map[string]bool // tenants it logged "serving tenant" for
	gc      string          // the last gctrace line
	lines   []string        // the last other lines
}

func startMemOrchestrator(b *testing.B, bin, dir, url string) *memOrchestrator {
	b.Helper()
	cmd := exec.Command(bin, "orchestrator", "--data-dir", dir, "--server", url,
		"--security-level", "enhanced", "--environment", "development")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "NATS_") && !strings.HasPrefix(kv, "EQ_") &&
			!strings.HasPrefix(kv, "EQUILATERAL_") && !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	o := &memOrchestrator{cmd: cmd, done: make(chan struct{}), tenants: map[string]bool{}}
	go func() {
		o.read(stderr)
		cmd.Wait()
		close(o.done)
	}()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-o.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-o.done
		}
	})
	return o
}

func (o *memOrchestrator) read(r io.Reader) {
	lines := bufio.NewScanner(r)
	lines.Buffer(nil, 16<<20)
	for lines.Scan() {
		line := lines.Text()
		o.mu.Lock()
		// The runtime writes a trace line in pieces, so a log line may
		// land inside one: look for the log line first.
		switch {
		case strings.Contains(line, `msg="serving tenant"`):
			if _, tenant, ok := strings.Cut(line, " tenant="); ok {
				o.tenants[strings.Fields(tenant)[0]] = true
			}
		case strings.HasPrefix(line, "gc ") && strings.HasSuffix(line, " P"):
			o.gc = line
		default:
			o.lines = append(o.lines, line)
			if len(o.lines) > 20 {
				o.lines = o.lines[1:]
			}
		}
		o.mu.Unlock()
	}
}

func (o *memOrchestrator) served() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.tenants)
}

func (o *memOrchestrator) exited() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

func (o *memOrchestrator) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

// lastGC reads the last gctrace line: "gc N @Ts P%: ..., A->B->C MB, D MB
// goal, E MB stacks, F MB globals, G P". C is the heap live after it.
func (o *memOrchestrator) lastGC() (heap, stacks float64, line string) {
	o.mu.Lock()
	line = o.gc
	o.mu.Unlock()
	for _, part := range strings.Split(line, ", ") {
		switch {
		case strings.HasSuffix(part, " MB") && strings.Contains(part, "->"):
			sizes := strings.Split(strings.TrimSuffix(part, " MB"), "->")
			heap, _ = strconv.ParseFloat(sizes[len(sizes)-1], 64)
		case strings.HasSuffix(part, " MB stacks"):
			stacks, _ = strconv.ParseFloat(strings.TrimSuffix(part, " MB stacks"), 64)
		}
	}
	// gctrace's MB are 2^20 bytes.
	return heap, stacks, line
}

// heartbeater sends every agent's heartbeat, as the SDK does, over a
// connection of its own that it closes after.
type heartbeater struct {
	env      *natstest.Env
	signers  map[string]*bus.Signer // by "<tenant>/<agent>"
	verifier *bus.Verifier
	started  time.Time
}

func newHeartbeater(b *testing.B, env *natstest.Env) *heartbeater {
	b.Helper()
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		b.Fatal(err)
	}
	h := &heartbeater{env: env, signers: map[string]*bus.Signer{}, verifier: bus.NewVerifier(keys), started: time.Now().UTC()}
	for ti := range memTenants {
		for a := range memAgentsPerTenant {
			s, err := bus.SignerFromCreds(env.Store.DefaultCredsFile(memTenant(ti), memAgent(a)))
			if err != nil {
				b.Fatal(err)
			}
			h.signers[memTenant(ti)+"/"+memAgent(a)] = s
		}
	}
	return h
}

// round publishes one heartbeat of every agent and returns how long it
// took.
func (h *heartbeater) round(b *testing.B) time.Duration {
	b.Helper()
	start := time.Now()
	work := make(chan [2]int)
	errs := make(chan error, memHeartbeaters)
	var wg sync.WaitGroup
	for range memHeartbeaters {
		wg.Go(func() {
			for w := range work {
				if err := h.beat(memTenant(w[0]), w[1]); err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		})
	}
	for ti := range memTenants {
		for a := range memAgentsPerTenant {
			work <- [2]int{ti, a}
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func (h *heartbeater) beat(tenant string, a int) error {
	name := memAgent(a)
	nc, err := h.env.Dial(h.env.Store.DefaultCredsFile(tenant, name), name)
	if err != nil {
		return fmt.Errorf("connect %s/%s: %w", tenant, name, err)
	}
	defer nc.Close()
	conn, err := bus.NewConn(nc, h.signers[tenant+"/"+name], h.verifier)
	if err != nil {
		return err
	}
	e, err := bus.NewEvent(protocol.Source(tenant, name), protocol.TypeAgentHeartbeat, "", protocol.Heartbeat{
		Agent:         name,
		Instance:      "bench",
		Status:        protocol.AgentUp,
		Capabilities:  []string{memCapability(a)},
		Version:       "bench",
		MaxConcurrent: 16,
		StartedAt:     h.started,
		Interval:      protocol.Duration(10 * time.Second),
	})
	if err != nil {
		return err
	}
	if err := conn.Publish(context.Background(), protocol.AgentReport(name, protocol.HeartbeatKind), e); err != nil {
		return fmt.Errorf("heartbeat of %s/%s: %w", tenant, name, err)
	}
	return nc.Flush()
}

// waitRecorded waits until the registries have taken rounds heartbeats
// of every agent: the agents buckets' streams count the writes in their
// last sequence (each bucket keeps one entry per instance).
func waitRecorded(b *testing.B, env *natstest.Env, rounds int) {
	b.Helper()
	want := uint64(rounds * memTenants * memAgentsPerTenant)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		_, writes := registryState(b, env.Server.NATS())
		if writes >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the registries took %d heartbeats; want %d", writes, want)
		}
	}
}

// registryState sums the agents buckets of every tenant: the entries
// live now, and the writes so far.
func registryState(b *testing.B, ns *server.Server) (live, writes uint64) {
	b.Helper()
	jsz, err := ns.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Limit: 2 * memTenants})
	if err != nil {
		b.Fatal(err)
	}
	for _, acc := range jsz.AccountDetails {
		for _, s := range acc.Streams {
			if s.Name == "KV_"+protocol.AgentsBucket {
				live += s.State.Msgs
				writes += s.State.LastSeq
			}
		}
	}
	return live, writes
}

// mustCPUSeconds is the CPU time a process has used (user and system).
func mustCPUSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("read the orchestrator's CPU time: %v", err)
	}
	// The fields after the command's closing parenthesis, from the state
	// (field 3); utime and stime are fields 14 and 15, in clock ticks of
	// 1/100 s.
	stat := string(raw)
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return (utime + stime) / 100
}

func mustMemMiB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read the orchestrator's memory: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("%s: %q: %v", field, line, err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
