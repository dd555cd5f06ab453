package subprocess

import (
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one handler run: the process group the shim started and the
// parent's ends of the pipes to it.
type process struct {
	cmd     *exec.Cmd
	pgid    int
	stdin   *os.File
	stdout  *os.File
	stderr  *os.File
	shimErr *os.File

	out  *stdoutCapture
	errs *stderrReader

	exited  chan struct{} // closed once the leader was reaped
	waitErr error         // set before exited is closed
	fed     chan struct{} // closed when the input was written or refused
}

// startProcess starts cmd (the shim) in a process group of its own with
// pipes for stdin, stdout, stderr and the shim's error report, then feeds
// input and reads the output in goroutines.
func startProcess(cmd *exec.Cmd, input []byte, out *stdoutCapture, errs *stderrReader) (*process, error) {
	var pipes [4]struct{ r, w *os.File }
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
	stdin, stdout, stderr, shimErr := pipes[0], pipes[1], pipes[2], pipes[3]
	childEnds := []*os.File{stdin.r, stdout.w, stderr.w, shimErr.w}
	p := &process{
		cmd:     cmd,
		stdin:   stdin.w,
		stdout:  stdout.r,
		stderr:  stderr.r,
		shimErr: shimErr.r,
		out:     out,
		errs:    errs,
		exited:  make(chan struct{}),
		fed:     make(chan struct{}),
	}

	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin.r, stdout.w, stderr.w
	cmd.ExtraFiles = []*os.File{shimErr.w} // becomes shimErrFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Start()
	closeFiles(childEnds) // the child has its copies
	if err != nil {
		closeFiles([]*os.File{p.stdin, p.stdout, p.stderr, p.shimErr})
		return nil, err
	}
	p.pgid = cmd.Process.Pid

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

// signal sends sig to the whole process group. After the leader is reaped
// the group id stays reserved while any member lives, so this cannot hit
// an unrelated process.
func (p *process) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.pgid, sig)
}

// closeReaders unblocks the output readers, for when something that left
// the process group still holds the pipes open.
func (p *process) closeReaders() {
	_ = p.stdout.Close()
	_ = p.stderr.Close()
}

// shimFailure is what the shim reported, if it could not exec the handler.
// Call it only after the leader exited.
func (p *process) shimFailure() string {
	// Only the shim had the write end and it is gone, so this returns at
	// once; the deadline is a guard, not a wait.
	_ = p.shimErr.SetReadDeadline(time.Now().Add(time.Second))
	msg, _ := io.ReadAll(io.LimitReader(p.shimErr, 4096))
	return string(msg)
}

// release closes whatever the parent still holds and waits for the input
// writer. Call it after the readers are done.
func (p *process) release() {
	closeFiles([]*os.File{p.stdin, p.stdout, p.stderr, p.shimErr})
	<-p.fed
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
