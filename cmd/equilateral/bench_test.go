package main

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// TestBenchJSON runs a short `bench --json` with two levels: every field
// of the documented shape is there, each part measured something, the
// latencies are ordered, every task was signed and written, the ratios
// are the numbers' own, and nothing is left in the temporary directory.
// Speed is never asserted.
func TestBenchJSON(t *testing.T) {
	tmp := t.TempDir()
	r := runEnv(t, []string{"TMPDIR=" + tmp, "OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="},
		"bench", "--duration", "1s", "--warmup", "100ms", "--levels", "foundation,enhanced",
		"--agents", "2", "--concurrency", "4", "--json").ok(t)

	var rep map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	num := func(obj map[string]any, where, field string) float64 {
		t.Helper()
		v, ok := obj[field].(float64)
		if !ok {
			t.Fatalf("%s: %q is %v, want a number\n%s", where, field, obj[field], r.stdout)
		}
		return v
	}
	part := func(name string) map[string]any {
		t.Helper()
		obj, ok := rep[name].(map[string]any)
		if !ok {
			t.Fatalf("%q is %v, want an object\n%s", name, rep[name], r.stdout)
		}
		return obj
	}
	ordered := func(where string, obj map[string]any, fields ...string) {
		t.Helper()
		for i := 1; i < len(fields); i++ {
			if a, b := num(obj, where, fields[i-1]), num(obj, where, fields[i]); a <= 0 || a > b {
				t.Errorf("%s: %s %v, %s %v: want 0 < %s <= %s", where, fields[i-1], a, fields[i], b, fields[i-1], fields[i])
			}
		}
	}
	near := func(where, field string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: %s is %v, the numbers give %v", where, field, got, want)
		}
	}

	raw := part("raw")
	if num(raw, "raw", "requests_per_sec") <= 0 {
		t.Errorf("raw: no requests/s")
	}
	ordered("raw", raw, "p50_ms", "p99_ms")

	base := part("baseline")
	for _, f := range []string{"tasks_per_sec", "cpu_us_per_task"} {
		if num(base, "baseline", f) <= 0 {
			t.Errorf("baseline: %s is not positive", f)
		}
	}
	ordered("baseline", base, "p50_ms", "p99_ms")

	crypto := part("crypto")
	sign, verify := num(crypto, "crypto", "sign_us"), num(crypto, "crypto", "verify_us")
	if sign <= 0 || verify <= 0 {
		t.Errorf("crypto: sign %v µs, verify %v µs", sign, verify)
	}
	procs := num(part("settings"), "settings", "gomaxprocs")

	levels, ok := rep["levels"].([]any)
	if !ok || len(levels) != 2 {
		t.Fatalf("levels: %v, want two\n%s", rep["levels"], r.stdout)
	}
	for i, want := range []string{"foundation", "enhanced"} {
		l := levels[i].(map[string]any)
		if l["level"] != want {
			t.Errorf("level %d is %v, want %s", i, l["level"], want)
		}
		for _, f := range []string{"tasks_per_sec", "cpu_us_per_task", "verifications_per_task", "spans_per_task", "server_msgs_in_per_task"} {
			if num(l, want, f) <= 0 {
				t.Errorf("%s: %s is not positive", want, f)
			}
		}
		ordered(want, l, "p50_ms", "p90_ms", "p99_ms")
		for _, f := range []string{"signatures_per_task", "jetstream_writes_per_task"} {
			if num(l, want, f) < 1 {
				t.Errorf("%s: %s %v, want at least 1", want, f, l[f])
			}
		}
		rate := num(l, want, "tasks_per_sec")
		near(want, "ratio_to_raw_p50", num(l, want, "ratio_to_raw_p50"), num(l, want, "p50_ms")/num(raw, "raw", "p50_ms"))
		near(want, "ratio_to_baseline", num(l, want, "ratio_to_baseline"), rate/num(base, "baseline", "tasks_per_sec"))
		floor := procs * 1e6 / (num(l, want, "signatures_per_task")*sign + num(l, want, "verifications_per_task")*verify)
		near(want, "floor_tasks_per_sec", num(l, want, "floor_tasks_per_sec"), floor)
		near(want, "ratio_to_floor", num(l, want, "ratio_to_floor"), rate/floor)
	}

	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "equilateral-bench-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if !strings.Contains(r.stderr, "bench: enhanced: measuring") {
		t.Errorf("no progress on stderr:\n%s", r.stderr)
	}
}

// TestBenchUsage: flags that make no sense are usage errors (exit 2)
// that say what would; nothing is measured.
func TestBenchUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--levels", "bogus"}, "foundation, enhanced, advanced, enterprise"},
		{[]string{"--levels", "enhanced,enhanced"}, "twice"},
		{[]string{"--skip", "levels"}, "raw, baseline, crypto"},
		{[]string{"--payload", "16"}, "payload"},
		{[]string{"--concurrency", "0"}, "concurrency"},
		{[]string{"--creds", "x.creds"}, "--server"},
		{[]string{"--server", "nats://127.0.0.1:1", "--levels", "enhanced"}, "level its orchestrator runs at"},
	} {
		r := runEnv(t, []string{"NATS_CREDS="}, append([]string{"bench"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("bench %v: exit %d, stderr %q; want exit 2 saying %q", tc.args, r.code, r.stderr, tc.want)
		}
		if r.stdout != "" {
			t.Errorf("bench %v printed %q", tc.args, r.stdout)
		}
	}
}
