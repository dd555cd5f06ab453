package bench

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/equilateral-agents/equilateral/security"
)

// TestReferences runs raw and the baseline briefly on a real embedded
// server: both measure something, and the baseline writes twice per task
// (the task, its result). Speed is never asserted.
func TestReferences(t *testing.T) {
	cfg, err := newConfig([]Option{WithDuration(300 * time.Millisecond), WithWarmup(50 * time.Millisecond), WithConcurrency(4), WithAgents(2)})
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{cfg: cfg}
	raw, base, err := b.references(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if raw.Requests == 0 || raw.RequestsPerSec <= 0 || raw.P50ms <= 0 || raw.P50ms > raw.P90ms || raw.P90ms > raw.P99ms {
		t.Errorf("raw: %+v", raw)
	}
	if base.Tasks == 0 || base.TasksPerSec <= 0 || base.P50ms <= 0 || base.P50ms > base.P90ms || base.P90ms > base.P99ms {
		t.Errorf("baseline: %+v", base)
	}
	if base.JetStreamWritesPerTask != 2 {
		t.Errorf("baseline: %v JetStream writes per task, want 2 (the task and its result)", base.JetStreamWritesPerTask)
	}
	if base.Handlers != 2 {
		t.Errorf("baseline: %d handlers, want one per agent (2)", base.Handlers)
	}
}

// TestRemote measures a running system (here, in this process, with TLS
// at advanced) as one of its clients, with the agents run by the bench:
// the level is the one the orchestrator announces, raw and baseline are
// skipped saying why, and what a client cannot see is left out.
func TestRemote(t *testing.T) {
	ctx := context.Background()
	s, err := startSystem(ctx, tlsServer, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	stop, err := s.startOrchestrator(ctx, security.Settings{Level: security.Advanced, Environment: security.Production}, noop.NewTracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	remote := Remote{URL: s.url, Creds: s.creds(benchClient), AgentCreds: s.creds(agentName(0)), NATSOptions: s.natsOpts}
	rep, err := Run(ctx, WithDuration(300*time.Millisecond), WithWarmup(50*time.Millisecond), WithConcurrency(2), WithAgents(2), WithSkip(Crypto), WithRemote(remote))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Levels) != 1 {
		t.Fatalf("levels: %+v", rep.Levels)
	}
	l := rep.Levels[0]
	if l.Level != "advanced" || l.Environment != "production" || l.Tasks == 0 || l.P50ms <= 0 || l.P50ms > l.P99ms {
		t.Errorf("level: %+v", l)
	}
	if l.CPUusPerTask != nil || l.SignaturesPerTask != nil || l.JetStreamWritesPerTask != nil || l.RatioToFloor != nil || len(l.Notes) == 0 {
		t.Errorf("a client cannot see the system's CPU, signatures or writes, yet: %+v", l)
	}
	if rep.Raw != nil || rep.Baseline != nil || rep.Skipped["raw"] == "" || rep.Skipped["baseline"] == "" || rep.Skipped["crypto"] == "" {
		t.Errorf("raw %v, baseline %v, skipped %v", rep.Raw, rep.Baseline, rep.Skipped)
	}

	remote.Creds = s.creds(agentName(0))
	if _, err := Run(ctx, WithDuration(time.Millisecond), WithSkip(Crypto), WithRemote(remote)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "client") {
		t.Errorf("an agent's creds as the client's: %v, want ErrConfig", err)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{WithDuration(0)}, "duration"},
		{[]Option{WithConcurrency(0)}, "concurrency"},
		{[]Option{WithAgents(0)}, "agents"},
		{[]Option{WithPayload(MinPayload - 1)}, "payload"},
		{[]Option{WithPayload(MaxPayload + 1)}, "payload"},
		{[]Option{WithLevels()}, "no levels"},
		{[]Option{WithLevels(security.Enhanced, security.Enhanced)}, "twice"},
		{[]Option{WithSkip("everything")}, "no part"},
		{[]Option{WithRemote(Remote{URL: "nats://x"})}, "creds"},
		{[]Option{WithRemote(Remote{URL: "nats://x", Creds: "c", Capability: "Not A Name"})}, "capability"},
	} {
		_, err := newConfig(tc.opts)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrConfig saying %q", tc.want, err, tc.want)
		}
	}
	if _, err := newConfig(nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestInput: every task's input is valid JSON of exactly the payload size.
func TestInput(t *testing.T) {
	for _, size := range []int{MinPayload, 1024, 4096} {
		for _, n := range []int64{0, 7, -3, 1 << 40} {
			in := input(n, size)
			var v struct {
				N   int64
				Pad string
			}
			if len(in) != size || json.Unmarshal(in, &v) != nil || v.N != n {
				t.Errorf("input(%d, %d) = %d bytes %q", n, size, len(in), in)
			}
		}
	}
}

func TestProfilePath(t *testing.T) {
	for _, tc := range []struct {
		path    string
		several bool
		want    string
	}{
		{"cpu.pprof", false, "cpu.pprof"},
		{"cpu.pprof", true, "cpu.enhanced.pprof"},
		{"dir/cpu", true, "dir/cpu.enhanced"},
		{"", true, ""},
	} {
		if got := profilePath(tc.path, "enhanced", tc.several); got != tc.want {
			t.Errorf("profilePath(%q, %v) = %q, want %q", tc.path, tc.several, got, tc.want)
		}
	}
}
