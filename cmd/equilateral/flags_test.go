package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// leaves are the runnable commands of the binary, by path.
func leaves(cmd *cobra.Command) map[string]*cobra.Command {
	out := map[string]*cobra.Command{}
	for _, c := range cmd.Commands() {
		if c.Runnable() {
			out[c.CommandPath()] = c
		}
		for path, leaf := range leaves(c) {
			out[path] = leaf
		}
	}
	return out
}

// TestConnectionFlagsMeanTheSameEverywhere: --server, --creds and
// --data-dir have one help text, naming their environment variable, in
// every command that has them; every admin command takes --data-dir and
// --server; a command about a named thing takes its NAME as the argument,
// with --name only as a hidden alias.
func TestConnectionFlagsMeanTheSameEverywhere(t *testing.T) {
	commands := leaves(newRootCommand())
	env := map[string]string{"server": envServer, "creds": envCreds, "data-dir": envDataDir}
	usage := map[string]string{}
	for path, cmd := range commands {
		for flag, variable := range env {
			f := cmd.Flags().Lookup(flag)
			if f == nil {
				continue
			}
			if !strings.Contains(f.Usage, "(env "+variable+")") {
				t.Errorf("%s --%s: help %q does not name %s", path, flag, f.Usage, variable)
			}
			if flag == "data-dir" && path == "equilateral dev" {
				continue // the same help; only its default differs (./eq-dev)
			}
			if prev, ok := usage[flag]; ok && prev != f.Usage+"|"+f.DefValue {
				t.Errorf("%s --%s: help and default %q differ from another command's %q", path, flag, f.Usage+"|"+f.DefValue, prev)
			}
			usage[flag] = f.Usage + "|" + f.DefValue
		}
	}
	if len(usage) != 3 {
		t.Fatalf("found the flags %v; want server, creds and data-dir", usage)
	}

	for path, cmd := range commands {
		noun := strings.Fields(path)[1]
		if noun != "tenant" && noun != "agent" && noun != "client" && noun != "audit" {
			continue
		}
		for _, flag := range []string{"data-dir", "server"} {
			if path != "equilateral agent run" && cmd.Flags().Lookup(flag) == nil {
				t.Errorf("admin command %s has no --%s", path, flag)
			}
		}
		verb := path[strings.LastIndex(path, " ")+1:]
		named := verb == "create" || verb == "delete" || verb == "revoke" || verb == "rotate" || verb == "run"
		if !named {
			continue
		}
		if !strings.Contains(cmd.Use, "NAME") {
			t.Errorf("%s: usage %q does not take NAME", path, cmd.Use)
		}
		if f := cmd.Flags().Lookup("name"); f == nil || !f.Hidden || f.Deprecated == "" {
			t.Errorf("%s: --name is not a hidden, deprecated alias: %+v", path, f)
		}
	}
}

// TestNameArg: the name is the argument, or --name; both the same is
// fine, both different or neither is a usage error.
func TestNameArg(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		flag     string
		optional bool
		want     string
		err      string
	}{
		{args: []string{"coder"}, want: "coder"},
		{flag: "coder", want: "coder"},
		{args: []string{"coder"}, flag: "coder", want: "coder"},
		{args: []string{"coder"}, flag: "planner", err: `agent NAME "coder" and --name "planner" differ`},
		{err: "want the agent NAME"},
		{optional: true, want: ""},
		{args: []string{"a", "b"}, err: "want one agent NAME, got 2 arguments"},
	} {
		n := nameArg{what: "agent", optional: tc.optional, flag: tc.flag}
		got, err := n.value(tc.args)
		var usage usageError
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%v --name %q: %q, %v; want %q", tc.args, tc.flag, got, err, tc.want)
		case tc.err != "" && (!errors.As(err, &usage) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v --name %q: %v; want a usage error saying %q", tc.args, tc.flag, err, tc.err)
		}
	}
}

// TestCLINamesAndEnvironment runs the binary: old scripts' --name still
// works (saying it is deprecated, on stderr only), a name given twice
// differently is refused with exit 2, and NATS_URL, NATS_CREDS and
// EQUILATERAL_DATA_DIR stand in for their flags.
func TestCLINamesAndEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	url, _ := startServer(t, dir)
	withEnv := func(env []string, args ...string) result {
		t.Helper()
		cmd := exec.Command(equilateralBinary(t), args...)
		cmd.Env = append(os.Environ(), append([]string{"NATS_URL=", "NATS_CREDS=", "EQUILATERAL_DATA_DIR="}, env...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		code := 0
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{stdout.String(), stderr.String(), code}
	}
	fromEnv := []string{"NATS_URL=" + url, "EQUILATERAL_DATA_DIR=" + dir}

	// The data dir and the server from the environment alone.
	withEnv(fromEnv, "tenant", "create", "acme").ok(t)

	old := withEnv(fromEnv, "agent", "create", "--tenant", "acme", "--name", "coder", "--capability", "code", "--json").ok(t)
	var created struct {
		Name      string `json:"name"`
		CredsFile string `json:"creds_file"`
	}
	if err := json.Unmarshal([]byte(old.stdout), &created); err != nil || created.Name != "coder" {
		t.Fatalf("agent create --name --json: %v\nstdout %s", err, old.stdout)
	}
	if !strings.Contains(old.stderr, "deprecated") {
		t.Errorf("--name works without a word that it is deprecated: %q", old.stderr)
	}
	withEnv(fromEnv, "client", "create", "client", "--tenant", "acme", "--name", "client").ok(t)

	for _, args := range [][]string{
		{"agent", "create", "planner", "--tenant", "acme", "--name", "plan", "--capability", "plan"},
		{"client", "create", "--tenant", "acme"},
		{"agent", "revoke", "coder", "client", "--tenant", "acme"},
		{"tenant", "delete"},
	} {
		if r := withEnv(fromEnv, args...); r.code != 2 || !strings.Contains(r.stderr, "NAME") {
			t.Errorf("%v: exit %d, %q; want a usage error about NAME", args, r.code, r.stderr)
		}
	}

	// The server and the creds from the environment: the task commands
	// reach the server (no orchestrator runs, which they say).
	clientCreds := filepath.Join(dir, "creds", "acme", "client.creds")
	r := withEnv([]string{"NATS_URL=" + url, "NATS_CREDS=" + clientCreds}, "task", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "no orchestrator is serving this tenant") {
		t.Errorf("task list from NATS_URL and NATS_CREDS: exit %d, %q", r.code, r.stderr)
	}
	// With EQUILATERAL_DATA_DIR too, creds of another data dir are refused.
	other := filepath.Join(t.TempDir(), "other")
	run(t, "init", "--data-dir", other).ok(t)
	r = withEnv([]string{"NATS_URL=" + url, "NATS_CREDS=" + clientCreds, "EQUILATERAL_DATA_DIR=" + other}, "task", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "belong to no tenant of "+other) {
		t.Errorf("task list with another data dir: exit %d, %q", r.code, r.stderr)
	}

	help := withEnv(nil, "agent", "revoke", "--help").ok(t).stdout
	for _, want := range []string{"revoke NAME", "--server", "env NATS_URL", "--data-dir", "env EQUILATERAL_DATA_DIR", "--offline"} {
		if !strings.Contains(help, want) {
			t.Errorf("agent revoke --help does not say %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "--name") {
		t.Errorf("agent revoke --help shows the deprecated --name:\n%s", help)
	}
}
