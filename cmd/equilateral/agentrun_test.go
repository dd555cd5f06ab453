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
// `agent run --exec` against `dev`: the task completes with its result,
// the agent shows up in `agent list`, a bad input fails the task with the
// handler's message, and SIGTERM drains it cleanly.
func TestAgentRunExec(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed: the README handler is Python")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shout.py"), []byte(readmePythonHandler(t)), 0o644); err != nil {
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
	if out, err := sh(bin + " agent create --data-dir eq-dev --tenant acme --name shouter --capability shout"); err != nil {
		t.Fatalf("agent create: %v\n%s", err, out)
	}

	agent := exec.Command(bin, "agent", "run", "--creds", "eq-dev/creds/acme/shouter.creds", "--exec", "python3 "+filepath.Join(dir, "shout.py"), "--memory", "512MiB")
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
