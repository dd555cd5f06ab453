package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentRunExec runs the README's Python handler as an agent with
// `agent run --exec` against `dev`, sandboxed (the defaults, and the
// script allowed with --allow-read): the task completes with its result,
// the agent shows up in `agent list`, a bad input fails the task with the
// handler's message, and SIGTERM drains it cleanly.
func TestAgentRunExec(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed: the README handler is Python")
	}
	dir := t.TempDir()
	// The handler runs as nobody when the tests run as root: its script
	// must be readable by others, apart from the data dir.
	scriptDir := t.TempDir()
	for _, d := range []string{filepath.Dir(scriptDir), scriptDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(scriptDir, "shout.py")
	if err := os.WriteFile(script, []byte(readmePythonHandler(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	url := startDev(t, dir)
	env := []string{"NATS_URL=" + url, "NATS_CREDS=", "EQUILATERAL_DATA_DIR="}
	sh := func(command string) (string, error) {
		cmd := exec.Command("/bin/sh", "-c", command)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	bin := equilateralBinary(t)
	if out, err := sh(bin + " agent create shouter --data-dir eq-dev --tenant acme --capability shout"); err != nil {
		t.Fatalf("agent create: %v\n%s", err, out)
	}

	agent := exec.Command(bin, "agent", "run", "--creds", "eq-dev/creds/acme/shouter.creds", "--exec", "python3 "+script,
		"--allow-read", script, "--memory", "512MiB")
	agent.Dir = dir
	agent.Env = append(os.Environ(), env...)
	stderr, err := agent.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var logs strings.Builder
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		lines := bufio.NewScanner(stderr)
		once := false
		for lines.Scan() {
			logs.WriteString(lines.Text() + "\n")
			if !once && strings.Contains(lines.Text(), "taking shout") {
				close(started)
				once = true
			}
		}
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			agent.Process.Kill()
			agent.Wait()
		}
	})
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("agent run never started")
	}

	out, err := sh(bin + ` task submit --creds eq-dev/creds/acme/client.creds --capability shout --data '{"text": "hi there"}' --wait`)
	if err != nil || !strings.Contains(out, `{"text":"HI THERE"}`) {
		t.Fatalf("shout task: %v\n%s", err, out)
	}
	out, err = sh(bin + ` task submit --creds eq-dev/creds/acme/client.creds --capability shout --data '{}' --wait`)
	if err == nil || !strings.Contains(out, "no text") {
		t.Fatalf("a task the handler fails must fail with its message: %v\n%s", err, out)
	}
	out, err = sh(bin + " agent list --data-dir eq-dev --tenant acme")
	if err != nil || !strings.Contains(lineOf(out, "shouter"), "1 up") {
		t.Fatalf("agent list does not show shouter running: %v\n%s", err, out)
	}

	agent.Process.Signal(syscall.SIGTERM)
	defer func() {
		if !strings.Contains(logs.String(), `msg="handler sandbox" isolation="Landlock: reads the system paths and `+script) {
			t.Errorf("agent run did not log the handler sandbox:\n%s", logs.String())
		}
	}()
	waitErr := make(chan error, 1)
	go func() { <-logsDone; waitErr <- agent.Wait() }()
	select {
	case err := <-waitErr:
		stopped = true
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("agent run exited %v on SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent run did not stop on SIGTERM")
	}
}

// TestAgentRunRefusesSandboxItCannotProvide: `agent run --exec` exits
// non-zero, saying why, on sandbox flags it cannot honour, before it
// reads the creds.
func TestAgentRunRefusesSandboxItCannotProvide(t *testing.T) {
	base := []string{"agent", "run", "--creds", filepath.Join(t.TempDir(), "never-read.creds"), "--exec", "true"}
	tests := []struct {
		flags []string
		code  int
		says  string
	}{
		{[]string{"--network", "maybe"}, 2, `--network "maybe": want off or on`},
		{[]string{"--sandbox", "partly"}, 2, `--sandbox "partly": want on or off`},
		{[]string{"--sandbox", "off", "--allow-read", "/usr"}, 2, "--allow-read and --allow-write need --sandbox on"},
		{[]string{"--allow-write", "/no/such/dir"}, 1, "/no/such/dir"},
		{[]string{"--user", "no-such-user-here"}, 1, "no-such-user-here"},
	}
	for _, tt := range tests {
		r := run(t, append(base, tt.flags...)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.says) || strings.Contains(r.stderr, "never-read.creds") {
			t.Errorf("agent run %v: exit %d, %q; want exit %d saying %q", tt.flags, r.code, r.stderr, tt.code, tt.says)
		}
	}

	// An unprivileged agent cannot run handlers as another user.
	if os.Geteuid() != 0 {
		r := run(t, append(base, "--user", "0")...)
		if r.code != 1 || !strings.Contains(r.stderr, "sandbox not available: running handlers as 0 needs root") {
			t.Errorf("agent run --user 0 as uid %d: exit %d, %q", os.Geteuid(), r.code, r.stderr)
		}
		return
	}
	bin := filepath.Join(t.TempDir(), "equilateral")
	for _, d := range []string{filepath.Dir(filepath.Dir(bin)), filepath.Dir(bin)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyExecutable(t, equilateralBinary(t), bin)
	cmd := exec.Command(bin, append(base, "--user", "0")...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 64123, Gid: 64123, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "sandbox not available: running handlers as 0 needs root (the agent runs as uid 64123)") {
		t.Errorf("agent run --user 0 as uid 64123: %v, %s", err, out)
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// readmePythonHandler is the ```python block of the README that holds
// shout.py.
func readmePythonHandler(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(readme), "```python\n")[1:] {
		code, _, _ := strings.Cut(block, "```")
		if strings.HasPrefix(code, "# shout.py") {
			return code
		}
	}
	t.Fatal("README.md has no ```python block starting with # shout.py")
	return ""
}

func lineOf(text, word string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, word) {
			return line
		}
	}
	return ""
}
