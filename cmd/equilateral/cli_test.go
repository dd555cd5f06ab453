package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/testbin"
)

// These tests run the real binary, as a user would, against the real
// embedded server it starts, and use the real nats CLI (built from the
// tools module) with the creds it writes.

// equilateralBinary is this package built, once per test process.
func equilateralBinary(t *testing.T) string {
	t.Helper()
	return testbin.Build(t, ".")
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(equilateralBinary(t), args...)
	cmd.Env = append(os.Environ(), "NATS_URL=", "EQUILATERAL_DATA_DIR=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

// startServer runs `equilateral server` and returns its URL from the
// ready line, and a func that stops it with SIGTERM and returns its exit.
func startServer(t *testing.T, dataDir string) (string, func() result) {
	t.Helper()
	cmd := exec.Command(equilateralBinary(t), "server", "--data-dir", dataDir, "--port", "-1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	ready := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if url, ok := strings.CutPrefix(lines.Text(), "ready: "); ok {
				ready <- url
			}
		}
	}()
	var url string
	select {
	case url = <-ready:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server not ready; stderr: %s", stderr.String())
	}
	var once sync.Once
	var res result
	stop := func() result {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			res = result{stderr: stderr.String()}
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				res.code = exit.ExitCode()
			}
		})
		return res
	}
	t.Cleanup(func() { stop() })
	return url, stop
}

func TestCLIIdentityLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, stop := startServer(t, dir)
	admin := func(args ...string) result {
		return run(t, append(args, "--data-dir", dir)...)
	}

	admin("tenant", "create", "acme", "--server", url, "--max-payload", "64KiB").ok(t)
	admin("agent", "create", "coder", "--tenant", "acme", "--capability", "code", "--capability", "review").ok(t)
	admin("client", "create", "client", "--tenant", "acme").ok(t)

	list := admin("agent", "list", "--tenant", "acme", "--json").ok(t)
	if !strings.Contains(list.stdout, `"name": "coder"`) || strings.Contains(list.stdout, `"name": "client"`) {
		t.Fatalf("agent list should show coder and not the client:\n%s", list.stdout)
	}
	tenants := admin("tenant", "list").ok(t)
	if !strings.Contains(tenants.stdout, "acme") || !strings.Contains(tenants.stdout, "65536") {
		t.Fatalf("tenant list lacks acme with its payload limit:\n%s", tenants.stdout)
	}

	// The creds work with the real nats CLI: the orchestrator dispatches,
	// the agent receives on its capability through its private inbox.
	creds := filepath.Join(dir, "creds", "acme")
	natsCLI := natsCLIBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub := exec.CommandContext(ctx, natsCLI, "--server", url, "--creds", filepath.Join(creds, "coder.creds"),
		"--inbox-prefix", "_INBOX_coder", "sub", "eq.cap.code", "--queue", "coders", "--count", "1", "--raw")
	var subOut bytes.Buffer
	sub.Stdout, sub.Stderr = &subOut, &subOut
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	// Publish until the subscriber has it (it may not be subscribed yet).
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()
	for delivered := false; !delivered; {
		pub := exec.Command(natsCLI, "--server", url, "--creds", filepath.Join(creds, "orchestrator.creds"),
			"--inbox-prefix", "_INBOX_orchestrator", "pub", "eq.cap.code", "task-1")
		if out, err := pub.CombinedOutput(); err != nil {
			t.Fatalf("nats pub as orchestrator: %v\n%s", err, out)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("nats sub as coder: %v\n%s", err, subOut.String())
			}
			delivered = true
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("coder never received the dispatch: %s", subOut.String())
		}
	}
	if !strings.Contains(subOut.String(), "task-1") {
		t.Fatalf("coder got %q", subOut.String())
	}

	// A client may not subscribe to an agent's capability.
	denied := exec.Command(natsCLI, "--server", url, "--creds", filepath.Join(creds, "client.creds"),
		"--inbox-prefix", "_INBOX_client", "sub", "eq.cap.code", "--count", "1", "--timeout", "3s")
	out, _ := denied.CombinedOutput()
	if !strings.Contains(strings.ToLower(string(out)), "permissions violation") {
		t.Fatalf("client subscribing eq.cap.code: want a permissions violation, got:\n%s", out)
	}

	admin("agent", "rotate", "coder", "--tenant", "acme", "--server", url).ok(t)
	admin("agent", "revoke", "coder", "--tenant", "acme", "--server", url).ok(t)
	revoked := admin("agent", "list", "--tenant", "acme").ok(t)
	if !strings.Contains(revoked.stdout, "revoked") {
		t.Fatalf("agent list after revoke:\n%s", revoked.stdout)
	}
	admin("tenant", "delete", "acme", "--server", url).ok(t)
	if _, err := os.Stat(creds); !os.IsNotExist(err) {
		t.Fatalf("creds of a deleted tenant still on disk: %v", err)
	}

	res := stop()
	if res.code != 0 || !strings.Contains(res.stderr, "server stopped") {
		t.Fatalf("SIGTERM: exit %d, stderr %s", res.code, res.stderr)
	}
}

func TestCLIErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	cases := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"bad tenant name", []string{"tenant", "create", "Acme", "--data-dir", dir, "--offline"}, 1, "invalid name"},
		{"missing data dir", []string{"tenant", "list", "--data-dir", filepath.Join(dir, "nope")}, 1, "equilateral init"},
		{"data dir required", []string{"tenant", "list"}, 2, "--data-dir is required"},
		{"unknown flag", []string{"tenant", "list", "--bogus"}, 2, "unknown flag"},
		{"init twice", []string{"init", "--data-dir", dir}, 1, "already initialised"},
		{"unknown tenant", []string{"agent", "create", "a", "--data-dir", dir, "--tenant", "nope", "--capability", "c"}, 1, "unknown tenant"},
		{"bad size", []string{"tenant", "create", "acme", "--data-dir", dir, "--offline", "--max-payload", "lots"}, 2, "positive size"},
		{"zero connections", []string{"tenant", "create", "acme", "--data-dir", dir, "--offline", "--max-connections", "0"}, 2, "connections must be positive"},
		{"server down", []string{"tenant", "create", "acme", "--data-dir", dir, "--server", "nats://127.0.0.1:1"}, 1, "cannot reach NATS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.contains) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", res.code, tc.code, res.stderr, tc.contains)
			}
		})
	}
	// None of the failures left a tenant behind.
	entries, err := os.ReadDir(filepath.Join(dir, "tenants"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("tenants dir after failures: %v %v", entries, err)
	}

	// Offline create is picked up by the server at start.
	run(t, "tenant", "create", "acme", "--data-dir", dir, "--offline").ok(t)
	run(t, "agent", "create", "dup", "--data-dir", dir, "--tenant", "acme", "--capability", "c").ok(t)
	dup := run(t, "agent", "create", "dup", "--data-dir", dir, "--tenant", "acme", "--capability", "c")
	if dup.code != 1 || !strings.Contains(dup.stderr, "already exists") {
		t.Fatalf("duplicate agent: exit %d, %s", dup.code, dup.stderr)
	}
	url, _ := startServer(t, dir)
	res := run(t, "agent", "revoke", "dup", "--data-dir", dir, "--tenant", "acme", "--server", url)
	if res.code != 0 {
		t.Fatalf("revoke on an offline-created tenant after start: %s", res.stderr)
	}
}
