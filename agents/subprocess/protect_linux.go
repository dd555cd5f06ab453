package subprocess

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ProtectAgent marks the calling process (the agent) as not dumpable:
// processes of the same user, handlers run without namespaces among them,
// can then no longer read its /proc/<pid>/environ, mem, maps or fd,
// attach to it with ptrace, or get a core dump of it; only root (with
// CAP_SYS_PTRACE) can. Its command line stays visible to everyone, so
// keep secrets out of it. Call it once at startup, before secrets are
// loaded; handlers started afterwards do not inherit it.
func ProtectAgent() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("subprocess: prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
