//go:build linux && !386 && !arm

package subprocess

import "golang.org/x/sys/unix"

// The system calls that switch to the handler's user (32-bit ids).
const (
	sysSetgroups = unix.SYS_SETGROUPS
	sysSetresgid = unix.SYS_SETRESGID
	sysSetresuid = unix.SYS_SETRESUID
)
