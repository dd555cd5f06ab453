package protocol

import (
	"fmt"
	"strings"
)

// Event types are versioned and namespaced:
// io.equilateral.<noun>.<verb>.v<major>
const eventTypePrefix = "io.equilateral."

// EventType builds a version-1 event type.
// io.equilateral.<noun>.<verb>.v1
func EventType(noun, verb string) string { return eventTypePrefix + noun + "." + verb + ".v1" }

// Task lifecycle event types (PRODUCT.md "Task lifecycle").
var (
	TypeTaskSubmitted    = EventType("task", "submitted")
	TypeTaskDispatched   = EventType("task", "dispatched")
	TypeTaskRunning      = EventType("task", "running")
	TypeTaskProgress     = EventType("task", "progress")
	TypeTaskCompleted    = EventType("task", "completed")
	TypeTaskFailed       = EventType("task", "failed")
	TypeTaskTimedOut     = EventType("task", "timed_out")
	TypeTaskCancelled    = EventType("task", "cancelled")
	TypeTaskDeadLettered = EventType("task", "dead_lettered")
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
