package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// connectAs connects a principal of the data dir with its creds and
// inbox prefix, closed when the test ends.
func connectAs(t *testing.T, url, dataDir, tenant, name string) (nc *nats.Conn, creds string) {
	t.Helper()
	creds = filepath.Join(dataDir, "creds", tenant, name+".creds")
	nc, err := nats.Connect(url, nats.UserCredentials(creds), nats.CustomInboxPrefix(protocol.InboxPrefix(name)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, creds
}

// echoAgent runs a hand-written agent answering {"echo": input}.
func echoAgent(t *testing.T, url, dataDir, tenant, name, capability string) {
	t.Helper()
	nc, creds := connectAs(t, url, dataDir, tenant, name)
	store, err := auth.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(store)
	if err != nil {
		t.Fatal(err)
	}
	agenttest.Echo(t, nc, keys, creds, tenant, name, capability)
}

// startTaskStack runs, with the binary, a server and an orchestrator for
// tenant acme with a client "client" and an echo agent "coder" (code); the
// orchestrator exports no spans whatever the test's environment says.
func startTaskStack(t *testing.T) (dir, url string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ = startServer(t, dir)
	admin := func(args ...string) result { return run(t, append(args, "--data-dir", dir)...).ok(t) }
	admin("tenant", "create", "acme", "--server", url)
	admin("agent", "create", "--tenant", "acme", "--name", "coder", "--capability", "code")
	admin("client", "create", "--tenant", "acme", "--name", "client")

	orch := exec.Command(equilateralBinary(t), "orchestrator", "--data-dir", dir, "--server", url)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			orch.Env = append(orch.Env, kv)
		}
	}
	if err := orch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Process.Kill(); orch.Wait() })
	echoAgent(t, url, dir, "acme", "coder", "code")
	return dir, url
}

func TestCLITasks(t *testing.T) {
	dir, url := startTaskStack(t)

	creds := filepath.Join(dir, "creds", "acme", "client.creds")
	var res result
	// The orchestrator may still be starting: retry until it answers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		res = run(t, "task", "submit", "--creds", creds, "--server", url, "--capability", "code", "--data", `"hi"`, "--wait", "--timeout", "10s")
		if res.code == 0 || time.Now().After(deadline) || !strings.Contains(res.stderr, "no orchestrator") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res.code != 0 || strings.TrimSpace(res.stdout) != `{"echo":"hi"}` {
		t.Fatalf("submit --wait: exit %d\nstdout %s\nstderr %s", res.code, res.stdout, res.stderr)
	}

	// Without --wait: the id, then get and list find it.
	id := strings.TrimSpace(run(t, "task", "submit", "--creds", creds, "--server", url, "--capability", "code", "--data", `{"n":1}`).ok(t).stdout)
	watched := run(t, "task", "watch", id, "--creds", creds, "--server", url, "--json").ok(t)
	var v protocol.TaskView
	if err := json.Unmarshal([]byte(watched.stdout), &v); err != nil || v.State != protocol.StateCompleted {
		t.Fatalf("watch: %v %s", err, watched.stdout)
	}
	got := run(t, "task", "get", id, "--creds", creds, "--server", url).ok(t)
	if !strings.Contains(got.stdout, "completed") || !strings.Contains(got.stdout, `{"echo":{"n":1}}`) {
		t.Fatalf("get:\n%s", got.stdout)
	}
	list := run(t, "task", "list", "--creds", creds, "--server", url).ok(t)
	if !strings.Contains(list.stdout, id) {
		t.Fatalf("list lacks %s:\n%s", id, list.stdout)
	}

	// Refusals are clear, carry a request id, and exit non-zero.
	bad := run(t, "task", "submit", "--creds", creds, "--server", url, "--capability", "nope", "--data", "1")
	if bad.code != 1 || !strings.Contains(bad.stderr, "unknown_capability") || !strings.Contains(bad.stderr, "request id") {
		t.Fatalf("unknown capability: exit %d, %s", bad.code, bad.stderr)
	}
	missing := run(t, "task", "get", "nosuchtask", "--creds", creds, "--server", url)
	if missing.code != 1 || !strings.Contains(missing.stderr, "not_found") {
		t.Fatalf("unknown task: exit %d, %s", missing.code, missing.stderr)
	}
	garbage := run(t, "task", "submit", "--creds", creds, "--server", url, "--capability", "code", "--data", "{oops")
	if garbage.code != 2 || !strings.Contains(garbage.stderr, "not valid JSON") {
		t.Fatalf("bad JSON: exit %d, %s", garbage.code, garbage.stderr)
	}
}

func TestReadFlowExample(t *testing.T) {
	flow, err := readFlow(filepath.Join("..", "..", "examples", "flows", "plan-code-review.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(flow.Steps) != 3 || flow.Steps[2].Capability != "review" {
		t.Fatalf("flow %+v", flow)
	}
	in, _ := flow.Steps[2].Input.(map[string]any)
	if in["code"] != "${steps.code.output}" {
		t.Fatalf("review input %v", flow.Steps[2].Input)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("steps:\n  - name: a\n    capability: x\n    input: ${steps.b.output}\n"), 0o600)
	if _, err := readFlow(bad); err == nil || !strings.Contains(err.Error(), "not an earlier step") {
		t.Fatalf("forward reference: %v", err)
	}
}

func TestReadPolicyExample(t *testing.T) {
	p, err := readPolicy(filepath.Join("..", "..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	retry := p.Default.Capabilities["code"].Retry
	if retry == nil || retry.MaxAttempts != 5 || retry.InitialBackoff != 500*time.Millisecond {
		t.Fatalf("retry policy %+v", retry)
	}
	if p.Default.Capabilities["code"].Gate != "review" || p.Tenants["globex"].MaxConcurrent != 100 {
		t.Fatalf("policy %+v", p)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("default:\n  rate_per_sec: 5\n"), 0o600)
	if _, err := readPolicy(bad); err == nil {
		t.Fatal("a misspelt field was accepted")
	}
}
