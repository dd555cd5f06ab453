package subprocess_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
)

// The test binary is also the exec shim and, with a first argument of
// "test-handler-<mode>", a handler. Modes come by argv: the environment is
// scrubbed.
func TestMain(m *testing.M) {
	subprocess.RunShimIfRequested()
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], handlerPrefix) {
		os.Exit(testHandler(strings.TrimPrefix(os.Args[1], handlerPrefix), os.Args[2:]))
	}
	// Like `agent run`; TestProtectAgentHidesEnvironWithoutSandbox runs
	// a copy without it to show what it prevents.
	if os.Getenv(unprotectedEnv) == "" {
		if err := subprocess.ProtectAgent(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	for _, f := range afterTests {
		f()
	}
	os.Exit(code)
}

const handlerPrefix = "test-handler-"

// afterTests run once all tests are done, before TestMain exits.
var afterTests []func()

// unprotectedEnv keeps TestMain from calling ProtectAgent.
const unprotectedEnv = "EQ_SANDBOX_TEST_UNPROTECTED"

// handlerArgv runs this test binary as a handler in the given mode.
func handlerArgv(t testing.TB, mode string, args ...string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{exe, handlerPrefix + mode}, args...)
}

// inspection is what the "inspect" handler reports.
type inspection struct {
	Stdin   map[string]json.RawMessage `json:"stdin"`
	Env     map[string]string          `json:"env"`
	Cwd     string                     `json:"cwd"`
	CwdMode uint32                     `json:"cwd_mode"`
}

// limitsReport is what the "limits" handler reports: its own rlimits.
type limitsReport struct {
	CPU, NoFile, NProc [2]uint64 // soft, hard
}

func testHandler(mode string, args []string) int {
	switch mode {
	case "inspect":
		stdin, err := io.ReadAll(os.Stdin)
		if err != nil {
			return 1
		}
		var in inspection
		if err := json.Unmarshal(stdin, &in.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "stdin is not a JSON object:", err)
			return 1
		}
		in.Env = map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			in.Env[k] = v
		}
		in.Cwd, _ = os.Getwd()
		if fi, err := os.Stat(in.Cwd); err == nil {
			in.CwdMode = uint32(fi.Mode().Perm())
		}
		return writeJSON(in)
	case "progress":
		for _, line := range []string{
			"step one",
			`partial {"n":1}`,
			"",
			"partial not json",
			"step two\r",
			`partial   {"n": 2}  `,
		} {
			fmt.Fprintln(os.Stderr, line)
		}
		return writeJSON(map[string]bool{"ok": true})
	case "fail":
		fmt.Fprintln(os.Stderr, "starting")
		fmt.Fprintln(os.Stderr, "boom \x1b[31mred\x07\x00 "+strings.Repeat("y", 5000))
		return 3
	case "limits":
		var rep limitsReport
		for _, l := range []struct {
			resource int
			into     *[2]uint64
		}{{unix.RLIMIT_CPU, &rep.CPU}, {unix.RLIMIT_NOFILE, &rep.NoFile}, {unix.RLIMIT_NPROC, &rep.NProc}} {
			var rl unix.Rlimit
			if err := unix.Getrlimit(l.resource, &rl); err != nil {
				return 1
			}
			*l.into = [2]uint64{rl.Cur, rl.Max}
		}
		return writeJSON(rep)
	case "open-files":
		n, _ := strconv.Atoi(args[0])
		opened, msg := 0, ""
		for range n {
			f, err := os.Open(os.DevNull)
			if err != nil {
				msg = err.Error()
				break
			}
			defer f.Close()
			opened++
		}
		return writeJSON(map[string]any{"opened": opened, "error": msg})
	}
	fmt.Fprintln(os.Stderr, "unknown test handler mode", mode)
	return 2
}

func writeJSON(v any) int {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		return 1
	}
	return 0
}

// newRunner makes a Runner with per-test temp root and a short timeout,
// sandboxed (withSandbox) unless opts say otherwise.
func newRunner(t testing.TB, argv []string, opts ...subprocess.Option) *subprocess.Runner {
	t.Helper()
	opts = append([]subprocess.Option{
		subprocess.WithTempRoot(t.TempDir()),
		subprocess.WithTimeout(time.Minute),
		withSandbox(subprocess.Sandbox{}),
	}, opts...)
	r, err := subprocess.New(argv, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", argv, err)
	}
	return r
}

// withSandbox is s for tests of the handler protocol: when the tests run
// as root and s names no user, handlers run as root (without
// capabilities), as the test binary (a handler too) and the per-test temp
// roots are reachable only by root. The sandbox attack tests choose
// their users themselves.
func withSandbox(s subprocess.Sandbox) subprocess.Option {
	if s.User == "" && os.Geteuid() == 0 {
		s.User = "root"
	}
	return subprocess.WithSandbox(s)
}

// sh runs a shell script as the handler.
func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func testTask() subprocess.Task {
	return subprocess.Task{
		ID:         "task-1",
		Attempt:    2,
		Capability: "echo",
		Deadline:   time.Now().Add(time.Hour),
		Input:      json.RawMessage(`{"text":"hello"}`),
	}
}

// runError runs t and requires it to fail with an *Error of kind.
func runError(t *testing.T, r *subprocess.Runner, kind subprocess.ErrorKind) *subprocess.Error {
	t.Helper()
	out, err := r.Run(t.Context(), testTask(), nil)
	var e *subprocess.Error
	if !errors.As(err, &e) {
		t.Fatalf("Run = %s, %v; want a *subprocess.Error", out, err)
	}
	if e.Kind != kind {
		t.Fatalf("Run error kind %q (%v); want %q", e.Kind, e, kind)
	}
	return e
}

// pythonPath is the real python3 interpreter (not a version manager's
// shim, which needs an environment the handler does not get), preferably
// the system's, which the sandbox lets handlers run; the test is skipped
// without one.
func pythonPath(t testing.TB) string {
	t.Helper()
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		if path := filepath.Join(dir, "python3"); exec.Command(path, "-c", "").Run() == nil {
			return path
		}
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Skipf("python3 does not run: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// newMarker is a sleep duration (in seconds, over 15 minutes) unique
// enough to find the process sleeping it: `sleep <marker>`.
func newMarker() string {
	return fmt.Sprintf("1000.%09d", rand.Int32N(1e9))
}

// markedProcesses are the live processes (zombies do not count: they run
// nothing) with marker among their arguments, seen from this test's PID
// namespace, whichever namespace they are in.
func markedProcesses(marker string) []int {
	return livePIDs(func(args []string) bool { return slices.Contains(args, marker) })
}

// livePIDs are the live (not zombie) processes whose arguments match.
func livePIDs(match func(args []string) bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !match(strings.Split(string(cmdline), "\x00")) {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if _, rest, _ := strings.Cut(string(stat), ") "); !strings.HasPrefix(rest, "Z") {
			pids = append(pids, pid)
		}
	}
	return pids
}
