//go:build unix

package orchestrator_test

// Throughput of the whole task path, and of raw NATS request-reply on
// the same kind of server for scale:
//
//	go test -run '^$' -bench 'RoundTrip|RawRequestReply' -benchtime 5000x ./orchestrator/
//
// BenchmarkRoundTrip: 16 concurrent submitters; each op is one task, from
// the signed submit to the signed "completed" event verified by the client:
// submit → intake (verify, idempotency-free create, audit) → dispatch (CAS,
// signed event) → agent (verify, "running" and "completed" reports, signed)
// → orchestrator (verify, two CAS transitions, audit, signed client events)
// → client (verify). Every transition is persisted in JetStream.

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/bus"
	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// benchSubmitters is how many submitters run at once.
const benchSubmitters = 16

func setParallelism(b *testing.B) {
	b.SetParallelism(max(1, benchSubmitters/runtime.GOMAXPROCS(0)))
}

// benchConn connects a principal of tenant acme with its own creds.
func benchConn(b *testing.B, env *natstest.Env, keys bus.KeyRegistry, name, creds string, opts ...bus.Option) (*nats.Conn, *bus.Conn, *bus.Signer) {
	b.Helper()
	nc := env.Connect(b, creds, name)
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		b.Fatal(err)
	}
	c, err := bus.NewConn(nc, signer, bus.NewVerifier(keys, bus.WithTenant("acme")), opts...)
	if err != nil {
		b.Fatal(err)
	}
	return nc, c, signer
}

// benchAgent runs an agent of the agents SDK whose handler echoes its
// input at once: as quick a task as there is, reported once, completed.
func benchAgent(b *testing.B, env *natstest.Env, keys bus.KeyRegistry, name string, tp trace.TracerProvider) {
	b.Helper()
	creds := env.Agent(b, "acme", name, "code")
	opts := []agents.Option{agents.WithKeys(keys), agents.WithMaxConcurrent(benchSubmitters), agents.WithNATSOptions(env.ClientOptions...)}
	if tp != nil {
		opts = append(opts, agents.WithTracerProvider(tp))
	}
	a, err := agents.Connect(context.Background(), env.URL, creds, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Handle("code", agents.HandlerFunc(func(_ context.Context, t *agents.Task) (any, error) {
		return t.Input, nil
	})); err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.Cleanup(func() {
		stop()
		<-done
	})
}

// BenchmarkRoundTrip is the full task round trip, 16 submitters at once.
func BenchmarkRoundTrip(b *testing.B) { roundTripBench(b, nil) }

// BenchmarkRoundTripLevels is the round trip of BenchmarkRoundTrip on the
// deployment each security level's start gate requires, with the
// orchestrator at that level (signatures and the audit stream at every
// level; durable replay protection from advanced):
//
//   - foundation: a plain server, JetStream without encryption at rest,
//     no TLS;
//   - enhanced: the server as `equilateral init` writes it, JetStream
//     encrypted at rest (chachapoly);
//   - advanced: as enhanced, plus TLS on every client connection (a
//     throwaway CA; the server refuses plaintext clients).
//
// Enterprise's deployment is advanced's. Each orchestrator announces its
// level (development for foundation and enhanced, production for
// advanced), so the audit records carry it:
//
//	go test -run '^$' -bench 'RoundTripLevels' -benchtime 3000x -count 3 ./orchestrator/
func BenchmarkRoundTripLevels(b *testing.B) {
	levels := []struct {
		level security.Level
		env   security.Environment
		start func(testing.TB) *natstest.Env
	}{
		{security.Foundation, security.Development, func(t testing.TB) *natstest.Env {
			return natstest.StartEdited(t, natstest.NoEncryptionAtRest)
		}},
		{security.Enhanced, security.Development, natstest.Start},
		{security.Advanced, security.Production, natstest.StartTLS},
	}
	for _, l := range levels {
		b.Run(l.level.String(), func(b *testing.B) {
			env := l.start(b)
			wantEncrypted, wantTLS := l.level.AtLeast(security.Enhanced), l.level.AtLeast(security.Advanced)
			if obs := env.Server.ObserveEncryption(); obs.On != wantEncrypted {
				b.Fatalf("%s: encryption at rest %v, want %v: %s", l.level, obs.On, wantEncrypted, obs.Detail)
			}
			roundTrip := newRoundTripRig(b, env, nil, orchestrator.WithSecurity(security.Settings{Level: l.level, Environment: l.env}))
			checkTLS(b, env, wantTLS)
			measureRoundTrips(b, env, roundTrip)
		})
	}
}

// checkTLS fails b unless every client connection of env's server (the
// orchestrator's, the agents', the client's, the admin's) runs TLS, when
// want, or none does; with TLS, a plaintext client must be refused.
func checkTLS(b *testing.B, env *natstest.Env, want bool) {
	b.Helper()
	connz, err := env.Server.NATS().Connz(&server.ConnzOptions{Limit: 1000})
	if err != nil {
		b.Fatal(err)
	}
	if len(connz.Conns) < 7 { // the admin, 4 agents, the client, the orchestrator
		b.Fatalf("only %d connections", len(connz.Conns))
	}
	for _, c := range connz.Conns {
		if (c.TLSVersion != "") != want {
			b.Fatalf("connection %q: TLS %q, want TLS %v", c.Name, c.TLSVersion, want)
		}
	}
	if !want {
		return
	}
	info, pong, err := natstest.PlaintextConnect(env.URL, env.Client(b, "acme", "plaintext"))
	if err != nil || pong {
		b.Fatalf("a plaintext client was served (pong %v, err %v): %s", pong, err, info)
	}
}

// BenchmarkRoundTripTracing is the round trip with tracing off (no
// provider: the no-op tracer) and on (every component traced, 100%
// sampled, batched to an exporter that drops the spans, so the cost
// measured is ours and the SDK's, not a collector's):
//
//	go test -run '^$' -bench 'RoundTripTracing' -benchtime 3000x -count 3 ./orchestrator/
func BenchmarkRoundTripTracing(b *testing.B) {
	b.Run("off", func(b *testing.B) { roundTripBench(b, noop.NewTracerProvider()) })
	b.Run("on", func(b *testing.B) {
		exporter := &countingExporter{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(exporter))
		roundTripBench(b, tp)
		tp.ForceFlush(context.Background())
		b.ReportMetric(float64(exporter.spans.Load())/float64(b.N), "spans/op")
		tp.Shutdown(context.Background())
	})
}

// BenchmarkTracingOverhead measures what tracing costs the round trip on
// one rig, switching every component's tracing off and on in alternating
// chunks of tasks, so both sides see the same server, caches and machine
// load (sequential runs of the two on this VM differ by more than the
// effect). "on" is 100% sampled and batched to an exporter that drops
// the spans. Reports tasks/s and CPU per task of each side, and the
// overhead of "on" in CPU and in wall time:
//
//	go test -run '^$' -bench TracingOverhead -benchtime 6000x ./orchestrator/
func BenchmarkTracingOverhead(b *testing.B) {
	exporter := &countingExporter{}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(exporter))
	defer sdk.Shutdown(context.Background())
	tp := &switchableProvider{sdk: sdk}
	roundTrip := newRoundTripRig(b, natstest.Start(b), tp)

	const chunk = 300
	var n atomic.Int64
	var wall, cpu [2]time.Duration
	var tasks [2]int
	b.ResetTimer()
	for done, phase := 0, 0; done < b.N; done, phase = done+chunk, 1-phase {
		tp.on.Store(phase == 1)
		todo := min(chunk, b.N-done)
		start, cpuStart := time.Now(), cpuTime()
		var wg sync.WaitGroup
		var next atomic.Int64
		for range benchSubmitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(todo) {
					if _, err := roundTrip(n.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		wall[phase] += time.Since(start)
		cpu[phase] += cpuTime() - cpuStart
		tasks[phase] += todo
	}
	b.StopTimer()
	if tasks[0] == 0 || tasks[1] == 0 {
		return // too few tasks for both sides
	}
	perTask := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(float64(tasks[0])/wall[0].Seconds(), "off-tasks/s")
	b.ReportMetric(float64(tasks[1])/wall[1].Seconds(), "on-tasks/s")
	b.ReportMetric(perTask(cpu[0], tasks[0]), "off-cpu-µs/task")
	b.ReportMetric(perTask(cpu[1], tasks[1]), "on-cpu-µs/task")
	b.ReportMetric(100*(perTask(cpu[1], tasks[1])/perTask(cpu[0], tasks[0])-1), "cpu-overhead-%")
	b.ReportMetric(100*(perTask(wall[1], tasks[1])/perTask(wall[0], tasks[0])-1), "wall-overhead-%")
	sdk.ForceFlush(context.Background())
	b.ReportMetric(float64(exporter.spans.Load())/float64(tasks[1]), "spans/task")
}

// switchableProvider traces with sdk while on is set, else not at all
// (as the no-op provider would), so one rig can measure both.
type switchableProvider struct {
	embedded.TracerProvider
	on  atomic.Bool
	sdk trace.TracerProvider
}

func (p *switchableProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &switchableTracer{p: p, on: p.sdk.Tracer(name, opts...), off: noop.NewTracerProvider().Tracer(name)}
}

type switchableTracer struct {
	embedded.Tracer
	p       *switchableProvider
	on, off trace.Tracer
}

func (t *switchableTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t.p.on.Load() {
		return t.on.Start(ctx, name, opts...)
	}
	return t.off.Start(ctx, name, opts...)
}

// countingExporter drops spans, counting them.
type countingExporter struct{ spans atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// roundTripBench runs the round trip with every component (orchestrator,
// agents, client) tracing to tp (nil: the global provider, a no-op).
func roundTripBench(b *testing.B, tp trace.TracerProvider) {
	env := natstest.Start(b)
	roundTrip := newRoundTripRig(b, env, tp)
	measureRoundTrips(b, env, roundTrip)
}

// newRoundTripRig starts, on env's server, the orchestrator (with extra
// options), four agents and a client, all tracing to tp, and returns a
// warmed-up round trip: submit task i and wait for its completion.
func newRoundTripRig(b *testing.B, env *natstest.Env, tp trace.TracerProvider, extra ...orchestrator.Option) func(i int64) (time.Duration, error) {
	env.Tenant(b, "acme")
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		b.Fatal(err)
	}
	var busOpts []bus.Option
	// One loader submits as fast as the pipeline goes: the per-principal
	// rate, which would hold it to its share, is off.
	orchOpts := []orchestrator.Option{orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{PrincipalRatePerSecond: -1}})}
	if tp != nil {
		busOpts = append(busOpts, bus.WithTracerProvider(tp))
		orchOpts = append(orchOpts, orchestrator.WithTracerProvider(tp))
	}
	for i := range 4 {
		benchAgent(b, env, keys, fmt.Sprintf("bench%d", i), tp)
	}
	orchtest.Start(b, env, append(orchOpts, extra...)...)

	creds := env.Client(b, "acme", "loader")
	nc, _, signer := benchConn(b, env, keys, "loader", creds, busOpts...)
	cl, err := eqclient.New(nc, "acme", "loader", signer, keys, busOpts...)
	if err != nil {
		b.Fatal(err)
	}
	// Verify what the orchestrator sends as its level says, as a
	// long-lived client does.
	if _, err := cl.AdoptLevel(context.Background()); err != nil {
		b.Fatal(err)
	}

	var tracer trace.Tracer = noop.NewTracerProvider().Tracer("")
	if tp != nil {
		tracer = tp.Tracer("bench")
	}
	roundTrip := func(i int64) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ctx, span := tracer.Start(ctx, "task")
		defer span.End()
		start := time.Now()
		input := json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		acc, err := cl.Submit(ctx, protocol.SubmitRequest{Capability: "code", Input: input})
		if err != nil {
			return 0, err
		}
		v, err := cl.Await(ctx, acc.TaskID)
		if err != nil {
			return 0, err
		}
		if v.State != protocol.StateCompleted || string(v.Output) != string(input) {
			return 0, fmt.Errorf("task %s: %s %s", v.TaskID, v.State, v.Output)
		}
		return time.Since(start), nil
	}
	// Warm up: connections, caches, the first KV and stream writes.
	for i := range 20 {
		if _, err := roundTrip(int64(-i)); err != nil {
			b.Fatal(err)
		}
	}
	return roundTrip
}

// measureRoundTrips runs b.N round trips, 16 at a time.
func measureRoundTrips(b *testing.B, env *natstest.Env, roundTrip func(int64) (time.Duration, error)) {
	var n atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	setParallelism(b)
	b.ReportAllocs()
	in0, out0 := serverMsgs(b, env)
	b.ResetTimer()
	cpuStart := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			d, err := roundTrip(n.Add(1))
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, d)
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportRate(b, cpuStart, latencies)
	in, out := serverMsgs(b, env)
	b.ReportMetric(float64(in-in0)/float64(b.N), "srv-in-msgs/op")
	b.ReportMetric(float64(out-out0)/float64(b.N), "srv-out-msgs/op")
}

// serverMsgs is how many messages the server has taken in and sent out
// (JetStream API requests and replies included).
func serverMsgs(b *testing.B, env *natstest.Env) (in, out int64) {
	v, err := env.Server.NATS().Varz(nil)
	if err != nil {
		b.Fatal(err)
	}
	return v.InMsgs, v.OutMsgs
}

// cpuTime is the CPU time this process has used so far (the server, the
// orchestrator, agents and clients all run in it).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports operations per second, CPU time per operation (less
// sensitive than the rate to other load on the machine) and latency
// percentiles. cpuStart is cpuTime() when the timer was reset.
func reportRate(b *testing.B, cpuStart time.Duration, latencies []time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	if cpuStart > 0 {
		b.ReportMetric(float64((cpuTime()-cpuStart).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRawRequestReply is plain NATS request-reply between a client and
// the tenant's orchestrator user on the same kind of server (operator mode,
// tenant account), 16 requesters at once, no signing, no persistence.
func BenchmarkRawRequestReply(b *testing.B) {
	env := natstest.Start(b)
	env.Tenant(b, "acme")
	responder := env.Connect(b, env.OrchestratorCreds("acme"), "orchestrator")
	if _, err := responder.QueueSubscribe(protocol.TasksSubmit, "orchestrator", func(m *nats.Msg) {
		m.Respond(m.Data)
	}); err != nil {
		b.Fatal(err)
	}
	responder.Flush()
	requester := env.Connect(b, env.Client(b, "acme", "loader"), "loader")
	payload := make([]byte, 512) // about a submit's size
	for i := range 100 {
		if _, err := requester.Request(protocol.TasksSubmit, payload, 5*time.Second); err != nil {
			b.Fatalf("warm-up request %d: %v", i, err)
		}
	}
	var mu sync.Mutex
	var latencies []time.Duration
	setParallelism(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpuStart := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			if _, err := requester.Request(protocol.TasksSubmit, payload, 5*time.Second); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportRate(b, cpuStart, latencies)
}
