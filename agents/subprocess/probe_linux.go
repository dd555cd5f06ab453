package subprocess

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// shimProbeMarker makes the shim check, in the namespaces a handler would
// get, that it can set up its mounts; Probe starts it.
const shimProbeMarker = "__equilateral-exec-shim-probe"

// Exit statuses of the probe.
const (
	probeNoMounts = 2 // cannot make mounts private: no usable mount namespace
	probeNoProc   = 3 // cannot mount a fresh /proc
)

// probeTimeout bounds the probe, which should take milliseconds.
const probeTimeout = 10 * time.Second

// platformSupported: handlers run on Linux.
func platformSupported() error { return nil }

func probe() Support {
	s := Support{Root: os.Geteuid() == 0, LandlockABI: landlockABI(), CgroupKill: cgroupParent() != ""}
	if !shimWired.Load() {
		s.Problem = "namespaces not probed: RunShimIfRequested was not called"
		return s
	}
	exe, err := os.Executable()
	if err != nil {
		s.Problem = "namespaces not probed: " + err.Error()
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	p := plan{namespaces: true, userNS: !s.Root, uid: os.Geteuid(), gid: os.Getegid()}
	cmd := exec.CommandContext(ctx, exe, append([]string{shimProbeMarker}, p.shimArgs()...)...)
	cmd.Env = []string{}
	cmd.SysProcAttr = shimAttr(p)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		s.Namespaces, s.FreshProc = true, true
	case errors.As(err, &exit) && exit.ExitCode() == probeNoProc:
		s.Namespaces = true
		s.Problem = strings.TrimSpace(string(out))
	case errors.As(err, &exit):
		s.Problem = fmt.Sprintf("namespaces: %s", strings.TrimSpace(string(out)))
	default:
		what := "namespaces"
		if !s.Root {
			what = "user namespaces"
		}
		s.Problem = fmt.Sprintf("%s: %v", what, err)
	}
	return s
}

// runProbe is the shim in probe mode: it sets up the user namespace and
// the mounts a handler's first stage would (in a mount namespace of its
// own, so nothing outside changes), and exits.
func runProbe() {
	req, err := parseShimArgs(append(os.Args[2:], shimEnd, "/", "probe"))
	if err == nil && req.plan.userNS {
		err = mapOwnIDs(req.plan.uid, req.plan.gid)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(probeNoMounts)
	}
	if err := makeMountsPrivate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(probeNoMounts)
	}
	procErr := mountProc()
	if err := maskShared(nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(probeNoMounts)
	}
	if err := readOnlyExcept(nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(probeNoMounts)
	}
	if procErr != nil {
		fmt.Fprintln(os.Stderr, procErr)
		os.Exit(probeNoProc)
	}
	os.Exit(0)
}

// landlockABI is the kernel's Landlock ABI version, 0 if none. Like
// go-landlock, it counts a kernel whose signal scoping is broken (an
// erratum fixed in 6.12 stable updates) as ABI 5.
func landlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 1 {
		return 0
	}
	if v >= 6 {
		errata, err := ll.LandlockGetErrata()
		if err != nil || errata&0x2 == 0 {
			v = 5
		}
	}
	return v
}

// shimAttr is how the Runner starts the shim's first stage: leading a
// process group, in the namespaces of the plan. Without root, the
// namespaces sit in a new user namespace. The first stage maps the
// agent's own uid and gid in it itself (mapOwnIDs): Go would write the
// maps from the agent, which cannot once it is not dumpable
// (ProtectAgent), as the child's /proc files are then root's. For that
// and to mount /proc, the first stage keeps CAP_SETUID, CAP_SETGID and
// CAP_SYS_ADMIN in the user namespace (ambient); the second stage drops
// them before the handler runs.
func shimAttr(p plan) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if !p.namespaces {
		return attr
	}
	attr.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC
	if !p.network {
		attr.Cloneflags |= syscall.CLONE_NEWNET
	}
	if p.userNS {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.AmbientCaps = []uintptr{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_SYS_ADMIN}
	}
	return attr
}

// mapOwnIDs maps uid and gid (the agent's) to themselves in this
// process's new user namespace, the only mapping an unprivileged process
// may make. Supplementary groups stay as they are (setgroups is denied).
func mapOwnIDs(uid, gid int) error {
	for _, w := range []struct{ file, data string }{
		{"/proc/self/setgroups", "deny"},
		{"/proc/self/gid_map", fmt.Sprintf("%d %d 1\n", gid, gid)},
		{"/proc/self/uid_map", fmt.Sprintf("%d %d 1\n", uid, uid)},
	} {
		if err := os.WriteFile(w.file, []byte(w.data), 0); err != nil {
			return fmt.Errorf("mapping the agent's ids in the user namespace: %w", err)
		}
	}
	return nil
}
