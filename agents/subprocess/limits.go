package subprocess

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are resource limits (setrlimit) the handler starts with. The shim
// sets them before it execs the handler, so they hold from the handler's
// first instruction and are inherited by everything it starts.
type Limits struct {
	// CPUTime is RLIMIT_CPU, rounded up to whole seconds: the handler gets
	// SIGXCPU at the limit and SIGKILL a second later. It counts CPU time
	// since the shim started (a few milliseconds). 0 = unlimited.
	CPUTime time.Duration
	// Memory is RLIMIT_AS in bytes: address space, not resident memory, so
	// leave room for what runtimes reserve (the JVM, Go's race detector and
	// others reserve far more than they use). 0 = unlimited.
	Memory uint64
	// OpenFiles is RLIMIT_NOFILE (soft and hard). 0 = inherit the agent's
	// original limit.
	OpenFiles uint64
	// Processes is RLIMIT_NPROC: the number of processes of the handler's
	// user across the whole system, not of this task, so it only works as
	// a per-task bound when handlers run as a user of their own. It is not
	// enforced for root. 0 = unlimited.
	Processes uint64
}

func (l Limits) validate() error {
	if l.CPUTime < 0 {
		return errors.New("subprocess: negative CPU time limit")
	}
	return nil
}

// cpuSeconds is CPUTime rounded up to whole seconds.
func (l Limits) cpuSeconds() uint64 {
	return uint64((l.CPUTime + time.Second - 1) / time.Second)
}

// apply sets the limits on the calling process. The address-space limit
// goes last: after it, even the shim itself may fail to grow.
func (l Limits) apply() error {
	set := func(resource int, name string, soft, hard uint64) error {
		if err := unix.Setrlimit(resource, &unix.Rlimit{Cur: soft, Max: hard}); err != nil {
			return fmt.Errorf("setrlimit %s to %d: %w", name, soft, err)
		}
		return nil
	}
	if l.Processes > 0 {
		if err := set(unix.RLIMIT_NPROC, "RLIMIT_NPROC", l.Processes, l.Processes); err != nil {
			return err
		}
	}
	if l.OpenFiles > 0 {
		// Through syscall.Setrlimit (which unix.Setrlimit calls), so that
		// syscall.Exec does not restore the soft limit Go saved at startup.
		if err := set(unix.RLIMIT_NOFILE, "RLIMIT_NOFILE", l.OpenFiles, l.OpenFiles); err != nil {
			return err
		}
	}
	if s := l.cpuSeconds(); s > 0 {
		if err := set(unix.RLIMIT_CPU, "RLIMIT_CPU", s, s+1); err != nil {
			return err
		}
	}
	if l.Memory > 0 {
		if err := set(unix.RLIMIT_AS, "RLIMIT_AS", l.Memory, l.Memory); err != nil {
			return err
		}
	}
	return nil
}

// formatBytes renders a size the way people write it: "1 MiB", "256 KiB",
// "1000 bytes".
func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
