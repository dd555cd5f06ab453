package subprocess

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The shim's command line: the marker of its stage, "key=value" for each
// setting, then shimEnd, the handler's absolute path and its argv.
const (
	argCPU       = "cpu"
	argMemory    = "as"
	argOpenFiles = "nofile"
	argProcesses = "nproc"
	argErrFD     = "errfd"
	argTempDir   = "tmp"      // the task's directory, which the handler may write
	argLandlock  = "landlock" // 1: restrict with Landlock
	argNetwork   = "net"      // 1: keep the network
	argNS        = "ns"       // 1: in new PID, mount and IPC namespaces
	argProc      = "proc"     // 1: mount a /proc of the PID namespace
	argUID       = "uid"      // switch to this uid (with gid)
	argGID       = "gid"      //
	argUserNS    = "userns"   // 1: in a new user namespace, where uid and gid are to be mapped
	argDropCaps  = "dropcaps" // 1: clear the capability bounding set
	argRead      = "ro"       // an allowed path, read-only (repeated)
	argWrite     = "rw"       // an allowed path, read-write (repeated)
	shimEnd      = "--"
)

// shimArgs renders l for the shim's command line.
func (l Limits) shimArgs() []string {
	var args []string
	add := func(key string, v uint64) {
		if v > 0 {
			args = append(args, key+"="+strconv.FormatUint(v, 10))
		}
	}
	add(argCPU, l.cpuSeconds())
	add(argMemory, l.Memory)
	add(argOpenFiles, l.OpenFiles)
	add(argProcesses, l.Processes)
	return args
}

// shimArgs renders p for the shim's command line.
func (p plan) shimArgs() []string {
	var args []string
	flag := func(key string, on bool) {
		if on {
			args = append(args, key+"=1")
		}
	}
	flag(argLandlock, p.landlock)
	flag(argNetwork, p.network)
	flag(argNS, p.namespaces)
	flag(argProc, p.freshProc)
	flag(argDropCaps, p.dropCaps)
	flag(argUserNS, p.userNS)
	if p.setUser || p.userNS {
		args = append(args, argUID+"="+strconv.Itoa(p.uid), argGID+"="+strconv.Itoa(p.gid))
	}
	for _, path := range p.read {
		args = append(args, argRead+"="+path)
	}
	for _, path := range p.write {
		args = append(args, argWrite+"="+path)
	}
	return args
}

// shimRequest is what the shim was asked to do.
type shimRequest struct {
	limits  Limits
	plan    plan   // the parts of it the shim needs
	tempDir string // the task's directory
	errFD   int    // where to report a failure; 0 = stderr
	program string
	argv    []string
}

// parseShimArgs reads the shim's arguments (after the marker):
// "key=value"..., "--", the handler's absolute path, then its argv
// (argv[0] as the operator wrote it).
func parseShimArgs(args []string) (shimRequest, error) {
	var req shimRequest
	hasUID := false
	for i, arg := range args {
		if arg == shimEnd {
			rest := args[i+1:]
			if len(rest) < 2 {
				return req, errors.New("no program after --")
			}
			req.program, req.argv = rest[0], rest[1:]
			// In a user namespace uid and gid are the agent's own, to map.
			req.plan.setUser = hasUID && !req.plan.userNS
			return req, nil
		}
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			return req, fmt.Errorf("bad argument %q", arg)
		}
		switch key {
		case argTempDir:
			req.tempDir = value
			continue
		case argRead:
			req.plan.read = append(req.plan.read, value)
			continue
		case argWrite:
			req.plan.write = append(req.plan.write, value)
			continue
		}
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return req, fmt.Errorf("bad argument %q", arg)
		}
		switch key {
		case argCPU:
			req.limits.CPUTime = time.Duration(n) * time.Second
		case argMemory:
			req.limits.Memory = n
		case argOpenFiles:
			req.limits.OpenFiles = n
		case argProcesses:
			req.limits.Processes = n
		case argErrFD:
			req.errFD = int(n)
		case argLandlock:
			req.plan.landlock = n == 1
		case argNetwork:
			req.plan.network = n == 1
		case argNS:
			req.plan.namespaces = n == 1
		case argProc:
			req.plan.freshProc = n == 1
		case argDropCaps:
			req.plan.dropCaps = n == 1
		case argUserNS:
			req.plan.userNS = n == 1
		case argUID:
			req.plan.uid, hasUID = int(n), true
		case argGID:
			req.plan.gid = int(n)
		default:
			return req, fmt.Errorf("unknown argument %q", arg)
		}
	}
	return req, errors.New("missing --")
}
