package subprocess

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runInit is the shim's first stage: the parent of the handler for the
// whole task. In namespaces it is the init of the task's PID namespace,
// which it gives a /proc of its own, empty /run and /tmp and the like,
// and file systems read-only but for the task's writable paths; when it
// exits the kernel kills everything else in the namespace, whatever
// session or group it is in.
// Without namespaces it is a child subreaper instead: orphans of the
// handler's tree become its children, and it kills them all.
//
// It starts the second stage (this program again) in a process group of
// its own, reaps every child, forwards SIGTERM when the Runner asks, and
// when the handler exits (or the Runner says kill, or goes away) it ends
// the task, reports the handler's status on statusFD and exits.
func runInit(req shimRequest) error {
	if req.plan.userNS {
		if err := mapOwnIDs(req.plan.uid, req.plan.gid); err != nil {
			return err
		}
	}
	if req.plan.namespaces {
		if err := makeMountsPrivate(); err != nil {
			return err
		}
		if req.plan.freshProc {
			if err := mountProc(); err != nil {
				return err
			}
		}
		if err := maskShared(keptPaths(req)); err != nil {
			return err
		}
		if err := readOnlyExcept(append([]string{req.tempDir}, req.plan.write...)); err != nil {
			return err
		}
		// Into the bind mount: the old working directory is on the
		// mount beneath it, now read-only.
		if err := os.Chdir(req.tempDir); err != nil {
			return err
		}
	}
	// Nothing running as the handler's user may read this process's
	// memory or descriptors (statusFD among them).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	if !req.plan.namespaces {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	}
	// The Runner speaks through controlFD. A signal from elsewhere (a
	// service manager stopping everything) must not take the reaper
	// away before the handler: the handler gets its own copy.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	syscall.CloseOnExec(statusFD)
	syscall.CloseOnExec(controlFD)

	files := []uintptr{0, 1, 2}
	if req.errFD > 0 {
		files = append(files, uintptr(req.errFD))
	}
	args := append([]string{os.Args[0], shimExecMarker}, os.Args[2:]...)
	handler, err := syscall.ForkExec("/proc/self/exe", args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return fmt.Errorf("starting the handler: %w", err)
	}
	// The pipes are the handler's: they must close when its tree is gone.
	if err := releaseStdio(); err != nil {
		return err
	}

	var reaped atomic.Bool
	exited := make(chan handlerExit, 1)
	noChildren := make(chan struct{})
	go reapChildren(handler, &reaped, exited, noChildren)
	control := make(chan byte, 1)
	go readControl(control)
	for {
		select {
		case e := <-exited:
			endTask(req.plan.namespaces, noChildren)
			writeStatus(e)
			os.Exit(0)
		case c := <-control:
			if c == 'T' {
				forwardTerm(req.plan.namespaces, handler, &reaped)
				continue
			}
			endTask(req.plan.namespaces, noChildren)
			os.Exit(0)
		}
	}
}

// makeMountsPrivate keeps what is mounted in this mount namespace from
// propagating back to the agent's.
func makeMountsPrivate() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	return nil
}

// mountProc mounts a /proc of this PID namespace over the agent's, so
// the handler sees only its own task's processes.
func mountProc() error {
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "hidepid=invisible"); err != nil {
		return fmt.Errorf("mounting a fresh /proc: %w", err)
	}
	return nil
}

// maskedDirs are hidden behind an empty tmpfs in the handler's mount
// namespace: where other programs keep their Unix sockets and temporary
// files (a Docker or D-Bus socket, ssh-agent's, X11's). Landlock before
// ABI 9 does not stop connect(2) to a Unix socket by path.
var maskedDirs = []string{"/run", "/var/run", "/tmp", "/var/tmp", "/dev/shm"}

// keptPaths are what the handler needs that may be in a masked directory:
// its temporary directory, program, allowed paths, and where the system
// paths lead (/etc/resolv.conf often to /run).
func keptPaths(req shimRequest) []string {
	keep := []string{req.tempDir, req.program}
	keep = append(keep, req.plan.read...)
	keep = append(keep, req.plan.write...)
	for _, p := range systemPaths(false) {
		if target, err := filepath.EvalSymlinks(p); err == nil && target != p {
			keep = append(keep, target)
		}
	}
	return keep
}

// maskShared mounts an empty tmpfs over each masked directory (a real
// directory, not a link to another) and binds back into it the kept
// paths beneath it, at the same place.
func maskShared(keep []string) error {
	for _, dir := range maskedDirs {
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		var kept []string
		var fds []int
		for _, k := range keep {
			if !beneathAny(k, []string{dir}) || k == dir {
				continue
			}
			fd, err := unix.Open(k, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // gone: the handler fails to find it as it would
			}
			kept, fds = append(kept, k), append(fds, fd)
		}
		err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=64k")
		if err == nil {
			for i, k := range kept {
				if err = bindBack(fds[i], k); err != nil {
					break
				}
			}
		}
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", dir, err)
		}
	}
	return nil
}

// bindBack makes path (a directory or file, in a fresh tmpfs) and binds
// what fd was opened on there.
func bindBack(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	} else if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
		return err
	} else {
		f.Close()
	}
	return unix.Mount("/proc/self/fd/"+strconv.Itoa(fd), path, "", unix.MS_BIND|unix.MS_REC, "")
}

// readOnlyExcept makes every mount of this mount namespace read-only, but
// for bind mounts of the writable paths (and what is mounted beneath
// them). Landlock refuses writes too, but not changes of metadata (chmod,
// utimes, extended attributes) on files the handler's user owns: a
// read-only mount does.
func readOnlyExcept(writable []string) error {
	for _, path := range writable {
		if err := unix.Mount(path, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s: %w", path, err)
		}
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		point := unescapeMountinfo(fields[4])
		if beneathAny(point, writable) {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(point, &st); err != nil {
			continue // hidden under another mount, or out of reach
		}
		if st.Flags&unix.ST_RDONLY != 0 {
			continue
		}
		err := unix.Mount("", point, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keptMountFlags(int64(st.Flags)), "")
		if errors.Is(err, syscall.EINVAL) {
			continue // not a mount point any more: hidden by one mounted above it
		}
		if err != nil {
			return fmt.Errorf("remounting %s read-only: %w", point, err)
		}
	}
	return nil
}

// keptMountFlags are the flags a read-only remount must keep: inside a
// user namespace the kernel refuses to drop them.
func keptMountFlags(st int64) uintptr {
	flags := uintptr(0)
	for _, f := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st&f.st != 0 {
			flags |= f.ms
		}
	}
	if st&(unix.ST_NOATIME|unix.ST_RELATIME) == 0 {
		flags |= unix.MS_STRICTATIME
	}
	return flags
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// beneathAny reports whether path is one of dirs or beneath one.
func beneathAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// releaseStdio points this process's stdin, stdout and stderr at
// /dev/null.
func releaseStdio() error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	for fd := range 3 {
		if err := unix.Dup2(int(null.Fd()), fd); err != nil {
			return fmt.Errorf("dup2: %w", err)
		}
	}
	return nil
}

// reapChildren reaps every child (orphans included, as an init or
// subreaper must), reports the handler's exit, and closes noChildren
// once there are none left.
func reapChildren(handler int, reaped *atomic.Bool, exited chan<- handlerExit, noChildren chan<- struct{}) {
	for {
		var status syscall.WaitStatus
		var usage syscall.Rusage
		pid, err := syscall.Wait4(-1, &status, 0, &usage)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: with no child there is no descendant either
			close(noChildren)
			return
		}
		if pid == handler {
			reaped.Store(true)
			cpu := time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
			exited <- handlerExit{status: status, cpu: cpu, known: true}
		}
	}
}

// readControl passes on the Runner's requests; EOF or an error means kill.
func readControl(control chan<- byte) {
	f := os.NewFile(controlFD, "control")
	var b [1]byte
	for {
		if n, err := f.Read(b[:]); n == 0 || err != nil {
			control <- 'K'
			return
		}
		control <- b[0]
		if b[0] != 'T' {
			return
		}
	}
}

// forwardTerm sends SIGTERM to the task: everything in its PID namespace,
// or else the handler's process group (while the handler is not reaped,
// so the group id cannot have been reused).
func forwardTerm(namespaces bool, handler int, reaped *atomic.Bool) {
	if namespaces {
		_ = syscall.Kill(-1, syscall.SIGTERM) // all but this init
		return
	}
	if !reaped.Load() {
		_ = syscall.Kill(-handler, syscall.SIGTERM)
	}
}

// endTask kills whatever the handler left. An init need not: its exit
// takes the namespace with it. A subreaper kills its children until there
// are none (each kill makes the dead one's children its own).
func endTask(namespaces bool, noChildren <-chan struct{}) {
	if namespaces {
		return
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		killChildren()
		select {
		case <-noChildren:
			return
		case <-tick.C:
		}
	}
}

// killChildren sends SIGKILL to every child of this process. Through a
// pidfd, checked to be a child after it was opened, so that a pid reaped
// (and reused) meanwhile is never hit.
func killChildren() {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != self {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, syscall.ENOSYS) { // before Linux 5.3
			_ = syscall.Kill(pid, syscall.SIGKILL)
			continue
		}
		if err != nil {
			continue
		}
		if parentOf(pid) == self {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		_ = unix.Close(fd)
	}
}

// parentOf is the parent pid of pid, 0 if it cannot be read.
func parentOf(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// writeStatus reports the handler's end to the Runner.
func writeStatus(e handlerExit) {
	_, _ = fmt.Fprintf(os.NewFile(statusFD, "status"), "%d %d\n", uint32(e.status), e.cpu.Nanoseconds())
}

// confine is the last step before execve: no capabilities to keep, no new
// privileges, the Landlock domain, then the handler's user. Raw system
// calls only, on the calling (locked) thread: the memory limit is set.
func confine(p plan, rs ruleset) error {
	prctl := func(option, arg2 uintptr) syscall.Errno {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, option, arg2, 0, 0, 0, 0)
		return errno
	}
	if p.dropCaps {
		// Root's handlers (even "root") get no capability across execve.
		for c := uintptr(0); c < 64; c++ {
			if errno := prctl(unix.PR_CAPBSET_DROP, c); errno != 0 && errno != syscall.EINVAL {
				return fmt.Errorf("dropping capability %d from the bounding set: %w", c, errno)
			}
		}
	}
	// In a user namespace the first stage kept CAP_SYS_ADMIN as ambient.
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); errno != 0 && errno != syscall.EINVAL {
		return fmt.Errorf("clearing ambient capabilities: %w", errno)
	}
	if errno := prctl(unix.PR_SET_NO_NEW_PRIVS, 1); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", errno)
	}
	if rs.fd >= 0 {
		if _, _, errno := syscall.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs.fd), uintptr(rs.flags), 0); errno != 0 {
			return fmt.Errorf("landlock_restrict_self: %w", errno)
		}
	}
	if p.setUser {
		if _, _, errno := syscall.RawSyscall(sysSetgroups, 0, 0, 0); errno != 0 {
			return fmt.Errorf("setgroups: %w", errno)
		}
		gid, uid := uintptr(p.gid), uintptr(p.uid)
		if _, _, errno := syscall.RawSyscall(sysSetresgid, gid, gid, gid); errno != 0 {
			return fmt.Errorf("setresgid %d: %w", p.gid, errno)
		}
		if _, _, errno := syscall.RawSyscall(sysSetresuid, uid, uid, uid); errno != 0 {
			return fmt.Errorf("setresuid %d: %w", p.uid, errno)
		}
	}
	return nil
}
