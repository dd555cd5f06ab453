package subprocess_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
)

func TestLimitsApplyToHandler(t *testing.T) {
	r := newRunner(t, handlerArgv(t, "limits"), subprocess.WithLimits(subprocess.Limits{
		CPUTime:   1500 * time.Millisecond,
		OpenFiles: 64,
		Processes: 500,
	}))
	out, err := r.Run(t.Context(), testTask(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got limitsReport
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := limitsReport{CPU: [2]uint64{2, 3}, NoFile: [2]uint64{64, 64}, NProc: [2]uint64{500, 500}}
	if got != want {
		t.Errorf("handler limits %+v, want %+v", got, want)
	}
}

func TestMemoryLimitApplies(t *testing.T) {
	// The address-space limit, as the handler's child sees it.
	r := newRunner(t, sh(`awk '/^Max address space/ {print $4}' /proc/self/limits`),
		subprocess.WithLimits(subprocess.Limits{Memory: 256 << 20}))
	out, err := r.Run(t.Context(), testTask(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "268435456" {
		t.Errorf("address space limit %s, want 268435456", out)
	}
}

func TestMemoryLimitHolds(t *testing.T) {
	python := pythonPath(t)
	// allocating runs a handler that allocates n bytes under a 256 MiB limit.
	allocating := func(n string) *subprocess.Runner {
		return newRunner(t, []string{python, "-c", "import sys; b = bytearray(int(sys.argv[1])); print(len(b))", n},
			subprocess.WithLimits(subprocess.Limits{Memory: 256 << 20}))
	}

	out, err := allocating("16777216").Run(t.Context(), testTask(), nil)
	if err != nil {
		t.Fatalf("16 MiB under a 256 MiB limit: %v", err)
	}
	if string(out) != "16777216" {
		t.Errorf("result %s", out)
	}

	e := runError(t, allocating("1073741824"), subprocess.KindMemoryLimit)
	if e.Retryable || !strings.HasPrefix(e.Message, "handler ran out of memory under its limit of 256 MiB: MemoryError") {
		t.Errorf("error %+v", e)
	}
}

func TestCPULimitKillsBusyLoop(t *testing.T) {
	r := newRunner(t, sh(`while :; do :; done`),
		subprocess.WithLimits(subprocess.Limits{CPUTime: time.Second}),
		subprocess.WithTimeout(time.Minute))
	e := runError(t, r, subprocess.KindCPULimit)
	if e.Retryable || e.Message != "handler exceeded its CPU time limit of 1s" {
		t.Errorf("error %+v", e)
	}
}

func TestOpenFilesLimitHolds(t *testing.T) {
	r := newRunner(t, handlerArgv(t, "open-files", "100"),
		subprocess.WithLimits(subprocess.Limits{OpenFiles: 16}))
	out, err := r.Run(t.Context(), testTask(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Opened int
		Error  string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Opened >= 16 || !strings.Contains(got.Error, "too many open files") {
		t.Errorf("handler opened %d files under a limit of 16 (error %q)", got.Opened, got.Error)
	}

	// Without the limit, the same handler opens them all.
	r = newRunner(t, handlerArgv(t, "open-files", "100"))
	out, err = r.Run(t.Context(), testTask(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &got); err != nil || got.Opened != 100 {
		t.Errorf("handler without a limit: %s", out)
	}
}
