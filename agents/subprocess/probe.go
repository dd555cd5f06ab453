package subprocess

import (
	"fmt"
	"strings"
	"sync"
)

// Support is what this machine offers for isolating handlers, as Probe
// found it.
type Support struct {
	// LandlockABI is the kernel's Landlock ABI version: 0 = no Landlock,
	// 4 and up also restrict TCP, 6 and up also scope signals and
	// abstract Unix sockets.
	LandlockABI int
	// Root is whether the agent runs as root: it can then switch handlers
	// to another user, and needs no user namespace for the others.
	Root bool
	// Namespaces is whether a handler can get PID, mount, IPC and network
	// namespaces of its own: as root, or inside a new user namespace.
	Namespaces bool
	// FreshProc is whether a /proc showing only the handler's PID
	// namespace can be mounted in its mount namespace.
	FreshProc bool
	// CgroupKill is whether the agent may make a cgroup v2 per task
	// below its own, whose cgroup.kill ends every process of the task.
	CgroupKill bool
	// Problem says why Namespaces or FreshProc is false.
	Problem string
}

func (s Support) String() string {
	var parts []string
	if s.LandlockABI > 0 {
		parts = append(parts, fmt.Sprintf("Landlock ABI %d", s.LandlockABI))
	} else {
		parts = append(parts, "no Landlock")
	}
	if s.Root {
		parts = append(parts, "root")
	} else {
		parts = append(parts, "not root")
	}
	switch {
	case s.Namespaces && s.FreshProc:
		parts = append(parts, "PID, mount, IPC and network namespaces with a fresh /proc")
	case s.Namespaces:
		parts = append(parts, "PID, mount, IPC and network namespaces, no fresh /proc")
	default:
		parts = append(parts, "no namespaces")
	}
	if s.CgroupKill {
		parts = append(parts, "cgroup.kill")
	} else {
		parts = append(parts, "no cgroup.kill")
	}
	out := strings.Join(parts, ", ")
	if s.Problem != "" {
		out += " (" + s.Problem + ")"
	}
	return out
}

var probed struct {
	sync.Mutex
	done    bool
	support Support
}

// Probe reports what this machine offers for isolating handlers. It starts
// the exec shim once, in the namespaces a handler would get, so it needs
// RunShimIfRequested wired like New does; the answer is kept for the life
// of the process. Safe for concurrent use.
func Probe() Support {
	probed.Lock()
	defer probed.Unlock()
	if probed.done {
		return probed.support
	}
	s := probe()
	if shimWired.Load() {
		probed.done, probed.support = true, s
	}
	return s
}
