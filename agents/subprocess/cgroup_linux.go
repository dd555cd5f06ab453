package subprocess

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// taskCgroup is a cgroup v2 of one task: the shim's first stage starts in
// it (clone3 with CLONE_INTO_CGROUP), so everything the handler starts is
// in it too, and cgroup.kill ends them all, whatever became of the first
// stage. Used when the task has no PID namespace (whose end already takes
// everything with it) and the agent may make cgroups below its own.
type taskCgroup struct {
	dir string
	fd  int // the directory, for SysProcAttr.CgroupFD
}

// cgroupKillTimeout bounds the wait for a killed cgroup to empty.
const cgroupKillTimeout = 5 * time.Second

// cgroupParent is where task cgroups go: the agent's own cgroup v2, if it
// may create cgroups with cgroup.kill (Linux 5.14) there; "" if not.
var cgroupParent = sync.OnceValue(func() string {
	dir, err := ownCgroup()
	if err != nil {
		return ""
	}
	probe, err := os.MkdirTemp(dir, "eq-probe-")
	if err != nil {
		return ""
	}
	defer os.Remove(probe)
	if _, err := os.Stat(filepath.Join(probe, "cgroup.kill")); err != nil {
		return ""
	}
	return dir
})

// ownCgroup is the directory of this process's cgroup v2.
func ownCgroup() (string, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var path string
	for _, line := range strings.Split(string(self), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			path = p
		}
	}
	if path == "" {
		return "", errors.New("no cgroup v2")
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		// id parent dev root mountpoint options... - fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		fields, fs := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(fs) < 1 || fs[0] != "cgroup2" {
			continue
		}
		root, point := unescapeMountinfo(fields[3]), unescapeMountinfo(fields[4])
		if rel, ok := strings.CutPrefix(path, strings.TrimSuffix(root, "/")); ok {
			return filepath.Join(point, rel), nil
		}
	}
	return "", errors.New("cgroup v2 not mounted")
}

// newTaskCgroup makes a task's cgroup, or returns nil when there is no
// place for one.
func newTaskCgroup() *taskCgroup {
	parent := cgroupParent()
	if parent == "" {
		return nil
	}
	dir, err := os.MkdirTemp(parent, "eq-task-")
	if err != nil {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil
	}
	return &taskCgroup{dir: dir, fd: fd}
}

// kill kills every process in the cgroup, waits for it to empty, and
// removes it.
func (c *taskCgroup) kill() error {
	defer unix.Close(c.fd)
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		return fmt.Errorf("cgroup.kill: %w", err)
	}
	deadline := time.Now().Add(cgroupKillTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		events, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events"))
		if err != nil || bytes.Contains(events, []byte("populated 0")) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still populated after cgroup.kill", c.dir)
		}
		<-tick.C
	}
	return os.Remove(c.dir)
}

// apply starts the shim's first stage in the cgroup.
func (c *taskCgroup) apply(attr *syscall.SysProcAttr) {
	attr.UseCgroupFD, attr.CgroupFD = true, c.fd
}

// remove removes the cgroup of a task that did not start.
func (c *taskCgroup) remove() {
	_ = unix.Close(c.fd)
	_ = os.Remove(c.dir)
}
