package subprocess_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
)

func TestShellHandler(t *testing.T) {
	r := newRunner(t, []string{"testdata/handler.sh"}) // relative: made absolute by New
	var updates []subprocess.Update
	out, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) { updates = append(updates, u) })
	if err != nil {
		t.Fatal(err)
	}
	// The handler counts the bytes of its stdin (without the final newline).
	stdin := `{"task_id":"task-1","attempt":2,"capability":"echo","deadline":"2006-01-02T15:04:05.000Z","input":{"text":"hello"}}`
	if got, want := string(out), fmt.Sprintf(`{"input_bytes":%d}`, len(stdin)); got != want {
		t.Errorf("result %s, want %s", got, want)
	}
	want := []subprocess.Update{
		{Message: "got task task-1 (attempt 2)"},
		{Partial: json.RawMessage(`{"step":1}`)},
	}
	if !equalUpdates(updates, want) {
		t.Errorf("updates %s, want %s", showUpdates(updates), showUpdates(want))
	}
}

func TestPythonHandler(t *testing.T) {
	script, err := filepath.Abs("testdata/handler.py")
	if err != nil {
		t.Fatal(err)
	}
	// The script is outside the handler's sandbox unless allowed.
	r := newRunner(t, []string{pythonPath(t), script}, withSandbox(subprocess.Sandbox{AllowRead: []string{script}}))
	var updates []subprocess.Update
	out, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) { updates = append(updates, u) })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"upper": "HELLO"}`; got != want {
		t.Errorf("result %s, want %s", got, want)
	}
	want := []subprocess.Update{
		{Message: "working on task-1"},
		{Partial: json.RawMessage(`{"done": 0.5}`)},
	}
	if !equalUpdates(updates, want) {
		t.Errorf("updates %s, want %s", showUpdates(updates), showUpdates(want))
	}

	// The handler asks for a retry when there is no text.
	task := testTask()
	task.Input = json.RawMessage(`{"text":""}`)
	_, err = r.Run(t.Context(), task, nil)
	var e *subprocess.Error
	if !errors.As(err, &e) || e.Kind != subprocess.KindExited || !e.Retryable {
		t.Fatalf("Run with empty text = %v; want a retryable exit", err)
	}
	if want := "handler reported a temporary failure (status 75): nothing to do yet"; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}

	// An uncaught exception: the traceback's last line is the reason.
	task.Input = json.RawMessage(`{}`)
	_, err = r.Run(t.Context(), task, nil)
	if !errors.As(err, &e) || e.Kind != subprocess.KindExited || e.Retryable {
		t.Fatalf("Run without text = %v; want an exit that is not retried", err)
	}
	if want := "handler exited with status 1: KeyError: 'text'"; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
}

func TestStdinEnvAndTempDir(t *testing.T) {
	t.Setenv("SUBPROCESS_TEST_SECRET", "do-not-leak-this")
	t.Setenv("SUBPROCESS_TEST_PASSED", "visible-value")
	root := t.TempDir()
	r := newRunner(t, handlerArgv(t, "inspect"),
		subprocess.WithTempRoot(root),
		subprocess.WithEnv("SUBPROCESS_TEST_PASSED", "SUBPROCESS_TEST_UNSET"))
	task := testTask()
	// Before the Runner's one-minute timeout, so it is the deadline.
	task.Deadline = time.Now().Add(30 * time.Second)
	deadline := task.Deadline.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	out, err := r.Run(t.Context(), task, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got inspection
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}

	// stdin: exactly the five fields (the handler read to EOF).
	wantStdin := map[string]string{
		"task_id":    `"task-1"`,
		"attempt":    `2`,
		"capability": `"echo"`,
		"deadline":   `"` + deadline + `"`,
		"input":      `{"text":"hello"}`,
	}
	gotStdin := map[string]string{}
	for k, v := range got.Stdin {
		gotStdin[k] = string(v)
	}
	if !maps.Equal(gotStdin, wantStdin) {
		t.Errorf("stdin %v, want %v", gotStdin, wantStdin)
	}

	// The environment: scrubbed, with the task's variables.
	wantEnv := map[string]string{
		"PATH":                   "/usr/local/bin:/usr/bin:/bin",
		"HOME":                   got.Cwd,
		"TMPDIR":                 got.Cwd,
		"LANG":                   "C.UTF-8",
		"EQ_TASK_ID":             "task-1",
		"EQ_ATTEMPT":             "2",
		"EQ_CAPABILITY":          "echo",
		"EQ_DEADLINE":            deadline,
		"SUBPROCESS_TEST_PASSED": "visible-value",
	}
	if !maps.Equal(got.Env, wantEnv) {
		t.Errorf("handler environment %v, want %v", got.Env, wantEnv)
	}

	// The working directory: fresh, private, under the root, gone after.
	if filepath.Dir(got.Cwd) != root {
		t.Errorf("cwd %s is not in the temp root %s", got.Cwd, root)
	}
	if got.CwdMode != 0o700 {
		t.Errorf("cwd mode %o, want 700", got.CwdMode)
	}
	if _, err := os.Stat(got.Cwd); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s still exists after Run (stat: %v)", got.Cwd, err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("temp root not empty after Run: %v", entries)
	}
}

func TestTempDirRemovedAfterFailure(t *testing.T) {
	root := t.TempDir()
	// A read-only directory with a file in it, then a failure.
	r := newRunner(t, sh(`mkdir -p locked && touch locked/f && chmod 500 locked && chmod 400 locked/f && exit 1`),
		subprocess.WithTempRoot(root))
	runError(t, r, subprocess.KindExited)
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("temp root not empty after Run: %v", entries)
	}
}

func TestProgressInOrder(t *testing.T) {
	r := newRunner(t, handlerArgv(t, "progress"))
	var updates []subprocess.Update
	out, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) { updates = append(updates, u) })
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"ok":true}` {
		t.Errorf("result %s", out)
	}
	want := []subprocess.Update{
		{Message: "step one"},
		{Partial: json.RawMessage(`{"n":1}`)},
		{Message: "partial not json"},
		{Message: "step two"},
		{Partial: json.RawMessage(`{"n": 2}`)},
	}
	if !equalUpdates(updates, want) {
		t.Errorf("updates %s, want %s", showUpdates(updates), showUpdates(want))
	}
}

// stopScript starts a child that would sleep for long, says so, and
// waits. The sleep's argument is the marker that finds the child from
// here (inside the handler's PID namespace, $! means nothing here).
func stopScript(marker string) string {
	return `sleep ` + marker + ` & echo started >&2; wait`
}

func TestTimeoutKillsGroup(t *testing.T) {
	// The handler and its child ignore SIGTERM, so only the kill after
	// the grace ends them.
	marker := newMarker()
	r := newRunner(t, sh(`trap "" TERM; `+stopScript(marker)),
		subprocess.WithTimeout(time.Second),
		subprocess.WithKillGrace(100*time.Millisecond))
	var updates []subprocess.Update
	_, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) { updates = append(updates, u) })
	var e *subprocess.Error
	if !errors.As(err, &e) || e.Kind != subprocess.KindTimeout || !e.Retryable {
		t.Fatalf("Run = %v; want a retryable timeout", err)
	}
	if e.Message != "handler did not finish within 1s" {
		t.Errorf("message %q", e.Message)
	}
	checkStartedAndGone(t, updates, marker)
}

// checkStartedAndGone checks that the handler said its child started,
// and that the child is gone now that Run returned.
func checkStartedAndGone(t *testing.T, updates []subprocess.Update, marker string) {
	t.Helper()
	if len(updates) == 0 || updates[0].Message != "started" {
		t.Fatalf("updates %s; want the handler's \"started\"", showUpdates(updates))
	}
	if pids := markedProcesses(marker); len(pids) > 0 {
		t.Errorf("after Run, processes %v (sleep %s) still run", pids, marker)
	}
}

func TestTaskDeadline(t *testing.T) {
	marker := newMarker()
	r := newRunner(t, sh(stopScript(marker)), subprocess.WithTimeout(time.Hour))
	task := testTask()
	task.Deadline = time.Now().Add(time.Second)
	var updates []subprocess.Update
	_, err := r.Run(t.Context(), task, func(u subprocess.Update) { updates = append(updates, u) })
	var e *subprocess.Error
	if !errors.As(err, &e) || e.Kind != subprocess.KindTimeout {
		t.Fatalf("Run = %v; want a timeout", err)
	}
	if e.Message != "handler did not finish before the task's deadline" {
		t.Errorf("message %q", e.Message)
	}
	checkStartedAndGone(t, updates, marker)

	task.Deadline = time.Now().Add(-time.Second)
	_, err = r.Run(t.Context(), task, nil)
	if !errors.As(err, &e) || e.Kind != subprocess.KindTimeout {
		t.Fatalf("Run past the deadline = %v; want a timeout", err)
	}
}

func TestCancelKillsGroup(t *testing.T) {
	marker := newMarker()
	r := newRunner(t, sh(stopScript(marker)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var updates []subprocess.Update
	_, err := r.Run(ctx, testTask(), func(u subprocess.Update) {
		updates = append(updates, u)
		cancel() // the handler is running and has a child
	})
	var e *subprocess.Error
	if !errors.As(err, &e) || e.Kind != subprocess.KindCancelled {
		t.Fatalf("Run = %v; want cancelled", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not match context.Canceled", err)
	}
	checkStartedAndGone(t, updates, marker)

	_, err = r.Run(ctx, testTask(), nil)
	if !errors.As(err, &e) || e.Kind != subprocess.KindCancelled {
		t.Fatalf("Run with a cancelled context = %v; want cancelled", err)
	}
}

func TestLeftoversKilledAfterSuccess(t *testing.T) {
	// The handler succeeds but leaves a child behind, holding stderr.
	marker := newMarker()
	r := newRunner(t, sh(`sleep `+marker+` & echo started >&2; echo '{}'`))
	var updates []subprocess.Update
	if _, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) { updates = append(updates, u) }); err != nil {
		t.Fatal(err)
	}
	checkStartedAndGone(t, updates, marker)
}

func TestFailedHandler(t *testing.T) {
	r := newRunner(t, handlerArgv(t, "fail"))
	var updates []subprocess.Update
	_, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) { updates = append(updates, u) })
	var e *subprocess.Error
	if !errors.As(err, &e) || e.Kind != subprocess.KindExited || e.Retryable {
		t.Fatalf("Run = %v; want a non-retryable exit", err)
	}
	const prefix = "handler exited with status 3: boom [31mred yyy"
	if !strings.HasPrefix(e.Message, prefix) {
		t.Errorf("message %q does not start with %q", e.Message, prefix)
	}
	if len(e.Message) > 300 {
		t.Errorf("message is %d bytes, more than 300", len(e.Message))
	}
	for _, u := range updates {
		if len(u.Message) > 1024 {
			t.Errorf("progress message of %d bytes, more than 1 KiB", len(u.Message))
		}
		checkClean(t, u.Message)
	}
	checkClean(t, e.Message)
	if len(updates) != 2 || updates[0].Message != "starting" {
		t.Errorf("updates %s", showUpdates(updates))
	}
}

func checkClean(t *testing.T, s string) {
	t.Helper()
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		t.Errorf("%q has a control character at %d", s, i)
	}
}

func TestExitKinds(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		kind      subprocess.ErrorKind
		retryable bool
		message   string
	}{
		{"temporary failure", `echo "try later" >&2; exit 75`, subprocess.KindExited, true,
			"handler reported a temporary failure (status 75): try later"},
		{"plain exit", `exit 2`, subprocess.KindExited, false, "handler exited with status 2"},
		{"not found", `no-such-command-here`, subprocess.KindExited, false,
			"handler exited with status 127: /bin/sh: 1: no-such-command-here: not found"},
		{"signal", `echo dying >&2; kill -SEGV $$`, subprocess.KindCrashed, true, "handler was killed by SIGSEGV: dying"},
		{"garbage", `echo hello`, subprocess.KindBadOutput, false,
			"stdout is not JSON: invalid character 'h' looking for beginning of value at offset 0"},
		{"two values", `echo '{"a":1}'; echo '[2]'`, subprocess.KindBadOutput, false, "stdout has more than one JSON value"},
		{"trailing data", `echo '{"a":1} x'`, subprocess.KindBadOutput, false, "stdout has data after the JSON value at offset 7"},
		{"truncated", `printf '{"a":'`, subprocess.KindBadOutput, false, "stdout is not JSON: unexpected end of input"},
		{"empty", `true`, subprocess.KindBadOutput, false, "stdout is empty (the result must be one JSON value)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := runError(t, newRunner(t, sh(tt.script)), tt.kind)
			if e.Retryable != tt.retryable {
				t.Errorf("retryable %v, want %v", e.Retryable, tt.retryable)
			}
			if e.Message != tt.message {
				t.Errorf("message %q, want %q", e.Message, tt.message)
			}
		})
	}
}

func TestOversizedOutputStopsHandler(t *testing.T) {
	// yes never stops on its own: the Runner must stop it, not the timeout.
	r := newRunner(t, sh(`exec yes '"secret output"'`),
		subprocess.WithMaxOutput(1024), subprocess.WithTimeout(time.Hour))
	e := runError(t, r, subprocess.KindBadOutput)
	if e.Message != "stdout exceeds 1 KiB" {
		t.Errorf("message %q", e.Message)
	}
}

func TestResultAtTheCap(t *testing.T) {
	// Exactly max bytes of JSON, surrounded by whitespace within the cap.
	r := newRunner(t, sh(`printf ' "%s" ' $(head -c 1020 /dev/zero | tr '\0' a)`), subprocess.WithMaxOutput(1024))
	out, err := r.Run(t.Context(), testTask(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1022 {
		t.Errorf("result of %d bytes, want 1022", len(out))
	}
}

func TestRedactsPassedValues(t *testing.T) {
	t.Setenv("SUBPROCESS_TEST_TOKEN", "tok-1234567890")
	r := newRunner(t, sh(`echo "auth failed with $SUBPROCESS_TEST_TOKEN" >&2; exit 1`),
		subprocess.WithEnv("SUBPROCESS_TEST_TOKEN"))
	var updates []subprocess.Update
	_, err := r.Run(t.Context(), testTask(), func(u subprocess.Update) { updates = append(updates, u) })
	var e *subprocess.Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if want := "handler exited with status 1: auth failed with [redacted]"; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	if len(updates) != 1 || updates[0].Message != "auth failed with [redacted]" {
		t.Errorf("updates %s", showUpdates(updates))
	}
}

func TestProgramRemovedAfterNew(t *testing.T) {
	script := filepath.Join(t.TempDir(), "handler")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '{}'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, []string{script})
	if err := os.Remove(script); err != nil {
		t.Fatal(err)
	}
	e := runError(t, r, subprocess.KindStartFailed)
	if e.Message != "handler could not be started" || e.Retryable {
		t.Errorf("error %+v", e)
	}
	if !strings.Contains(e.Error(), "no such file or directory") {
		t.Errorf("Error() = %q does not say why", e.Error())
	}
}

func TestProgramLookupUsesHandlerPATH(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "eq-test-handler"), []byte("#!/bin/sh\necho '\"found\"'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))

	// Not in the default handler PATH, even though the agent's has it.
	_, err := subprocess.New([]string{"eq-test-handler"})
	if !errors.Is(err, subprocess.ErrProgramNotFound) {
		t.Errorf("New without passing PATH: %v", err)
	}

	r := newRunner(t, []string{"eq-test-handler"}, subprocess.WithEnv("PATH"))
	out, err := r.Run(t.Context(), testTask(), nil)
	if err != nil || string(out) != `"found"` {
		t.Errorf("Run = %s, %v", out, err)
	}
}

func TestNewRefuses(t *testing.T) {
	_, err := subprocess.New([]string{"no-such-handler-program"})
	if !errors.Is(err, subprocess.ErrProgramNotFound) || !strings.Contains(err.Error(), `"no-such-handler-program"`) {
		t.Errorf("New with a missing program: %v", err)
	}
	_, err = subprocess.New([]string{"./testdata/no-such-script"})
	if !errors.Is(err, subprocess.ErrProgramNotFound) || !strings.Contains(err.Error(), "no-such-script") {
		t.Errorf("New with a missing script: %v", err)
	}
	_, err = subprocess.New(nil)
	if !errors.Is(err, subprocess.ErrNoCommand) {
		t.Errorf("New without a command: %v", err)
	}
	_, err = subprocess.New([]string{"/bin/sh"}, subprocess.WithEnv("HOME"))
	if err == nil || !strings.Contains(err.Error(), "sets this variable itself") {
		t.Errorf("New passing HOME: %v", err)
	}
	_, err = subprocess.New([]string{"/bin/sh"}, subprocess.WithTimeout(0))
	if err == nil {
		t.Error("New with a zero timeout succeeded")
	}
}

func TestConcurrentRuns(t *testing.T) {
	r := newRunner(t, handlerArgv(t, "inspect"))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			task := testTask()
			task.ID = fmt.Sprintf("task-%d", i)
			out, err := r.Run(t.Context(), task, nil)
			if err != nil {
				errs[i] = err
				return
			}
			var got inspection
			if err := json.Unmarshal(out, &got); err != nil {
				errs[i] = err
				return
			}
			if got.Env["EQ_TASK_ID"] != task.ID {
				errs[i] = fmt.Errorf("run %d saw task %s", i, got.Env["EQ_TASK_ID"])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func equalUpdates(a, b []subprocess.Update) bool {
	return slices.EqualFunc(a, b, func(x, y subprocess.Update) bool {
		return x.Message == y.Message && string(x.Partial) == string(y.Partial)
	})
}

func showUpdates(us []subprocess.Update) string {
	var parts []string
	for _, u := range us {
		if u.Partial != nil {
			parts = append(parts, "partial "+string(u.Partial))
		} else {
			parts = append(parts, fmt.Sprintf("%q", u.Message))
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
