package subprocess

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Sandbox says how handlers are kept away from the agent and the rest of
// the machine. The zero value is the strictest setting and the default:
// Landlock, namespaces, no network, and, when the agent runs as root, a
// user other than root. New refuses a Sandbox this machine cannot provide
// (ErrSandboxUnavailable); Probe shows what it can. docs/exec.md says
// what each mode isolates and what it does not.
type Sandbox struct {
	// Disabled runs handlers without Landlock and without namespaces:
	// they can read, write and connect to whatever the agent's user can
	// (or User's, when the agent is root). What stays: the scrubbed
	// environment, the temporary directory, the resource limits, no new
	// privileges, and every process the handler started killed when it
	// ends. AllowRead and AllowWrite must be empty; Network is ignored.
	Disabled bool
	// AllowRead are files and directories (with everything beneath) the
	// handler may read and execute, besides its temporary directory and
	// the system paths it needs to run programs (SystemPaths).
	AllowRead []string
	// AllowWrite are files and directories the handler may read, write,
	// create and remove things in, like its temporary directory.
	AllowWrite []string
	// Network lets the handler use the network as the agent can,
	// loopback (and so the NATS server) included. False (the default)
	// gives it a network namespace of its own with no interface up, and
	// Landlock refuses TCP (and, on newer kernels, UDP) where supported.
	Network bool
	// User is who the handler runs as: "UID", "UID:GID" or a user name
	// from /etc/passwd, with an optional ":GROUP". "root" runs handlers
	// as root (without capabilities). Only root can switch users; when
	// the agent runs as root and User is empty, handlers run as nobody
	// (65534:65534). Pick a uid no one else uses, so that Limits.Processes
	// counts only handlers and nothing else of that uid can be signalled.
	User string
}

// DefaultUser is who handlers run as when the agent is root and
// Sandbox.User is empty: nobody, by number, so it needs no passwd entry.
const DefaultUser = "65534:65534"

// WithSandbox sets how handlers are isolated (default: Sandbox{}, the
// strictest).
func WithSandbox(s Sandbox) Option { return optionFunc(func(c *config) { c.sandbox = s }) }

// plan is what the shim is asked to do for every run, decided once by New
// from the Sandbox and what Probe found.
type plan struct {
	landlock   bool     // restrict the handler with Landlock
	network    bool     // the handler keeps the agent's network
	namespaces bool     // PID, mount and IPC namespaces (and network, unless network)
	userNS     bool     // inside a user namespace of its own (the agent is not root)
	freshProc  bool     // a /proc of the PID namespace, which Landlock then lets it read
	cgroupKill bool     // without namespaces: a cgroup per task, killed at its end
	setUser    bool     // switch to uid, gid (the agent is root)
	uid, gid   int      // or, in a user namespace, the agent's ids to map
	dropCaps   bool     // clear the capability bounding set (the agent is root)
	read       []string // AllowRead, absolute
	write      []string // AllowWrite, absolute
}

// newPlan checks s against what this machine supports and resolves it.
func newPlan(s Sandbox, tempRoot string, support Support) (plan, error) {
	var p plan
	root := os.Geteuid() == 0
	if root {
		p.dropCaps = true
		spec := s.User
		if spec == "" {
			spec = DefaultUser
		}
		uid, gid, err := lookupUser(spec)
		if err != nil {
			return p, err
		}
		p.setUser, p.uid, p.gid = true, uid, gid
	} else if s.User != "" {
		uid, gid, err := lookupUser(s.User)
		if err != nil {
			return p, err
		}
		if uid != os.Geteuid() || gid != os.Getegid() {
			return p, fmt.Errorf("%w: running handlers as %s needs root (the agent runs as uid %d); leave the user unset",
				ErrSandboxUnavailable, s.User, os.Geteuid())
		}
	}
	if p.setUser && p.uid != 0 {
		if err := reachable(tempRoot, p.uid, p.gid); err != nil {
			return p, err
		}
	}

	if s.Disabled {
		if len(s.AllowRead) > 0 || len(s.AllowWrite) > 0 {
			return p, errors.New("subprocess: allowed paths need the sandbox, which is disabled")
		}
		p.network, p.cgroupKill = true, support.CgroupKill
		return p, nil
	}
	var err error
	if p.read, err = absPaths(s.AllowRead); err != nil {
		return p, err
	}
	if p.write, err = absPaths(s.AllowWrite); err != nil {
		return p, err
	}
	if support.LandlockABI == 0 {
		return p, unavailable("Landlock is not available (a kernel before 5.13, or landlock missing from the lsm= boot parameter)", support)
	}
	p.landlock = true
	p.network = s.Network
	if support.Namespaces {
		p.namespaces, p.userNS, p.freshProc = true, !root, support.FreshProc
		if p.userNS {
			p.uid, p.gid = os.Geteuid(), os.Getegid()
		}
	} else if !s.Network {
		return p, unavailable("network off needs a network namespace, and this process cannot make one", support)
	} else {
		p.cgroupKill = support.CgroupKill
	}
	return p, nil
}

func unavailable(why string, support Support) error {
	return fmt.Errorf("%w: %s (this machine: %s)", ErrSandboxUnavailable, why, support)
}

// lookupUser resolves "UID[:GID]" or "NAME[:GROUP]". A number needs no
// passwd entry; a number without a group gets the group of the same
// number, a name its primary group.
func lookupUser(spec string) (uid, gid int, err error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	bad := func(err error) (int, int, error) {
		return 0, 0, fmt.Errorf("subprocess: handler user %q: %w", spec, err)
	}
	if uid, err = parseID(name); err != nil {
		u, lerr := user.Lookup(name)
		if lerr != nil {
			return bad(lerr)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	} else {
		gid = uid
	}
	if hasGroup {
		if gid, err = parseID(group); err != nil {
			g, lerr := user.LookupGroup(group)
			if lerr != nil {
				return bad(lerr)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid, nil
}

// parseID reads a uid or gid: a decimal number below 2^32-1 (which means
// "unchanged" to the kernel).
func parseID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == math.MaxUint32 {
		return 0, fmt.Errorf("not an id: %q", s)
	}
	return int(n), nil
}

// reachable checks that uid:gid may search every directory from / down
// to dir, so that the handler can use its temporary directory's absolute
// path (HOME, TMPDIR).
func reachable(dir string, uid, gid int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if !searchable(fi, uid, gid) {
			st, _ := fi.Sys().(*syscall.Stat_t)
			owner := ""
			if st != nil {
				owner = fmt.Sprintf(" owned by %d:%d", st.Uid, st.Gid)
			}
			return fmt.Errorf("subprocess: handlers run as uid %d gid %d cannot reach the temp root %s: %s is mode %04o%s (make it searchable, or choose another temp root)",
				uid, gid, abs, d, fi.Mode().Perm(), owner)
		}
		if d == "/" {
			return nil
		}
	}
}

func searchable(fi fs.FileInfo, uid, gid int) bool {
	perm := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return true
	case int(st.Uid) == uid:
		return perm&0o100 != 0
	case int(st.Gid) == gid:
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

// absPaths makes each allowed path absolute and checks that it exists.
func absPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("subprocess: empty allowed path")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("subprocess: allowed path %s: %w", p, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("subprocess: allowed path: %w", err)
		}
		out = append(out, abs)
	}
	return out, nil
}

// describe says in one line how handlers are isolated, for the agent's log.
func (p plan) describe() string {
	var parts []string
	if !p.landlock {
		parts = append(parts, "sandbox off: the handler has the access of its user")
	} else {
		fsDesc := "Landlock: reads the system paths"
		if len(p.read) > 0 {
			fsDesc += " and " + strings.Join(p.read, ", ")
		}
		fsDesc += "; writes its temp dir"
		if len(p.write) > 0 {
			fsDesc += " and " + strings.Join(p.write, ", ")
		}
		parts = append(parts, fsDesc)
		switch {
		case p.namespaces && p.freshProc:
			parts = append(parts, "own PID, mount and IPC namespaces with a /proc of its own")
		case p.namespaces:
			parts = append(parts, "own PID, mount and IPC namespaces, no /proc")
		default:
			parts = append(parts, "no namespaces (Landlock hides /proc)")
		}
		if p.network {
			parts = append(parts, "network on")
		} else {
			parts = append(parts, "network off")
		}
	}
	switch {
	case p.setUser:
		parts = append(parts, fmt.Sprintf("runs as uid %d gid %d", p.uid, p.gid))
	default:
		parts = append(parts, fmt.Sprintf("runs as the agent's uid %d", os.Geteuid()))
	}
	switch {
	case p.namespaces:
		parts = append(parts, "its PID namespace ends with it")
	case p.cgroupKill:
		parts = append(parts, "its descendants are killed by a subreaper, then by cgroup.kill")
	default:
		parts = append(parts, "its descendants are killed by a subreaper")
	}
	return strings.Join(parts, "; ")
}

// systemReadPaths are what every sandboxed handler may read and execute,
// so that programs, shared libraries, interpreters and TLS and name
// resolution work. Each is a whole tree or one file; patterns are
// expanded and missing ones skipped when the task starts. Nothing here
// holds secrets on an ordinary system (no /etc/shadow, no /home, no
// /root, no /var, no /run, no /tmp).
var systemReadPaths = []string{
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ld.so.preload",
	"/etc/ssl", "/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki", "/etc/crypto-policies",
	"/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/services", "/etc/protocols", "/etc/passwd", "/etc/group",
	"/etc/localtime", "/etc/timezone", "/etc/locale.alias", "/etc/mime.types", "/etc/os-release",
	"/etc/python3*", "/etc/perl",
	"/sys/devices/system/cpu",
}

// systemDevices may be read and written (and ioctl'd).
var systemDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// SystemPaths are the paths (patterns among them) a sandboxed handler may
// read besides its temporary directory and Sandbox.AllowRead, and the
// devices it may also write. With a PID namespace of its own, it may also
// read /proc, which then shows only its task.
func SystemPaths() (read, devices []string) {
	return slices.Clone(systemReadPaths), slices.Clone(systemDevices)
}
