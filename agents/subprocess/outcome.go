package subprocess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// outcome turns how the handler ended into Run's result.
func (r *Runner) outcome(ctx context.Context, p *process, reason stopReason, byTask bool) (json.RawMessage, error) {
	if msg := p.shimFailure(); msg != "" {
		return nil, newError(KindStartFailed, false, errors.New(strings.TrimSpace(msg)), "handler could not be started")
	}
	switch reason {
	case stoppedTimeout:
		if byTask {
			return nil, newError(KindTimeout, true, nil, "handler did not finish before the task's deadline")
		}
		return nil, newError(KindTimeout, true, nil, fmt.Sprintf("handler did not finish within %s", r.cfg.timeout))
	case stoppedCancel:
		return nil, newError(KindCancelled, true, context.Cause(ctx), "task was cancelled")
	case stoppedOversize:
		return nil, newError(KindBadOutput, false, nil, "stdout exceeds "+formatBytes(uint64(r.cfg.maxOutput)))
	}

	exit := p.handlerExit()
	if !exit.known {
		return nil, newError(KindCrashed, true, p.waitErr, "handler was lost")
	}
	status := exit.status
	last := ""
	if p.errs.lastMessage != "" {
		last = ": " + p.errs.lastMessage
	}
	limits := r.cfg.limits
	memory := limits.Memory > 0 && p.errs.memoryHint
	switch {
	case status.Signaled():
		sig := status.Signal()
		used := exit.cpu
		cpu := sig == syscall.SIGXCPU ||
			(sig == syscall.SIGKILL && limits.CPUTime > 0 && used >= time.Duration(limits.cpuSeconds())*time.Second)
		switch {
		case cpu:
			return nil, newError(KindCPULimit, false, nil,
				fmt.Sprintf("handler exceeded its CPU time limit of %s", time.Duration(limits.cpuSeconds())*time.Second))
		case memory:
			return nil, memoryError(limits.Memory, last)
		}
		return nil, newError(KindCrashed, true, nil, fmt.Sprintf("handler was killed by %s%s", unix.SignalName(sig), last))
	case status.ExitStatus() == 75: // EX_TEMPFAIL
		return nil, newError(KindExited, true, nil, "handler reported a temporary failure (status 75)"+last)
	case status.ExitStatus() != 0 && memory:
		return nil, memoryError(limits.Memory, last)
	case status.ExitStatus() != 0:
		return nil, newError(KindExited, false, nil, fmt.Sprintf("handler exited with status %d%s", status.ExitStatus(), last))
	}

	if p.out.overflow {
		return nil, newError(KindBadOutput, false, nil, "stdout exceeds "+formatBytes(uint64(r.cfg.maxOutput)))
	}
	result, problem := parseResult(p.out.buf.Bytes())
	if problem != "" {
		return nil, newError(KindBadOutput, false, nil, problem)
	}
	return result, nil
}

func memoryError(limit uint64, last string) *Error {
	return newError(KindMemoryLimit, false, nil, fmt.Sprintf("handler ran out of memory under its limit of %s%s", formatBytes(limit), last))
}
