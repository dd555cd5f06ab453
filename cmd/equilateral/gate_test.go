package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/security"
)

// enrollTestAdmin enrolls an admin in dir (the MFA that the enhanced
// level's gate needs) and opens an admin session with a code of its
// secret, so the test's later admin commands run without one.
func enrollTestAdmin(t *testing.T, dir string) {
	t.Helper()
	out := run(t, "admin", "enroll", "tester", "--data-dir", dir, "--json").ok(t)
	var e struct {
		URI string `json:"uri"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &e); err != nil {
		t.Fatalf("admin enroll --json: %v: %s", err, out.stdout)
	}
	u, err := url.Parse(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCodeCustom(u.Query().Get("secret"), time.Now(),
		totp.ValidateOpts{Period: mfa.Period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "admin", "session", "--data-dir", dir, "--otp", code, "--for", "1h").ok(t)
}

// TestOrchestratorGate: the orchestrator refuses to start below its
// environment's gate, or with a control of its level off, naming each
// missing control with its fix, and exits 6; at the right level with its
// controls on, it serves.
func TestOrchestratorGate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ := startServer(t, dir)
	run(t, "tenant", "create", "acme", "--data-dir", dir, "--server", url).ok(t)
	orchestrator := func(args ...string) result {
		return run(t, append([]string{"orchestrator", "--data-dir", dir, "--server", url}, args...)...)
	}
	refused := func(res result, says ...string) {
		t.Helper()
		if res.code != exitGate {
			t.Fatalf("exit %d, want %d (the gate)\nstdout %s\nstderr %s", res.code, exitGate, res.stdout, res.stderr)
		}
		for _, s := range says {
			if !strings.Contains(res.stderr, s) {
				t.Errorf("the refusal does not say %q:\n%s", s, res.stderr)
			}
		}
	}

	// Below the development gate.
	refused(orchestrator("--security-level", "foundation"), "security gate: foundation in development (gate enhanced)", "fix: --security-level enhanced")
	// Enhanced, without an admin enrolled.
	refused(orchestrator(), "admin-mfa", "no admin is enrolled", "fix: enroll an admin: equilateral admin enroll NAME")
	enrollTestAdmin(t, dir)
	// Advanced over a server that takes plaintext, with a code-generating
	// capability without a gate and creds that never expire.
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("default:\n  capabilities:\n    code:\n      generates_code: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused(orchestrator("--security-level", "advanced", "--environment", "production", "--policy", policy),
		"tls: TLS on every connection: these servers take plaintext clients: nats://127.0.0.1",
		"output-gate", "code (default)", "credential-max-age")
	// Production refuses enhanced; enterprise refuses advanced.
	refused(orchestrator("--environment", "production"), "(gate advanced)", "fix: --security-level advanced")
	refused(orchestrator("--environment", "enterprise", "--security-level", "advanced"), "(gate enterprise)", "fix: --security-level enterprise")

	// At enhanced in development, with MFA enrolled and the data dir's
	// encrypted server: it starts, and says its level. The controls of
	// advanced are off: the server takes plaintext, the code-generating
	// capability has no gate, the creds never expire.
	cmd := exec.Command(equilateralBinary(t), "orchestrator", "--data-dir", dir, "--server", url, "--policy", policy)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stderr.String(), "orchestrator serving"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the orchestrator did not start:\n%s", stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "at security level enhanced (development)") {
		t.Errorf("the orchestrator does not say its level:\n%s", stderr.String())
	}

	// A client or an agent that requires more refuses it; one that
	// requires what it runs at works with it.
	run(t, "client", "create", "client", "--tenant", "acme", "--data-dir", dir).ok(t)
	run(t, "agent", "create", "coder", "--tenant", "acme", "--capability", "code", "--data-dir", dir).ok(t)
	clientCreds := filepath.Join(dir, "creds", "acme", "client.creds")
	var list result
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		list = run(t, "task", "list", "--creds", clientCreds, "--server", url, "--min-security-level", "enhanced")
		if list.code == 0 || time.Now().After(deadline) || !strings.Contains(list.stderr, "no orchestrator") {
			break
		}
	}
	if list.code != 0 {
		t.Errorf("task list requiring enhanced: exit %d, %s", list.code, list.stderr)
	}
	if res := run(t, "task", "list", "--creds", clientCreds, "--server", url, "--min-security-level", "advanced"); res.code == 0 ||
		!strings.Contains(res.stderr, "security level is below the required level: it runs at enhanced, advanced is required") {
		t.Errorf("task list requiring advanced: exit %d, %s", res.code, res.stderr)
	}
	agentRun := run(t, "agent", "run", "--creds", filepath.Join(dir, "creds", "acme", "coder.creds"), "--server", url, "--min-security-level", "enterprise")
	if agentRun.code == 0 || !strings.Contains(agentRun.stderr, "it runs at enhanced, enterprise is required") {
		t.Errorf("agent run requiring enterprise: exit %d, %s", agentRun.code, agentRun.stderr)
	}
	if res := run(t, "task", "list", "--creds", clientCreds, "--server", url, "--min-security-level", "paranoid"); res.code != 2 {
		t.Errorf("--min-security-level paranoid: exit %d, %s", res.code, res.stderr)
	}
}

// TestAgentRotateOrchestrator: at advanced the tenant's orchestrator user
// expires like every principal; `agent rotate orchestrator` renews it (a
// later expiry, printed), and the old creds no longer connect.
func TestAgentRotateOrchestrator(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir, "--security-level", "advanced", "--environment", "production").ok(t)
	url, _ := startServer(t, dir)
	run(t, "tenant", "create", "acme", "--data-dir", dir, "--server", url).ok(t)
	credsFile := filepath.Join(dir, "creds", "acme", "orchestrator.creds")
	old, err := os.ReadFile(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	oldCopy := filepath.Join(t.TempDir(), "old.creds")
	if err := os.WriteFile(oldCopy, old, 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, "agent", "rotate", "orchestrator", "--tenant", "acme", "--data-dir", dir, "--server", url).ok(t)
	if !strings.Contains(res.stdout, "orchestrator orchestrator rotated in tenant acme") || !strings.Contains(res.stdout, "expires ") {
		t.Errorf("rotate orchestrator said:\n%s", res.stdout)
	}
	if _, err := nats.Connect(url, nats.UserCredentials(oldCopy)); err == nil {
		t.Error("the old orchestrator creds still connect")
	}
	nc, err := nats.Connect(url, nats.UserCredentials(credsFile))
	if err != nil {
		t.Fatalf("the new orchestrator creds: %v", err)
	}
	nc.Close()
	// Another agent's name is still checked for its role.
	if res := run(t, "client", "rotate", "orchestrator", "--tenant", "acme", "--data-dir", dir, "--server", url); res.code == 0 {
		t.Error("client rotate renewed the orchestrator")
	}
}

// TestExpiredCredsSaySo: creds past their maximum age are refused by the
// server, and the CLI says they expired and how to renew them, not that
// NATS cannot be reached.
func TestExpiredCredsSaySo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir, "--security-level", "advanced", "--environment", "production").ok(t)
	url, _ := startServer(t, dir)
	run(t, "tenant", "create", "acme", "--data-dir", dir, "--server", url).ok(t)
	if err := security.WriteSettings(dir, security.Settings{Level: security.Advanced, Environment: security.Production, MaxCredentialAge: security.Duration(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	run(t, "client", "create", "client", "--tenant", "acme", "--data-dir", dir, "--server", url).ok(t)
	time.Sleep(3 * time.Second) // past the creds' expiry
	res := run(t, "task", "list", "--creds", filepath.Join(dir, "creds", "acme", "client.creds"), "--server", url)
	if res.code == 0 || !strings.Contains(res.stderr, "client client in tenant acme") || !strings.Contains(res.stderr, "expired at") ||
		!strings.Contains(res.stderr, "equilateral client rotate client") || strings.Contains(res.stderr, "cannot reach NATS") {
		t.Errorf("expired creds: exit %d, %s", res.code, res.stderr)
	}
}

// TestLoweringInProductionNeedsAnAdmin: a tenant that last ran at advanced
// in production may not be served at enhanced on an operator's flag alone;
// once an admin records enhanced (security set-level, with MFA), it may.
func TestLoweringInProductionNeedsAnAdmin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir, "--security-level", "advanced", "--environment", "production").ok(t)
	url, _ := startServer(t, dir)
	run(t, "tenant", "create", "acme", "--data-dir", dir, "--server", url).ok(t)
	enrollTestAdmin(t, dir)
	store, err := auth.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}

	// The tenant runs at advanced for a while (its level is recorded).
	advanced := security.Settings{Level: security.Advanced, Environment: security.Production}
	o, err := orchestrator.New(url, store, orchestrator.WithSecurity(advanced))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	for deadline := time.Now().Add(20 * time.Second); !o.Ready(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the orchestrator did not start")
		}
	}
	cancel()
	<-done

	lower := gateInputs{settings: security.Settings{Level: security.Enhanced, Environment: security.Production}, servers: []string{url}, dataDir: dir, identities: store}
	recorded, _, err := recordedSettings(dir, store)
	if err != nil {
		t.Fatal(err)
	}
	err = checkLowering(context.Background(), lower, recorded)
	var gate *security.GateError
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "tenant acme ran at advanced; lowering it in production needs an admin") ||
		!strings.Contains(err.Error(), "equilateral security set-level enhanced") {
		t.Fatalf("lowering on a flag: %v", err)
	}
	// Raising, or the same level, needs nobody.
	if err := checkLowering(context.Background(), gateInputs{settings: advanced, servers: []string{url}, dataDir: dir, identities: store}, recorded); err != nil {
		t.Errorf("the same level: %v", err)
	}

	// A wrong code does not approve it (a code given is checked even while
	// the admin's session is open); the admin's session does.
	if res := run(t, "security", "set-level", "enhanced", "--data-dir", dir, "--server", url, "--otp", "12345x"); res.code == 0 {
		t.Fatalf("set-level with a wrong code: %s", res.stdout)
	}
	if s, _ := security.ReadSettings(dir); s.Level != security.Advanced {
		t.Fatalf("a refused set-level changed the settings to %+v", s)
	}
	res := run(t, "security", "set-level", "enhanced", "--data-dir", dir, "--server", url).ok(t)
	if !strings.Contains(res.stdout, "security level enhanced in production recorded (was advanced in production)") {
		t.Errorf("set-level said: %s", res.stdout)
	}
	if !strings.Contains(res.stderr, "below the production gate (advanced)") {
		t.Errorf("set-level below the gate did not warn: %s", res.stderr)
	}
	recorded, _, _ = recordedSettings(dir, store)
	if err := checkLowering(context.Background(), lower, recorded); err != nil {
		t.Errorf("lowering after the admin recorded it: %v", err)
	}
}
