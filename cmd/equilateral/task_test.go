package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
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
	store, err := auth.OpenReadOnly(dataDir)
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
// A setup, if given, prepares the data dir and chooses the orchestrator's
// arguments.
func startTaskStack(t *testing.T, setup ...stackSetup) (dir, url string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ = startServer(t, dir)
	admin := func(args ...string) result { return run(t, append(args, "--data-dir", dir)...).ok(t) }
	admin("tenant", "create", "acme", "--server", url)
	admin("agent", "create", "coder", "--tenant", "acme", "--capability", "code")
	admin("client", "create", "client", "--tenant", "acme")
	enrollTestAdmin(t, dir) // the enhanced level's gate needs MFA
	args := []string{"orchestrator", "--data-dir", dir, "--server", url}
	for _, s := range setup {
		if s.prepare != nil {
			s.prepare(dir)
		}
		if s.orchestratorArgs != nil {
			args = s.orchestratorArgs(dir, url)
		}
	}

	orch := exec.Command(equilateralBinary(t), args...)
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

// stackSetup changes startTaskStack: prepare runs on the data dir before
// the orchestrator starts, orchestratorArgs gives its command line.
type stackSetup struct {
	prepare          func(dir string)
	orchestratorArgs func(dir, url string) []string
}

// submitHi submits "hi" to the echo agent and waits for its answer,
// retrying while the orchestrator is still starting.
func submitHi(t *testing.T, url, creds string) {
	t.Helper()
	var res result
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
}

// TestOrchestratorCommandNeedsNoSeeds: with every signing seed and the
// system admin's creds gone from the data dir, `equilateral orchestrator`
// still serves the tenant. It is started with only --config: the file
// names the servers and the data dir (relative to the file).
func TestOrchestratorCommandNeedsNoSeeds(t *testing.T) {
	var removed int
	dir, url := startTaskStack(t, stackSetup{orchestratorArgs: func(dir, url string) []string {
		config := filepath.Join(filepath.Dir(dir), "orchestrator.yaml")
		body := fmt.Sprintf("servers: [%s]\ndata_dir: %s\nreplicas: 1\n", url, filepath.Base(dir))
		if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"orchestrator", "--config", config}
	}, prepare: func(dir string) {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".nk") || strings.HasSuffix(path, "admin.creds")) {
				if os.Remove(path) == nil {
					removed++
				}
			}
			return nil
		})
	}})
	if removed < 3 {
		t.Fatalf("removed %d seed files; the data dir layout changed", removed)
	}
	if _, err := auth.Open(dir); err == nil {
		t.Fatal("the full store still opens: the seeds were not removed")
	}
	creds := filepath.Join(dir, "creds", "acme", "client.creds")
	submitHi(t, url, creds)
}

// TestOrchestratorLearnsIdentitiesOverNATS: after `tenant publish`, an
// orchestrator given only the operator JWT and a directory with the
// tenant's orchestrator creds (no data dir at all) serves the tenant, and
// a client created later, which `client create` publishes.
func TestOrchestratorLearnsIdentitiesOverNATS(t *testing.T) {
	own := t.TempDir() // the orchestrator host's files
	dir, url := startTaskStack(t, stackSetup{orchestratorArgs: func(dir, url string) []string {
		run(t, "tenant", "publish", "acme", "--data-dir", dir, "--server", url).ok(t)
		creds, err := os.ReadFile(filepath.Join(dir, "creds", "acme", "orchestrator.creds"))
		if err != nil {
			t.Fatal(err)
		}
		operator, err := os.ReadFile(filepath.Join(dir, "operator", "operator.jwt"))
		if err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(own, "creds"), 0o700)
		os.WriteFile(filepath.Join(own, "creds", "acme.creds"), creds, 0o600)
		os.WriteFile(filepath.Join(own, "operator.jwt"), operator, 0o644)
		// One server, not a cluster: its encryption at rest shows only in
		// its config.
		return []string{"orchestrator", "--operator-jwt", filepath.Join(own, "operator.jwt"), "--creds-dir", filepath.Join(own, "creds"), "--server", url,
			"--server-config", filepath.Join(dir, "server.conf")}
	}})
	submitHi(t, url, filepath.Join(dir, "creds", "acme", "client.creds"))

	// A client created while it runs is published by `client create`
	// itself: the orchestrator takes its submits with no `tenant publish`.
	created := run(t, "client", "create", "latecomer", "--tenant", "acme", "--data-dir", dir, "--server", url).ok(t)
	if strings.Contains(created.stderr, "warning") {
		t.Fatalf("client create did not publish: %s", created.stderr)
	}
	submitHi(t, url, filepath.Join(dir, "creds", "acme", "latecomer.creds"))
}

func TestCLITasks(t *testing.T) {
	dir, url := startTaskStack(t)

	creds := filepath.Join(dir, "creds", "acme", "client.creds")
	submitHi(t, url, creds)

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

// TestCLIFlowAndPolicyFiles: the CLI reads the example flow and policy,
// and refuses a bad one as a usage error naming the flag, the file and
// the line, before it connects anywhere.
func TestCLIFlowAndPolicyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	write := func(name, text string) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	noCreds := filepath.Join(t.TempDir(), "none.creds")
	devDir := filepath.Join(t.TempDir(), "dev")
	example := filepath.Join("..", "..", "examples", "flows", "plan-code-review.yaml")
	// The example flow is read; the missing creds are what stops it.
	if r := run(t, "task", "submit", "--creds", noCreds, "--flow", example, "--data", `{"feature":"x"}`); r.code != 1 || !strings.Contains(r.stderr, "read creds") {
		t.Errorf("submit of the example flow: exit %d, %s", r.code, r.stderr)
	}
	badFlow := write("flow.yaml", "steps:\n  - name: a\n    capability: x\n    input: ${steps.b.output}\n")
	typoFlow := write("typo.yaml", "steps:\n  - name: a\n    capabilty: x\n")
	badPolicy := write("policy.yaml", "default:\n  rate_per_sec: 5\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"task", "submit", "--creds", noCreds, "--flow", badFlow}, "--flow: " + badFlow + `: step "a" refers to "b", which is not an earlier step`},
		{[]string{"task", "submit", "--creds", noCreds, "--flow", typoFlow}, "--flow: " + typoFlow + `: line 3: unknown field "capabilty"`},
		{[]string{"orchestrator", "--data-dir", dir, "--policy", badPolicy}, "--policy: " + badPolicy + `: line 2: unknown field "rate_per_sec"`},
		{[]string{"dev", "--data-dir", devDir, "--policy", badPolicy}, "--policy: " + badPolicy + ": line 2"},
	} {
		r := run(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "orchestrator.") || strings.Contains(r.stderr, "protocol.") {
			t.Errorf("%v: exit %d, %q; want exit 2 saying %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(devDir); err == nil {
		t.Error("dev made its data dir before reading its policy")
	}
}
