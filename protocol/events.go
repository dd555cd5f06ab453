package protocol

import (
	"fmt"
	"strings"
)

// Event types are versioned and namespaced,
// io.equilateral.<noun>.<verb>.v<major>, and written out as constants so
// that each can be found by its value. A body never gains or loses a
// member within a major version: receivers read bodies strictly.
const eventTypePrefix = "io.equilateral."

// Task lifecycle event types (PRODUCT.md "Task lifecycle").
const (
	TypeTaskSubmitted    = "io.equilateral.task.submitted.v1"
	TypeTaskDispatched   = "io.equilateral.task.dispatched.v1"
	TypeTaskRunning      = "io.equilateral.task.running.v1"
	TypeTaskProgress     = "io.equilateral.task.progress.v1"
	TypeTaskCompleted    = "io.equilateral.task.completed.v1"
	TypeTaskFailed       = "io.equilateral.task.failed.v1"
	TypeTaskTimedOut     = "io.equilateral.task.timed_out.v1"
	TypeTaskCancelled    = "io.equilateral.task.cancelled.v1"
	TypeTaskDeadLettered = "io.equilateral.task.dead_lettered.v1"
)

// ValidateEventType checks the io.equilateral.<a>.<b>[...].v<N> shape.
func ValidateEventType(t string) error {
	rest, ok := strings.CutPrefix(t, eventTypePrefix)
	if !ok || len(t) > 128 {
		return fmt.Errorf("event type %q: want io.equilateral.<noun>.<verb>.v<N>", printable(t))
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 3 {
		return fmt.Errorf("event type %q: want io.equilateral.<noun>.<verb>.v<N>", printable(t))
	}
	for _, p := range parts[:len(parts)-1] {
		if ValidateName("event type part", p) != nil {
			return fmt.Errorf("event type %q: %q is not a lowercase token", printable(t), printable(p))
		}
	}
	version := parts[len(parts)-1]
	if len(version) < 2 || version[0] != 'v' || strings.Trim(version[1:], "0123456789") != "" {
		return fmt.Errorf("event type %q: must end in a version such as .v1", printable(t))
	}
	return nil
}
