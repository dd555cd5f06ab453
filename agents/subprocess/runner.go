package subprocess

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Task is what a handler is asked to do.
type Task struct {
	ID         string
	Attempt    int
	Capability string
	Deadline   time.Time // zero = only the Runner's timeout applies
	Input      json.RawMessage
}

// Runner runs a handler program, one process per task. It is safe for
// concurrent use; each Run is independent.
type Runner struct {
	cfg     config
	shim    string   // this program, re-executed as the exec shim
	program string   // the handler, resolved to an absolute path
	argv    []string // the handler's argv, as given to New
	passed  map[string]string
	redact  redactor
	plan    plan // how each run is isolated
}

// New prepares a Runner for the handler command argv. The program
// (argv[0]) is looked up now, in the PATH the handler will get, and made
// absolute; the other arguments are passed as they are, and relative paths
// among them resolve against the task's temporary directory. New fails if
// the program is missing, this program cannot act as the exec shim, or the
// Sandbox asked for cannot be provided here (ErrSandboxUnavailable, with
// what Probe found).
func New(argv []string, opts ...Option) (*Runner, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, ErrNoCommand
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if !shimWired.Load() {
		return nil, ErrShimNotWired
	}
	if err := platformSupported(); err != nil {
		return nil, err
	}
	shim, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("subprocess: cannot locate this program to re-execute as the exec shim: %w", err)
	}
	passed := passedEnv(cfg.envNames)
	program, err := findProgram(argv[0], handlerPATH(passed))
	if err != nil {
		return nil, err
	}
	p, err := newPlan(cfg.sandbox, cfg.tempRoot, Probe())
	if err != nil {
		return nil, err
	}
	return &Runner{
		cfg:     cfg,
		shim:    shim,
		program: program,
		argv:    append([]string(nil), argv...),
		passed:  passed,
		redact:  secrets(passed),
		plan:    p,
	}, nil
}

// Isolation says in one line how this Runner isolates handlers, for the
// agent's log.
func (r *Runner) Isolation() string { return r.plan.describe() }

// stopReason is why the Runner stopped a handler, if it did.
type stopReason int

const (
	notStopped stopReason = iota
	stoppedTimeout
	stoppedCancel
	stoppedOversize
)

// pipeDrainTimeout bounds the wait for the output pipes to close after the
// task ended, in case something still holds them.
const pipeDrainTimeout = time.Second

// killTimeout is how long the shim's first stage has to kill the task
// when asked, before the Runner kills it.
const killTimeout = 5 * time.Second

// Run runs the handler for t and returns its result: the single JSON value
// it wrote on stdout. Every failure is an *Error. progress, if not nil,
// receives each progress message and partial result in order, from Run's
// own goroutine, and all of them before Run returns; it should return
// quickly, as the handler is not supervised while it runs
// (timeouts and cancellation wait for it).
//
// When Run returns, the handler and every process it started (whatever
// session or process group it moved to) have been killed, and its
// temporary directory is removed.
func (r *Runner) Run(ctx context.Context, t Task, progress func(Update)) (json.RawMessage, error) {
	if progress == nil {
		progress = func(Update) {}
	}
	if err := ctx.Err(); err != nil {
		return nil, newError(KindCancelled, true, err, "task was cancelled before the handler started")
	}
	deadline, byTask := r.deadline(t, time.Now())
	if !time.Now().Before(deadline) {
		return nil, newError(KindTimeout, false, nil, "task deadline passed before the handler started")
	}
	input, err := encodeInput(t, deadline)
	if err != nil {
		return nil, newError(KindStartFailed, false, err, "task input is not valid JSON")
	}
	dir, err := os.MkdirTemp(r.cfg.tempRoot, "eq-task-")
	if err != nil {
		return nil, newError(KindStartFailed, true, err, "handler could not be started")
	}
	defer removeTempDir(dir)
	if r.plan.setUser {
		if err := os.Chown(dir, r.plan.uid, r.plan.gid); err != nil {
			return nil, newError(KindStartFailed, true, err, "handler could not be started")
		}
	}

	cmd := &exec.Cmd{
		Path: r.shim,
		Args: r.shimArgs(dir),
		Env:  environ(r.passed, t, deadline, dir),
		Dir:  dir,
	}
	attr := shimAttr(r.plan)
	var cgroup *taskCgroup
	if r.plan.cgroupKill {
		if cgroup = newTaskCgroup(); cgroup != nil {
			cgroup.apply(attr)
		}
	}
	p, err := startProcess(cmd, attr, cgroup, input, newStdoutCapture(r.cfg.maxOutput), newStderrReader(r.cfg.maxOutput, r.redact))
	if err != nil {
		return nil, newError(KindStartFailed, true, err, "handler could not be started")
	}
	reason := r.supervise(ctx, p, deadline, progress)
	result, err := r.outcome(ctx, p, reason, byTask)
	p.release()
	return result, err
}

// deadline is when the run must end, and whether the task's own deadline
// (rather than the Runner's timeout) sets it.
func (r *Runner) deadline(t Task, now time.Time) (time.Time, bool) {
	byTimeout := now.Add(r.cfg.timeout)
	if !t.Deadline.IsZero() && t.Deadline.Before(byTimeout) {
		return t.Deadline, true
	}
	return byTimeout, false
}

// shimArgs is the shim's command line: marker, limits, sandbox, the
// task's directory, error descriptor, then the handler.
func (r *Runner) shimArgs(dir string) []string {
	args := []string{r.shim, shimMarker}
	args = append(args, r.cfg.limits.shimArgs()...)
	args = append(args, r.plan.shimArgs()...)
	args = append(args, argTempDir+"="+dir, argErrFD+"="+strconv.Itoa(shimErrFD), shimEnd, r.program)
	return append(args, r.argv...)
}

// stdinMessage is what the handler reads on stdin.
type stdinMessage struct {
	TaskID     string          `json:"task_id"`
	Attempt    int             `json:"attempt"`
	Capability string          `json:"capability"`
	Deadline   string          `json:"deadline"`
	Input      json.RawMessage `json:"input"`
}

func encodeInput(t Task, deadline time.Time) ([]byte, error) {
	input := t.Input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	b, err := json.Marshal(stdinMessage{
		TaskID:     t.ID,
		Attempt:    t.Attempt,
		Capability: t.Capability,
		Deadline:   deadline.UTC().Format(deadlineLayout),
		Input:      input,
	})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// supervise passes on updates until the shim's first stage exits,
// stopping the task (SIGTERM, then killing it all after the grace) on
// timeout, cancellation or oversized output, then delivers the remaining
// updates. The first stage exits only once the handler and everything it
// started are dead.
func (r *Runner) supervise(ctx context.Context, p *process, deadline time.Time, progress func(Update)) stopReason {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	reason := notStopped
	var grace, unanswered <-chan time.Time
	stop := func(why stopReason) {
		if reason != notStopped {
			return
		}
		reason = why
		p.terminate()
		grace = time.After(r.cfg.killGrace)
	}

	updates, cancelled, over := p.errs.updates, ctx.Done(), p.out.over
	for running := true; running; {
		select {
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			progress(u)
		case <-p.exited:
			running = false
		case <-timer.C:
			stop(stoppedTimeout)
		case <-cancelled:
			cancelled = nil
			stop(stoppedCancel)
		case <-over:
			over = nil
			stop(stoppedOversize)
		case <-grace:
			grace = nil
			p.kill()
			unanswered = time.After(killTimeout)
		case <-unanswered:
			unanswered = nil
			p.forceKill()
		}
	}
	// Whatever outlived the first stage (if it was killed from outside).
	p.killCgroup()

	drain := time.NewTimer(pipeDrainTimeout)
	defer drain.Stop()
	stdoutDone := p.out.done
	for updates != nil || stdoutDone != nil {
		select {
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			progress(u)
		case <-stdoutDone:
			stdoutDone = nil
		case <-drain.C:
			p.closeReaders()
		}
	}
	return reason
}

// removeTempDir removes a task's directory, making read-only directories
// the handler left writable first. A failure is not reported: the run's
// result stands either way, and the directory is under the temp root.
func removeTempDir(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}
