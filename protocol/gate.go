package protocol

import "encoding/json"

// Output gates: a gated capability's result is released only when the
// gate's capability approves it. The gate runs as an ordinary task whose
// input is a GateRequest and whose output must be a GateVerdict.

// GateRequest is the input of a gate task.
type GateRequest struct {
	// Capability is the gated capability that produced Output.
	Capability string `json:"capability"`
	// Input is the gated task's input.
	Input json.RawMessage `json:"input"`
	// Output is the result held back until the verdict.
	Output json.RawMessage `json:"output"`
	// TaskID is the gated task.
	TaskID string `json:"task_id"`
}

// GateVerdict is the output a gate task must complete with. Anything else
// (or a failed gate task) holds the result back for good.
type GateVerdict struct {
	Approved bool `json:"approved"`
	// Findings say why, shown to the submitter when rejected.
	Findings []string `json:"findings,omitempty"`
}
