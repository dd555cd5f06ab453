package subprocess

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// ruleset is a Landlock ruleset ready to enforce.
type ruleset struct {
	fd    int
	flags uint32
}

var noRuleset = ruleset{fd: -1}

// newRuleset builds the handler's Landlock ruleset, with every access
// right the kernel knows handled (the newest ABI go-landlock knows, down
// to the kernel's): read and execute the system paths, AllowRead and the
// program; read, write, create and remove in the temporary directory and
// AllowWrite (device nodes excepted); with the network off, no TCP bind
// or connect (and, from ABI 10, no UDP); signals and abstract Unix
// sockets only within the sandbox (ABI 6).
func newRuleset(req shimRequest, program string) (ruleset, error) {
	cfg := landlock.V11.BestEffort()
	if req.plan.network {
		cfg.HandledAccessNet = 0
	}
	write := landlock.V11.HandledAccessFS &^ (ll.AccessFSMakeChar | ll.AccessFSMakeBlock)
	if landlockABI() < 2 {
		// go-landlock would give up on Landlock altogether for a rule
		// with "refer" on ABI 1, where moving files between directories
		// is refused anyway.
		write &^= ll.AccessFSRefer
	}

	var rules []landlock.Rule
	for _, path := range systemPaths(req.plan.freshProc) {
		if rule, ok := readRule(path); ok {
			rules = append(rules, rule)
		}
	}
	for _, dev := range systemDevices {
		rules = append(rules, landlock.RWFiles(dev).WithIoctlDev().IgnoreIfMissing())
	}
	rules = append(rules, landlock.ROFiles(program).IgnoreIfMissing())
	for _, path := range req.plan.read {
		rule, ok := readRule(path)
		if !ok {
			return noRuleset, fmt.Errorf("allowed path %s is gone", path)
		}
		rules = append(rules, rule)
	}
	for _, path := range append([]string{req.tempDir}, req.plan.write...) {
		fi, err := os.Stat(path)
		if err != nil {
			return noRuleset, fmt.Errorf("writable path: %w", err)
		}
		if fi.IsDir() {
			rules = append(rules, landlock.PathAccess(write, path))
		} else {
			rules = append(rules, landlock.RWFiles(path))
		}
	}

	fd, flags, err := cfg.NewRulesetFD(rules...)
	if err != nil {
		return noRuleset, fmt.Errorf("landlock: %w", err)
	}
	if fd < 0 {
		return noRuleset, errors.New("landlock: not available")
	}
	return ruleset{fd: fd, flags: flags}, nil
}

// readRule lets the handler read (and execute) path: a whole directory
// tree or one file. It is false if path does not exist.
func readRule(path string) (landlock.Rule, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false
	}
	if fi.IsDir() {
		return landlock.RODirs(path), true
	}
	return landlock.ROFiles(path), true
}

// systemPaths are systemReadPaths with their patterns expanded, and /proc
// when it is the task's own.
func systemPaths(freshProc bool) []string {
	var paths []string
	for _, p := range systemReadPaths {
		matches, _ := filepath.Glob(p)
		paths = append(paths, matches...)
	}
	if freshProc {
		paths = append(paths, "/proc")
	}
	return paths
}
