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

// shimMarker is the hidden first argument that turns a program using this
// package into the exec shim.
const shimMarker = "__equilateral-exec-shim"

// shimErrFD is the descriptor on which the shim reports why it could not
// exec the handler (the Runner's first ExtraFiles entry). It is
// close-on-exec, so the Runner reads EOF once the handler is running.
const shimErrFD = 3

// shimFailed is the shim's exit status when it cannot exec the handler
// (the shell's "command not found").
const shimFailed = 127

// shimWired records that RunShimIfRequested ran, so New can refuse to
// start handlers through a program that would not act as the shim.
var shimWired atomic.Bool

// RunShimIfRequested must be the first thing main (and TestMain of a
// package whose tests run handlers) does. In the agent it returns at once.
// When the Runner re-executes the program as the exec shim (os.Args[1] is
// the shim marker), it never returns: it sets the resource limits on its
// own process and execs the handler, or exits with status 127 after
// reporting why it could not.
func RunShimIfRequested() {
	shimWired.Store(true)
	if len(os.Args) < 2 || os.Args[1] != shimMarker {
		return
	}
	req, err := parseShimArgs(os.Args[2:])
	if err == nil {
		err = execHandler(req) // returns only on failure
	}
	reportShimFailure(req.errFD, err)
	os.Exit(shimFailed)
}

// execHandler sets the limits and replaces the shim with the handler.
//
// Once the memory limit is set, this process may already map more than
// it allows (a large Go binary reserves plenty), so the Go runtime must not
// map anything more: everything is allocated before, the collector is off,
// and execve is called directly, which allocates nothing. (syscall.Exec
// would allocate, and would also restore the open-files limit Go saved.)
func execHandler(req shimRequest) error {
	path, err := exec.LookPath(req.program)
	if err != nil {
		return err
	}
	if req.errFD > 0 {
		syscall.CloseOnExec(req.errFD)
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
