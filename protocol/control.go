package protocol

// Control messages: the orchestrator's word to one agent, on
// eq.ctl.<agent>.<kind>. Only the orchestrator may publish there.

// Cancel is the data of io.equilateral.control.cancel.v1 on
// eq.ctl.<agent>.cancel: stop working on an attempt. The agent stops the
// handler of that attempt (if it still runs it) and reports nothing more
// about it.
type Cancel struct {
	TaskID string `json:"task_id"`
	// Attempt is the attempt to stop; an agent holding a later attempt of
	// the task keeps it.
	Attempt int `json:"attempt"`
	// Message says why: cancelled by the submitter, deadline exceeded, the
	// attempt timed out, the agent is at its concurrency limit...
	Message string `json:"message"`
}
