package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/procout"
)

// TestREADMEQuickstart runs the README's quickstart for real: the built
// binary runs `dev` (on a free port, in a temp dir), then every command of
// the quickstart block as written, through sh, checking the outputs the
// README promises (#=> for success containing the text, #=! for failure).
func TestREADMEQuickstart(t *testing.T) {
	steps := quickstartSteps(t)
	if len(steps) < 3 {
		t.Fatalf("the README quickstart has %d commands; the markers or the format changed", len(steps))
	}
	bin := equilateralBinary(t)
	dir := t.TempDir()
	url := startDev(t, dir)

	for _, s := range steps {
		command := strings.ReplaceAll(s.command, "go run ./cmd/equilateral", bin)
		cmd := exec.Command("/bin/sh", "-c", command)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NATS_URL="+url, "NATS_CREDS=", "EQUILATERAL_DATA_DIR=")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		switch {
		case s.fails && err == nil:
			t.Errorf("%s\nsucceeded, the README says it fails:\n%s", s.command, out.String())
		case !s.fails && err != nil:
			t.Errorf("%s\nfailed (%v):\n%s", s.command, err, out.String())
		case !strings.Contains(out.String(), s.want):
			t.Errorf("%s\nprinted:\n%s\nthe README promises %q", s.command, out.String(), s.want)
		}
	}
}

type quickstartStep struct {
	command string
	want    string
	fails   bool
}

// quickstartSteps reads the commands between the quickstart markers.
func quickstartSteps(t *testing.T) []quickstartStep {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- quickstart -->")
	block, _, ok2 := strings.Cut(block, "<!-- /quickstart -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no <!-- quickstart --> ... <!-- /quickstart --> block")
	}
	var steps []quickstartStep
	var pending string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimRight(line, " ")
		switch {
		case pending != "":
			pending += "\n" + line
			if !strings.HasSuffix(line, "\\") {
				steps = append(steps, quickstartStep{command: pending})
				pending = ""
			}
		case strings.HasPrefix(line, "#=> "), strings.HasPrefix(line, "#=! "):
			if len(steps) == 0 {
				t.Fatalf("README quickstart: %q follows no command", line)
			}
			steps[len(steps)-1].want = line[4:]
			steps[len(steps)-1].fails = strings.HasPrefix(line, "#=!")
		case strings.HasPrefix(line, "go run ./cmd/equilateral "):
			if strings.HasSuffix(line, "\\") {
				pending = line
			} else {
				steps = append(steps, quickstartStep{command: line})
			}
		}
	}
	for _, s := range steps {
		if s.want == "" {
			t.Fatalf("README quickstart: %q has no #=> or #=! line saying what it prints", s.command)
		}
	}
	return steps
}

// startDev runs `equilateral dev` in dir on a free port until the test
// ends and returns its URL.
func startDev(t *testing.T, dir string) string {
	t.Helper()
	return startDevUntil(t, dir).url
}

// TestDevRestartKeepsState: a second `dev` on the same data dir reuses
// its keys and creds and still has the first run's tasks.
func TestDevRestartKeepsState(t *testing.T) {
	bin := equilateralBinary(t)
	dir := t.TempDir()
	sh := func(url, command string) string {
		cmd := exec.Command("/bin/sh", "-c", command)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NATS_URL="+url, "NATS_CREDS=", "EQUILATERAL_DATA_DIR=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	first := startDevUntil(t, dir)
	id := sh(first.url, bin+` task submit --creds eq-dev/creds/acme/client.creds --capability plan --data '{"feature": "search"}' --wait --json`)
	var done struct {
		TaskID string `json:"task_id"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal([]byte(id), &done); err != nil || done.State != "completed" {
		t.Fatalf("first run: %v: %s", err, id)
	}
	credsBefore, err := os.ReadFile(filepath.Join(dir, "eq-dev", "creds", "acme", "client.creds"))
	if err != nil {
		t.Fatal(err)
	}
	first.stop()

	second := startDevUntil(t, dir)
	got := sh(second.url, bin+" task get --creds eq-dev/creds/acme/client.creds --json "+done.TaskID)
	if !strings.Contains(got, `"state": "completed"`) && !strings.Contains(got, `"state":"completed"`) {
		t.Fatalf("after a restart the task is not there as completed:\n%s", got)
	}
	credsAfter, err := os.ReadFile(filepath.Join(dir, "eq-dev", "creds", "acme", "client.creds"))
	if err != nil || !bytes.Equal(credsBefore, credsAfter) {
		t.Fatalf("a restart must keep the creds (err %v)", err)
	}
}

type devProcess struct {
	url     string
	metrics string // the metrics URL, with --metrics-addr
	stop    func()
}

// startDevUntil is startDev with a stop that can be called before the
// test ends.
func startDevUntil(t *testing.T, dir string, args ...string) devProcess {
	t.Helper()
	return startDevWithEnv(t, dir, []string{"OTEL_EXPORTER_OTLP_ENDPOINT="}, args...)
}

// startDevWithEnv is startDevUntil with extra environment variables.
func startDevWithEnv(t *testing.T, dir string, env []string, args ...string) devProcess {
	t.Helper()
	cmd := exec.Command(equilateralBinary(t), append([]string{"dev", "--port", "-1"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "EQUILATERAL_DATA_DIR="), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr procout.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	metrics := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if url, ok := strings.CutPrefix(lines.Text(), "ready: "); ok {
				ready <- url
			}
			if url, ok := strings.CutPrefix(lines.Text(), "metrics: "); ok {
				metrics <- url
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("dev exited with %v on SIGTERM; stderr:\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Errorf("dev did not stop on SIGTERM; stderr:\n%s", stderr.String())
			}
		})
	}
	t.Cleanup(stop)
	select {
	case url := <-ready:
		d := devProcess{url: url, stop: stop}
		select {
		case d.metrics = <-metrics:
		default:
		}
		return d
	case <-time.After(60 * time.Second):
		t.Fatalf("dev not ready; stderr:\n%s", stderr.String())
		return devProcess{}
	}
}

// TestDevMetricsEndpoint: with --metrics-addr, `dev` serves the
// orchestrator's metrics for Prometheus, and a task shows up in them.
func TestDevMetricsEndpoint(t *testing.T) {
	bin := equilateralBinary(t)
	dir := t.TempDir()
	d := startDevUntil(t, dir, "--metrics-addr", "127.0.0.1:0")
	if d.metrics == "" {
		t.Fatal("dev printed no metrics URL")
	}
	cmd := exec.Command("/bin/sh", "-c", bin+` task submit --creds eq-dev/creds/acme/client.creds --capability summarize --data '{"text": "hi"}' --wait`)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NATS_URL="+d.url, "NATS_CREDS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("task: %v\n%s", err, out)
	}
	resp, err := http.Get(d.metrics)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `equilateral_tasks_transitions_total{capability="summarize",state="completed",tenant="acme"} 1`
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		t.Fatalf("GET %s: %s; want a line %s in:\n%s", d.metrics, resp.Status, want, body)
	}
}
