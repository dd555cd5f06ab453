package protocol

// Reason says why the orchestrator turned a message down. It travels in
// Refused.Reason: in the reply to a request (io.equilateral.task.refused.v1)
// and in the refusal sent to an agent about its report or heartbeat
// (io.equilateral.report.refused.v1 on eq.ctl.<agent>.refused).
type Reason string

// Every reason the orchestrator gives. Reasons are stable wire values: new
// ones may be added, none is renamed.
const (
	// ReasonMalformed: the message is not what its subject takes (not a
	// CloudEvent, the wrong event type, a body that is not the documented
	// JSON: an unknown or missing field, a wrong type). Fix the sender.
	ReasonMalformed Reason = "malformed"
	// ReasonUnsigned: the event carries no signature.
	ReasonUnsigned Reason = "unsigned"
	// ReasonBadSignature: the signature does not verify over the event.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonUnknownSigner: the signing key is not a key of this tenant's
	// principals (or it was revoked).
	ReasonUnknownSigner Reason = "unknown_signer"
	// ReasonSignerMismatch: the key is not the one registered to the
	// event's source, or the subject belongs to another principal.
	ReasonSignerMismatch Reason = "signer_mismatch"
	// ReasonReplay: an event with this source and id was received before,
	// or its time is outside the allowed clock skew. Send a new event.
	ReasonReplay Reason = "replay"
	// ReasonTooLarge: the event or the task's input is over a size bound.
	ReasonTooLarge Reason = "too_large"
	// ReasonUnknownCapability: no agent of the tenant serves it.
	ReasonUnknownCapability Reason = "unknown_capability"
	// ReasonForbidden: the sender may not do this (the policy's allowed
	// submitters, a reply subject that is not its own inbox, a report on an
	// attempt it does not hold, a subtask of a task it does not run).
	ReasonForbidden Reason = "forbidden"
	// ReasonNotFound: no such task, or not the sender's to see.
	ReasonNotFound Reason = "not_found"
	// ReasonUnavailable: the orchestrator could not read or write its
	// state. Retry with a new event id.
	ReasonUnavailable Reason = "unavailable"
	// ReasonRateLimited: the sender's (or the tenant's) rate is spent.
	// Slow down and retry.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonOverCapacity: the tenant has as many unfinished tasks as its
	// policy allows. Retry when some end.
	ReasonOverCapacity Reason = "over_capacity"
	// ReasonSchemaInvalid: the task's input does not match the
	// capability's input schema.
	ReasonSchemaInvalid Reason = "schema_invalid"
	// ReasonStale: a report about an attempt that is over (the task was
	// retried, timed out, cancelled or finished). Stop working on it.
	ReasonStale Reason = "stale"
)

// Reasons lists every reason, in the order the docs give them.
func Reasons() []Reason {
	return []Reason{
		ReasonMalformed, ReasonUnsigned, ReasonBadSignature, ReasonUnknownSigner,
		ReasonSignerMismatch, ReasonReplay, ReasonTooLarge, ReasonUnknownCapability,
		ReasonForbidden, ReasonNotFound, ReasonUnavailable, ReasonRateLimited,
		ReasonOverCapacity, ReasonSchemaInvalid, ReasonStale,
	}
}

// Retryable reports whether sending the same request again (as a new
// event) may succeed without changing it.
func (r Reason) Retryable() bool {
	switch r {
	case ReasonUnavailable, ReasonRateLimited, ReasonOverCapacity:
		return true
	}
	return false
}
