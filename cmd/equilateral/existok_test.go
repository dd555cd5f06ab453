package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExistOK: set-up commands run a second time with --exist-ok succeed
// and leave what exists as it is (a compose file's one-shot services run
// again on the same volume); without it they fail, and --exist-ok never
// takes a directory that is not a data dir for one.
func TestExistOK(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	operator, err := os.ReadFile(filepath.Join(dir, "operator", "operator.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	again := run(t, "init", "--data-dir", dir, "--exist-ok")
	if again.code != 0 || !strings.Contains(again.stderr, "exists; left as it is") {
		t.Fatalf("init --exist-ok on a data dir: exit %d, %s", again.code, again.stderr)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "operator", "operator.jwt")); string(now) != string(operator) {
		t.Fatal("init --exist-ok changed the operator")
	}
	if res := run(t, "init", "--data-dir", dir); res.code == 0 {
		t.Fatal("init without --exist-ok took an existing data dir")
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o600)
	if res := run(t, "init", "--data-dir", other, "--exist-ok"); res.code == 0 {
		t.Fatal("init --exist-ok took a directory that is not a data dir")
	}

	run(t, "tenant", "create", "acme", "--data-dir", dir, "--offline").ok(t)
	if res := run(t, "tenant", "create", "acme", "--data-dir", dir, "--offline", "--exist-ok"); res.code != 0 || !strings.Contains(res.stderr, "tenant acme exists") {
		t.Fatalf("tenant create --exist-ok: exit %d, %s", res.code, res.stderr)
	}
	run(t, "agent", "create", "coder", "--data-dir", dir, "--tenant", "acme", "--capability", "code").ok(t)
	creds, _ := os.ReadFile(filepath.Join(dir, "creds", "acme", "coder.creds"))
	if res := run(t, "agent", "create", "coder", "--data-dir", dir, "--tenant", "acme", "--capability", "code", "--exist-ok"); res.code != 0 || !strings.Contains(res.stderr, "coder in tenant acme exists") {
		t.Fatalf("agent create --exist-ok: exit %d, %s", res.code, res.stderr)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "creds", "acme", "coder.creds")); string(now) != string(creds) {
		t.Fatal("agent create --exist-ok replaced the creds")
	}
	if res := run(t, "agent", "create", "coder", "--data-dir", dir, "--tenant", "acme", "--capability", "code"); res.code == 0 {
		t.Fatal("agent create without --exist-ok took an existing agent")
	}
}
