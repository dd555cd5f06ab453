package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	eqclient "github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// TestSecurityAssess seeds usage through the real system (tasks submitted
// by real clients, run by a real agent, audited by a real orchestrator)
// and crosses the thresholds one by one: 100 executions, then 10 active
// principals, call for enhanced, which the system runs at (exit 0); a
// second tenant calls for advanced, which it does not run at: exit 6,
// naming the missing controls with their fixes.
func TestSecurityAssess(t *testing.T) {
	dir, url := startTaskStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	assess := func(extra ...string) (assessment, result) {
		t.Helper()
		res := run(t, append([]string{"security", "assess", "--data-dir", dir, "--server", url, "--json"}, extra...)...)
		var a assessment
		if err := json.Unmarshal([]byte(res.stdout), &a); err != nil {
			t.Fatalf("assess --json: %v\nstdout %s\nstderr %s", err, res.stdout, res.stderr)
		}
		return a, res
	}
	submit := func(client string, n int) {
		t.Helper()
		cl, err := eqclient.Connect(ctx, url, filepath.Join(dir, "creds", "acme", client+".creds"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := range n {
			if _, err := cl.Submit(ctx, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	submitHi(t, url, filepath.Join(dir, "creds", "acme", "client.creds")) // the orchestrator is up

	a, res := assess()
	if res.code != 0 || a.Required.String() != "foundation" || a.RunningLevel != "enhanced" || a.Usage.Tenants != 1 || len(a.Triggers) != 0 {
		t.Fatalf("a fresh system: exit %d, %+v", res.code, a)
	}

	submit("client", 99)
	a, res = assess()
	if res.code != 0 || a.Required.String() != "enhanced" || a.Usage.Executions < 100 || !hasTrigger(a, "executions") {
		t.Fatalf("after 100 executions: exit %d, %+v", res.code, a)
	}

	for i := range 9 {
		name := fmt.Sprintf("user%d", i)
		run(t, "client", "create", name, "--tenant", "acme", "--data-dir", dir, "--server", url).ok(t)
		submit(name, 1)
	}
	a, _ = assess()
	// client, coder and nine users.
	if a.Usage.ActivePrincipals != 11 || !hasTrigger(a, "active_principals") {
		t.Fatalf("after 11 principals were active: %+v", a)
	}

	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("default:\n  capabilities:\n    code:\n      generates_code: true\n      gate: review\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a, _ = assess("--policy", policy); a.Usage.CodeGenerating != 1 || !hasTrigger(a, "code_generating_capabilities") {
		t.Fatalf("with a code-generating capability: %+v", a)
	}

	// A second tenant: advanced, which the system does not run at.
	run(t, "tenant", "create", "globex", "--data-dir", dir, "--server", url).ok(t)
	a, res = assess()
	if res.code != exitGate || a.Required.String() != "advanced" || a.Usage.Tenants != 2 || !hasTrigger(a, "tenants") {
		t.Fatalf("two tenants: exit %d, %+v", res.code, a)
	}
	var missing []string
	for _, m := range a.Missing {
		missing = append(missing, string(m.Control))
	}
	for _, want := range []string{"tls", "output-gate", "credential-max-age", "verify-every-hop"} {
		if !slices.Contains(missing, want) {
			t.Errorf("missing %v lacks %s", missing, want)
		}
	}
	if slices.Contains(missing, "monitoring") || slices.Contains(missing, "audit") {
		t.Errorf("missing %v names a planned control or one enhanced has", missing)
	}
	text := run(t, "security", "assess", "--data-dir", dir, "--server", url)
	if text.code != exitGate || !strings.Contains(text.stdout, "calls for:  advanced") || !strings.Contains(text.stdout, "tenants 2 >= 2") ||
		!strings.Contains(text.stdout, "fix: equilateral init --cluster N --tls") {
		t.Errorf("assess: exit %d\n%s\n%s", text.code, text.stdout, text.stderr)
	}
}

// TestSecurityAssessBeforeAnyOrchestrator: a tenant no orchestrator has
// served yet has no recorded level: the assessment says "none" (in JSON
// too) and exits 6.
func TestSecurityAssessBeforeAnyOrchestrator(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ := startServer(t, dir)
	run(t, "tenant", "create", "acme", "--data-dir", dir, "--server", url).ok(t)
	res := run(t, "security", "assess", "--json", "--data-dir", dir, "--server", url)
	var a assessment
	if err := json.Unmarshal([]byte(res.stdout), &a); err != nil || res.code != exitGate || a.RunningLevel != "none" ||
		!strings.Contains(res.stderr, "no orchestrator has recorded a level") {
		t.Fatalf("exit %d, %+v, %v\nstdout %s\nstderr %s", res.code, a, err, res.stdout, res.stderr)
	}
}

func hasTrigger(a assessment, metric string) bool {
	return slices.ContainsFunc(a.Triggers, func(tr security.Trigger) bool { return tr.Metric == metric })
}

// TestSecurityAssessWatch: --watch says when the level the usage calls for
// changes: foundation on a fresh system, advanced once a second tenant
// exists.
func TestSecurityAssessWatch(t *testing.T) {
	dir, url := startTaskStack(t)
	cmd := exec.Command(equilateralBinary(t), "security", "assess", "--watch", "--interval", "200ms", "--json", "--data-dir", dir, "--server", url)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// assessments are the JSON objects printed so far, waiting (boundedly)
	// for at least n.
	assessments := func(n int) []assessment {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			var got []assessment
			dec := json.NewDecoder(strings.NewReader(stdout.String()))
			for {
				var a assessment
				if dec.Decode(&a) != nil {
					break
				}
				got = append(got, a)
			}
			if len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, on stderr
				time.Sleep(time.Second)
				t.Fatalf("%d assessment(s) printed, want %d\nstdout %s\nstderr %s", len(got), n, stdout.String(), stderr.String())
			}
		}
	}
	if first := assessments(1)[0]; first.Required.String() != "foundation" {
		t.Fatalf("first: %+v", first)
	}
	run(t, "tenant", "create", "globex", "--data-dir", dir, "--server", url).ok(t)
	if second := assessments(2)[1]; second.Required.String() != "advanced" || !hasTrigger(second, "tenants") {
		t.Fatalf("after a second tenant: %+v", second)
	}
}
