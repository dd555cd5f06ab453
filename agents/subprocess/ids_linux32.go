//go:build linux && (386 || arm)

package subprocess

import "golang.org/x/sys/unix"

// The system calls that switch to the handler's user: on 32-bit x86 and
// ARM the plain ones take 16-bit ids.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
