package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/equilateral-agents/equilateral/telemetry"
	"github.com/equilateral-agents/equilateral/telemetry/metrics"
)

// newProvider returns an SDK provider read by hand.
func newProvider(t testing.TB) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, reader
}

// newRecorder returns a Recorder on an SDK provider read by hand.
func newRecorder(t testing.TB) (*metrics.Recorder, *sdkmetric.ManualReader) {
	t.Helper()
	mp, reader := newProvider(t)
	r, err := metrics.New(mp)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil {
		t.Fatal("New on an SDK provider returned a nil Recorder")
	}
	return r, reader
}

// collect reads every metric of the Recorder's scope, by name.
func collect(t testing.TB, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != metrics.ScopeName {
			t.Fatalf("scope %q, want %q", sm.Scope.Name, metrics.ScopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrs renders a set as "k=v,k=v" (sorted by key, as sets are).
func attrs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

func sums(t testing.TB, m metricdata.Metrics, monotonic bool) map[string]int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s: data is %T, want an int64 sum", m.Name, m.Data)
	}
	if sum.IsMonotonic != monotonic {
		t.Fatalf("%s: monotonic = %v, want %v", m.Name, sum.IsMonotonic, monotonic)
	}
	out := map[string]int64{}
	for _, p := range sum.DataPoints {
		out[attrs(p.Attributes)] = p.Value
	}
	return out
}

type histPoint struct {
	count uint64
	sum   float64
}

func histograms(t testing.TB, m metricdata.Metrics) map[string]histPoint {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: data is %T, want a float64 histogram", m.Name, m.Data)
	}
	out := map[string]histPoint{}
	for _, p := range h.DataPoints {
		if !slices.Equal(p.Bounds, metrics.DurationBuckets) {
			t.Fatalf("%s: bounds %v, want %v", m.Name, p.Bounds, metrics.DurationBuckets)
		}
		out[attrs(p.Attributes)] = histPoint{p.Count, p.Sum}
	}
	return out
}

func equal[V comparable](t testing.TB, name string, got, want map[string]V) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %v, want %v", name, got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", name, got, want)
			return
		}
	}
}

// Every instrument, after calls: name, unit, description, kind,
// attributes and values.
func TestInstruments(t *testing.T) {
	r, reader := newRecorder(t)
	ctx := context.Background()

	for _, s := range []string{"submitted", "dispatched", "running", "completed"} {
		r.TaskTransition(ctx, "acme", "summarize", s)
	}
	r.TaskTransition(ctx, "acme", "summarize", "submitted")
	r.TaskTransition(ctx, "globex", "translate", "submitted")
	r.TaskStarted(ctx, "acme", "summarize", 250*time.Millisecond)
	r.TaskStarted(ctx, "acme", "summarize", 750*time.Millisecond)
	r.AttemptFinished(ctx, "acme", "summarize", 2*time.Second)
	r.TaskFinished(ctx, "acme", "summarize", "completed", 3*time.Second)
	r.TaskFinished(ctx, "globex", "translate", "timed_out", -time.Second)
	r.Refused(ctx, "acme", "replay")
	r.Refused(ctx, "acme", "replay")
	r.Refused(ctx, "globex", "rate_limited")
	r.SignatureFailure(ctx, "acme", "bad_signature")

	mustRegister(t)(r.ObserveUnfinished(func(_ context.Context, observe func(string, string, int64)) error {
		observe("acme", "submitted", 1)
		observe("acme", "running", 2)
		return nil
	}))
	mustRegister(t)(r.ObserveQueueDepth(func(_ context.Context, observe func(string, string, int64)) error {
		observe("acme", "summarize", 4)
		observe("globex", "translate", 1)
		return nil
	}))
	// A second func for the same series adds to the first.
	mustRegister(t)(r.ObserveQueueDepth(func(_ context.Context, observe func(string, string, int64)) error {
		observe("acme", "summarize", 3)
		return nil
	}))
	mustRegister(t)(r.ObserveAgentsLive(func(_ context.Context, observe func(string, int64)) error {
		observe("acme", 5)
		return nil
	}))

	got := collect(t, reader)
	units := map[string]string{
		metrics.TaskTransitions:   "{transition}",
		metrics.TasksUnfinished:   "{task}",
		metrics.TaskDuration:      "s",
		metrics.TaskQueueTime:     "s",
		metrics.AttemptDuration:   "s",
		metrics.QueueDepth:        "{task}",
		metrics.SignatureFailures: "{failure}",
		metrics.Refusals:          "{refusal}",
		metrics.AgentsLive:        "{agent}",
	}
	if len(got) != len(units) {
		t.Fatalf("collected %d metrics, want %d", len(got), len(units))
	}
	for name, unit := range units {
		m, ok := got[name]
		if !ok {
			t.Fatalf("%s not collected", name)
		}
		if m.Unit != unit {
			t.Errorf("%s: unit %q, want %q", name, m.Unit, unit)
		}
		if m.Description == "" {
			t.Errorf("%s: no description", name)
		}
	}

	equal(t, metrics.TaskTransitions, sums(t, got[metrics.TaskTransitions], true), map[string]int64{
		"capability=summarize,state=submitted,tenant=acme":   2,
		"capability=summarize,state=dispatched,tenant=acme":  1,
		"capability=summarize,state=running,tenant=acme":     1,
		"capability=summarize,state=completed,tenant=acme":   1,
		"capability=translate,state=submitted,tenant=globex": 1,
	})
	equal(t, metrics.TaskQueueTime, histograms(t, got[metrics.TaskQueueTime]), map[string]histPoint{
		"capability=summarize,tenant=acme": {2, 1.0},
	})
	equal(t, metrics.AttemptDuration, histograms(t, got[metrics.AttemptDuration]), map[string]histPoint{
		"capability=summarize,tenant=acme": {1, 2.0},
	})
	equal(t, metrics.TaskDuration, histograms(t, got[metrics.TaskDuration]), map[string]histPoint{
		"capability=summarize,state=completed,tenant=acme":   {1, 3.0},
		"capability=translate,state=timed_out,tenant=globex": {1, 0}, // negative counts as zero
	})
	equal(t, metrics.Refusals, sums(t, got[metrics.Refusals], true), map[string]int64{
		"reason=replay,tenant=acme":         2,
		"reason=rate_limited,tenant=globex": 1,
	})
	equal(t, metrics.SignatureFailures, sums(t, got[metrics.SignatureFailures], true), map[string]int64{
		"reason=bad_signature,tenant=acme": 1,
	})
	equal(t, metrics.TasksUnfinished, sums(t, got[metrics.TasksUnfinished], false), map[string]int64{
		"state=submitted,tenant=acme": 1,
		"state=running,tenant=acme":   2,
	})
	equal(t, metrics.QueueDepth, sums(t, got[metrics.QueueDepth], false), map[string]int64{
		"capability=summarize,tenant=acme":   7,
		"capability=translate,tenant=globex": 1,
	})
	equal(t, metrics.AgentsLive, sums(t, got[metrics.AgentsLive], false), map[string]int64{
		"tenant=acme": 5,
	})
}

// mustRegister takes what an Observe… method returns, fails on an error
// and unregisters at cleanup, checking that it succeeds.
func mustRegister(t testing.TB) func(metric.Registration, error) {
	t.Helper()
	return func(reg metric.Registration, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := reg.Unregister(); err != nil {
				t.Error(err)
			}
		})
	}
}

// A gauge func stops being called once unregistered.
func TestUnregister(t *testing.T) {
	r, reader := newRecorder(t)
	calls := 0
	reg, err := r.ObserveAgentsLive(func(_ context.Context, observe func(string, int64)) error {
		calls++
		observe("acme", 1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, reader)
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	collect(t, reader)
	if calls != 1 {
		t.Fatalf("func called %d times, want 1", calls)
	}
}

// A gauge func's error reaches the collector; what it observed still counts.
func TestObserveError(t *testing.T) {
	r, reader := newRecorder(t)
	boom := errors.New("store unavailable")
	mustRegister(t)(r.ObserveQueueDepth(func(_ context.Context, observe func(string, string, int64)) error {
		observe("acme", "summarize", 2)
		return boom
	}))
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); !errors.Is(err, boom) {
		t.Fatalf("Collect err = %v, want %v", err, boom)
	}
}

func TestObserveNilFunc(t *testing.T) {
	r, _ := newRecorder(t)
	if _, err := r.ObserveQueueDepth(nil); err == nil {
		t.Fatal("nil func accepted")
	}
}

// Metrics off: New hands back a nil Recorder, and every call on it is a
// no-op.
func TestOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		mp   metric.MeterProvider
	}{{"nil", nil}, {"noop", noop.NewMeterProvider()}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := metrics.New(tc.mp)
			if err != nil || r != nil {
				t.Fatalf("New = %v, %v; want nil, nil", r, err)
			}
			useAll(t, r)
		})
	}
}

func useAll(t testing.TB, r *metrics.Recorder) {
	t.Helper()
	ctx := context.Background()
	r.TaskTransition(ctx, "acme", "summarize", "submitted")
	r.TaskStarted(ctx, "acme", "summarize", time.Second)
	r.TaskFinished(ctx, "acme", "summarize", "completed", time.Second)
	r.AttemptFinished(ctx, "acme", "summarize", time.Second)
	r.Refused(ctx, "acme", "replay")
	r.SignatureFailure(ctx, "acme", "bad_signature")
	mustRegister(t)(r.ObserveUnfinished(nil))
	mustRegister(t)(r.ObserveQueueDepth(nil))
	mustRegister(t)(r.ObserveAgentsLive(nil))
}

// Many goroutines recording new and known combinations at once (run with
// -race): no lost counts.
func TestConcurrent(t *testing.T) {
	r, reader := newRecorder(t)
	const workers, each = 8, 200
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				tenant := []string{"acme", "globex", "initech"}[(w+i)%3]
				r.Refused(context.Background(), tenant, "replay")
			}
		}()
	}
	for range workers {
		<-done
	}
	var total int64
	for _, v := range sums(t, collect(t, reader)[metrics.Refusals], true) {
		total += v
	}
	if total != workers*each {
		t.Fatalf("counted %d refusals, want %d", total, workers*each)
	}
}

// The Prometheus handler from telemetry serves every instrument under its
// exposition name.
func TestPrometheusExposition(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "")
	ctx := context.Background()
	mp, handler, shutdown, err := telemetry.Metrics(ctx, "orchestrator", true, telemetry.WithPrometheus())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	r, err := metrics.New(mp)
	if err != nil {
		t.Fatal(err)
	}
	r.TaskTransition(ctx, "acme", "summarize", "submitted")
	r.TaskStarted(ctx, "acme", "summarize", 20*time.Millisecond)
	r.AttemptFinished(ctx, "acme", "summarize", time.Second)
	r.TaskFinished(ctx, "acme", "summarize", "completed", 2*time.Second)
	r.Refused(ctx, "acme", "replay")
	r.SignatureFailure(ctx, "acme", "bad_signature")
	mustRegister(t)(r.ObserveUnfinished(func(_ context.Context, observe func(string, string, int64)) error {
		observe("acme", "running", 2)
		return nil
	}))
	mustRegister(t)(r.ObserveQueueDepth(func(_ context.Context, observe func(string, string, int64)) error {
		observe("acme", "summarize", 3)
		return nil
	}))
	mustRegister(t)(r.ObserveAgentsLive(func(_ context.Context, observe func(string, int64)) error {
		observe("acme", 4)
		return nil
	}))

	mux := http.NewServeMux()
	mux.Handle("/metrics", handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	lines := strings.Split(string(body), "\n")
	for _, want := range []string{
		`# TYPE equilateral_tasks_transitions_total counter`,
		`equilateral_tasks_transitions_total{capability="summarize",state="submitted",tenant="acme"} 1`,
		`# TYPE equilateral_task_queue_time_seconds histogram`,
		`equilateral_task_queue_time_seconds_bucket{capability="summarize",tenant="acme",le="0.025"} 1`,
		`equilateral_task_queue_time_seconds_count{capability="summarize",tenant="acme"} 1`,
		`# TYPE equilateral_attempt_duration_seconds histogram`,
		`equilateral_attempt_duration_seconds_sum{capability="summarize",tenant="acme"} 1`,
		`# TYPE equilateral_task_duration_seconds histogram`,
		`equilateral_task_duration_seconds_bucket{capability="summarize",state="completed",tenant="acme",le="+Inf"} 1`,
		`equilateral_task_duration_seconds_sum{capability="summarize",state="completed",tenant="acme"} 2`,
		`# TYPE equilateral_refusals_total counter`,
		`equilateral_refusals_total{reason="replay",tenant="acme"} 1`,
		`# TYPE equilateral_signature_failures_total counter`,
		`equilateral_signature_failures_total{reason="bad_signature",tenant="acme"} 1`,
		`# TYPE equilateral_tasks_unfinished gauge`,
		`equilateral_tasks_unfinished{state="running",tenant="acme"} 2`,
		`# TYPE equilateral_queue_depth gauge`,
		`equilateral_queue_depth{capability="summarize",tenant="acme"} 3`,
		`# TYPE equilateral_agents_live gauge`,
		`equilateral_agents_live{tenant="acme"} 4`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("/metrics lacks the line\n\t%s", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("/metrics:\n%s", body)
	}
}
