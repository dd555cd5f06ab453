package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestClusterThreeProcesses: `init --cluster 3` and three `server --node K`
// processes on loopback form a JetStream cluster; with the orchestrator on
// node 1, an agent on node 2 and a client on node 3, a task completes.
func TestClusterThreeProcesses(t *testing.T) {
	clusterScenario(t, false)
}

// TestClusterThreeProcessesTLS: the same with --tls, at the advanced level
// in production (whose gate the orchestrator passes); every command passes
// --tls-ca, and a plaintext connection is refused.
func TestClusterThreeProcessesTLS(t *testing.T) {
	clusterScenario(t, true)
}

func clusterScenario(t *testing.T, useTLS bool) {
	dir := filepath.Join(t.TempDir(), "eq")
	base := natstest.FreePortRun(t, 6)
	args := []string{"init", "--data-dir", dir, "--cluster", "3",
		"--base-port", strconv.Itoa(base), "--base-route-port", strconv.Itoa(base + 3)}
	if useTLS {
		// TLS everywhere is what production's level, advanced, needs: the
		// orchestrator passes its gate there (creds that expire, MFA,
		// encryption at rest, TLS) and serves.
		args = append(args, "--tls", "--security-level", "advanced", "--environment", "production")
	}
	out := run(t, args...).ok(t).stdout
	var ca []string // --tls-ca CA, for every command that connects
	var caOpts []nats.Option
	if useTLS {
		caFile := filepath.Join(dir, "tls", "ca.pem")
		if !strings.Contains(out, "--tls-ca "+caFile) {
			t.Fatalf("init does not name the CA for clients:\n%s", out)
		}
		ca = []string{"--tls-ca", caFile}
		caOpts = []nats.Option{nats.RootCAs(caFile)}
	}

	urls := make([]string, 3)
	for k := 1; k <= 3; k++ {
		urls[k-1] = startNode(t, dir, k)
		if want := fmt.Sprintf("127.0.0.1:%d", base+k-1); !strings.HasSuffix(urls[k-1], want) {
			t.Fatalf("node %d ready on %s, want port %s", k, urls[k-1], want)
		}
	}
	waitMetaLeader(t, urls[0], filepath.Join(dir, "system", "admin.creds"), caOpts)

	admin := func(args ...string) result {
		return run(t, append(append(args, "--data-dir", dir), ca...)...).ok(t)
	}
	admin("tenant", "create", "acme", "--server", urls[0])
	admin("agent", "create", "coder", "--tenant", "acme", "--capability", "code")
	admin("client", "create", "client", "--tenant", "acme")

	enrollTestAdmin(t, dir) // the enhanced level's gate needs MFA
	orch := exec.Command(equilateralBinary(t), append([]string{"orchestrator", "--data-dir", dir, "--server", urls[0]}, ca...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "NATS_") && !strings.HasPrefix(kv, "SSL_CERT_") {
			orch.Env = append(orch.Env, kv)
		}
	}
	var orchErr lockedBuffer
	orch.Stderr = &orchErr
	if err := orch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { orch.Process.Kill(); orch.Wait() })

	// The echo agent on node 2.
	agentCreds := filepath.Join(dir, "creds", "acme", "coder.creds")
	nc, err := nats.Connect(urls[1], append([]nats.Option{nats.UserCredentials(agentCreds),
		nats.CustomInboxPrefix(protocol.InboxPrefix("coder"))}, caOpts...)...)
	if err != nil {
		t.Fatalf("agent on node 2: %v", err)
	}
	t.Cleanup(nc.Close)
	store, err := auth.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(store)
	if err != nil {
		t.Fatal(err)
	}
	agenttest.Echo(t, nc, keys, agentCreds, "acme", "coder", "code")

	// The client on node 3.
	clientCreds := filepath.Join(dir, "creds", "acme", "client.creds")
	submit := append([]string{"task", "submit", "--creds", clientCreds, "--server", urls[2],
		"--capability", "code", "--data", `"hi"`, "--wait", "--timeout", "10s"}, ca...)
	var res result
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		res = run(t, submit...)
		if res.code == 0 || time.Now().After(deadline) || !strings.Contains(res.stderr, "no orchestrator") {
			break
		}
	}
	if res.code != 0 || strings.TrimSpace(res.stdout) != `{"echo":"hi"}` {
		t.Fatalf("submit on node 3: exit %d\nstdout %s\nstderr %s\norchestrator: %s", res.code, res.stdout, res.stderr, orchErr.String())
	}
	if useTLS && !strings.Contains(orchErr.String(), "at security level advanced (production)") {
		t.Errorf("the orchestrator does not run at advanced in production:\n%s", orchErr.String())
	}
	if !useTLS {
		// The control for the TLS case: the hand-made client gets in.
		if _, pong, err := natstest.PlaintextConnect(urls[2], clientCreds); err != nil || !pong {
			t.Fatalf("plaintext client on node 3 without TLS: PONG %v, %v", pong, err)
		}
		return
	}

	// Without the CA, the client cannot verify the servers.
	noCA := run(t, submit[:len(submit)-2]...)
	if noCA.code == 0 || !strings.Contains(noCA.stderr, "certificate") {
		t.Errorf("submit without --tls-ca: exit %d, stderr %s", noCA.code, noCA.stderr)
	}
	// A plaintext client with good creds is refused.
	for k, u := range urls {
		info, pong, err := natstest.PlaintextConnect(u, clientCreds)
		if err != nil {
			t.Fatalf("node %d: %v", k+1, err)
		}
		if pong || !strings.Contains(info, `"tls_required":true`) {
			t.Errorf("node %d let a plaintext client in (PONG %v): %s", k+1, pong, info)
		}
	}
}

// startNode runs `equilateral server --node k` and returns its URL from
// the ready line; it is stopped with SIGTERM when the test ends.
func startNode(t *testing.T, dir string, k int) string {
	t.Helper()
	cmd := exec.Command(equilateralBinary(t), "server", "--data-dir", dir, "--node", strconv.Itoa(k))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if url, ok := strings.CutPrefix(lines.Text(), "ready: "); ok {
				ready <- url
			}
		}
	}()
	select {
	case url := <-ready:
		return url
	case <-time.After(20 * time.Second):
		t.Fatalf("node %d not ready; stderr: %s", k, stderr.String())
		return ""
	}
}

// waitMetaLeader polls, as the system account's admin, until the
// JetStream cluster of three has elected its meta leader.
func waitMetaLeader(t *testing.T, url, sysCreds string, opts []nats.Option) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.UserCredentials(sysCreds)}, opts...)...)
	if err != nil {
		t.Fatalf("system account on %s: %v", url, err)
	}
	defer nc.Close()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		msg, err := nc.Request("$SYS.REQ.SERVER.PING.JSZ", nil, 2*time.Second)
		if err != nil {
			last = err.Error()
			continue
		}
		last = string(msg.Data)
		var jsz struct {
			Data struct {
				Meta *struct {
					Leader      string `json:"leader"`
					ClusterSize int    `json:"cluster_size"`
				} `json:"meta_cluster"`
			} `json:"data"`
		}
		if json.Unmarshal(msg.Data, &jsz) == nil && jsz.Data.Meta != nil && jsz.Data.Meta.Leader != "" && jsz.Data.Meta.ClusterSize == 3 {
			return
		}
	}
	t.Fatalf("no JetStream meta leader of 3 nodes; last answer: %s", last)
}

// lockedBuffer is a bytes.Buffer a child process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTLSCAFlagEverywhere: every command that connects to NATS (has
// --server) takes --tls-ca with one help text naming NATS_CA; init's
// --tls-ca, which names the operator's own CA, is the one exception.
func TestTLSCAFlagEverywhere(t *testing.T) {
	var usage string
	for path, cmd := range leaves(newRootCommand()) {
		if cmd.Flags().Lookup("server") == nil || path == "equilateral health" {
			continue
		}
		f := cmd.Flags().Lookup("tls-ca")
		if f == nil {
			t.Errorf("%s has --server but no --tls-ca", path)
			continue
		}
		if !strings.Contains(f.Usage, "(env "+envCA+")") {
			t.Errorf("%s --tls-ca: help %q does not name %s", path, f.Usage, envCA)
		}
		if usage != "" && usage != f.Usage {
			t.Errorf("%s --tls-ca: help %q differs from another command's %q", path, f.Usage, usage)
		}
		usage = f.Usage
	}
	if usage == "" {
		t.Fatal("no command has --tls-ca")
	}
}
