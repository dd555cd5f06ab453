//go:build !linux

package subprocess

import (
	"errors"
	"syscall"
)

// The sandbox, the shim's first stage and Probe exist on Linux only.
// Elsewhere New refuses (Probe finds no Landlock), and an agent that
// disables the sandbox still cannot run handlers.

var errNotLinux = errors.New("subprocess: handlers can only be run on Linux")

func platformSupported() error { return errNotLinux }

const shimProbeMarker = "__equilateral-exec-shim-probe"

func probe() Support { return Support{Problem: "not Linux"} }

func runProbe() { panic(errNotLinux) }

func runInit(shimRequest) error { return errNotLinux }

type ruleset struct{}

var noRuleset ruleset

func newRuleset(shimRequest, string) (ruleset, error) { return noRuleset, errNotLinux }

func confine(plan, ruleset) error { return errNotLinux }

func shimAttr(plan) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// ProtectAgent does nothing outside Linux.
func ProtectAgent() error { return nil }

type taskCgroup struct{}

func newTaskCgroup() *taskCgroup { return nil }

func (*taskCgroup) apply(*syscall.SysProcAttr) {}

func (*taskCgroup) kill() error { return nil }

func (*taskCgroup) remove() {}
