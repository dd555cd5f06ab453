package subprocess

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Markers: the hidden first argument that turns a program using this
// package into the exec shim, first stage (the task's init and reaper)
// or second stage (confines itself and becomes the handler).
const (
	shimMarker     = "__equilateral-exec-shim"
	shimExecMarker = "__equilateral-exec-shim-exec"
)

// Descriptors the Runner passes to the first stage (its ExtraFiles).
const (
	// shimErrFD is where either stage reports why the handler could not
	// start. It is close-on-exec in the second stage, so once the handler
	// runs only the first stage holds it, until it exits.
	shimErrFD = 3
	// statusFD is where the first stage reports how the handler ended.
	statusFD = 4
	// controlFD is how the Runner tells the first stage to stop the task:
	// one byte, 'T' for SIGTERM, 'K' to kill it all and exit; EOF (the
	// agent is gone) is 'K'.
	controlFD = 5
)

// shimFailed is the shim's exit status when it cannot exec the handler
// (the shell's "command not found").
const shimFailed = 127

// shimWired records that RunShimIfRequested ran, so New can refuse to
// start handlers through a program that would not act as the shim.
var shimWired atomic.Bool

// RunShimIfRequested must be the first thing main (and TestMain of a
// package whose tests run handlers) does. In the agent it returns at once.
// When the Runner re-executes the program as the exec shim (os.Args[1] is
// a shim marker), it never returns: the first stage sets up the task's
// namespaces, starts the second, waits for the handler and kills what it
// left; the second sets the resource limits and the sandbox on its own
// process and execs the handler, or exits with status 127 after reporting
// why it could not.
func RunShimIfRequested() {
	shimWired.Store(true)
	if len(os.Args) < 2 {
		return
	}
	var run func(shimRequest) error
	switch os.Args[1] {
	case shimMarker:
		run = runInit
	case shimExecMarker:
		run = execHandler
	case shimProbeMarker:
		runProbe() // exits
	default:
		return
	}
	req, err := parseShimArgs(os.Args[2:])
	if err == nil {
		err = run(req) // returns only on failure
	}
	reportShimFailure(req.errFD, err)
	os.Exit(shimFailed)
}

// execHandler sets the limits and the sandbox and replaces the shim with
// the handler.
//
// Once the memory limit is set, this process may already map more than
// it allows (a large Go binary reserves plenty), so the Go runtime must not
// map anything more: everything is allocated before (the Landlock ruleset
// included), the collector is off, and the rest is raw system calls on one
// locked thread, which execve then turns into the handler. (syscall.Exec
// would allocate, and would also restore the open-files limit Go saved.)
// Landlock, no_new_privs and the user switch are per thread here, which is
// enough: execve keeps only the calling thread.
func execHandler(req shimRequest) error {
	path, err := exec.LookPath(req.program)
	if err != nil {
		return err
	}
	if req.errFD > 0 {
		syscall.CloseOnExec(req.errFD)
	}
	ruleset := noRuleset
	if req.plan.landlock {
		if ruleset, err = newRuleset(req, path); err != nil {
			return err
		}
	}
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(req.argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(os.Environ())
	if err != nil {
		return err
	}
	debug.SetGCPercent(-1)
	runtime.LockOSThread()
	if err := req.limits.apply(); err != nil {
		return err
	}
	if err := confine(req.plan, ruleset); err != nil {
		return err
	}
	_, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE,
		uintptr(unsafe.Pointer(pathp)),
		uintptr(unsafe.Pointer(&argvp[0])),
		uintptr(unsafe.Pointer(&envp[0])))
	return fmt.Errorf("exec %s: %w", path, errno)
}

// reportShimFailure tells the Runner (through errFD) or a person (on
// stderr) why the handler did not start.
func reportShimFailure(errFD int, err error) {
	msg := "equilateral exec shim: " + err.Error() + "\n"
	if errFD > 0 {
		if _, werr := os.NewFile(uintptr(errFD), "shim-errors").WriteString(msg); werr == nil {
			return
		}
	}
	fmt.Fprint(os.Stderr, msg)
}
