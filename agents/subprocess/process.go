package subprocess

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is one handler run: the shim's first stage (which leads a
// process group and, in namespaces, the task's PID namespace) and the
// parent's ends of the pipes to it.
type process struct {
	cmd     *exec.Cmd
	stdin   *os.File
	stdout  *os.File
	stderr  *os.File
	shimErr *os.File
	status  *os.File // the first stage's report of how the handler ended
	control *os.File // to the first stage: 'T' (SIGTERM) or 'K' (kill all)

	cgroup *taskCgroup // nil: none

	out  *stdoutCapture
	errs *stderrReader

	exited  chan struct{} // closed once the first stage was reaped
	waitErr error         // set before exited is closed
	fed     chan struct{} // closed when the input was written or refused
}

// handlerExit is how the handler ended, as the first stage saw it.
type handlerExit struct {
	status syscall.WaitStatus
	cpu    time.Duration // user and system time of the handler and its reaped children
	known  bool          // false: the first stage did not say (it was killed)
}

// startProcess starts cmd (the shim) with pipes for stdin, stdout,
// stderr, the shim's error report, its status report and the control
// channel, then feeds input and reads the output in goroutines.
func startProcess(cmd *exec.Cmd, attr *syscall.SysProcAttr, cgroup *taskCgroup, input []byte, out *stdoutCapture, errs *stderrReader) (*process, error) {
	var pipes [6]struct{ r, w *os.File }
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			for _, p := range pipes[:i] {
				closeFiles([]*os.File{p.r, p.w})
			}
			return nil, err
		}
		pipes[i].r, pipes[i].w = r, w
	}
	stdin, stdout, stderr, shimErr, status, control := pipes[0], pipes[1], pipes[2], pipes[3], pipes[4], pipes[5]
	childEnds := []*os.File{stdin.r, stdout.w, stderr.w, shimErr.w, status.w, control.r}
	p := &process{
		cmd:     cmd,
		stdin:   stdin.w,
		stdout:  stdout.r,
		stderr:  stderr.r,
		shimErr: shimErr.r,
		status:  status.r,
		control: control.w,
		cgroup:  cgroup,
		out:     out,
		errs:    errs,
		exited:  make(chan struct{}),
		fed:     make(chan struct{}),
	}

	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin.r, stdout.w, stderr.w
	cmd.ExtraFiles = []*os.File{shimErr.w, status.w, control.r} // shimErrFD, statusFD, controlFD
	cmd.SysProcAttr = attr
	err := cmd.Start()
	closeFiles(childEnds) // the child has its copies
	if err != nil {
		closeFiles([]*os.File{p.stdin, p.stdout, p.stderr, p.shimErr, p.status, p.control})
		if cgroup != nil {
			cgroup.remove()
		}
		return nil, err
	}

	go func() {
		defer close(p.fed)
		// A handler may exit without reading its input: EPIPE is not an
		// error of ours.
		_, _ = p.stdin.Write(input)
		_ = p.stdin.Close()
	}()
	go out.run(p.stdout)
	go errs.run(p.stderr)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// terminate asks the first stage to send SIGTERM to the task.
func (p *process) terminate() { _, _ = p.control.Write([]byte{'T'}) }

// kill asks the first stage to kill the whole task and exit.
func (p *process) kill() { _, _ = p.control.Write([]byte{'K'}) }

// forceKill kills the first stage itself, for when it does not answer:
// in a PID namespace that kills the task too.
func (p *process) forceKill() { _ = p.cmd.Process.Kill() }

// killCgroup kills every process left in the task's cgroup, if it has
// one. Call it once, after the first stage exited.
func (p *process) killCgroup() {
	if p.cgroup != nil {
		_ = p.cgroup.kill() // the run's result stands; the subreaper did the same
	}
}

// closeReaders unblocks the output readers, for when something still
// holds the pipes open.
func (p *process) closeReaders() {
	_ = p.stdout.Close()
	_ = p.stderr.Close()
}

// shimFailure is what the shim reported, if it could not exec the handler.
// Call it only after the first stage exited.
func (p *process) shimFailure() string {
	// Only the shim had the write end and it is gone, so this returns at
	// once; the deadline is a guard, not a wait.
	_ = p.shimErr.SetReadDeadline(time.Now().Add(time.Second))
	msg, _ := io.ReadAll(io.LimitReader(p.shimErr, 4096))
	return string(msg)
}

// handlerExit is how the handler ended. Call it only after the first
// stage exited.
func (p *process) handlerExit() handlerExit {
	_ = p.status.SetReadDeadline(time.Now().Add(time.Second))
	msg, _ := io.ReadAll(io.LimitReader(p.status, 256))
	var status uint32
	var cpu int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(msg)), "%d %d", &status, &cpu); err != nil {
		return handlerExit{}
	}
	return handlerExit{status: syscall.WaitStatus(status), cpu: time.Duration(cpu), known: true}
}

// release closes whatever the parent still holds (the control channel
// last: its closing tells a first stage still alive to kill everything)
// and waits for the input writer. Call it after the readers are done.
func (p *process) release() {
	closeFiles([]*os.File{p.stdin, p.stdout, p.stderr, p.shimErr, p.status, p.control})
	<-p.fed
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
