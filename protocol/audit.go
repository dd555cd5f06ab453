package protocol

import "time"

// The audit stream in each tenant account: one record per decision of the
// orchestrator, on AuditSubject(decision), holding the signed event behind
// it (its ce- headers and body) plus these headers.
const (
	AuditStream = "EQ_AUDIT"

	AuditHeaderDecision  = "Eq-Decision"
	AuditHeaderReason    = "Eq-Reason"
	AuditHeaderRequestID = "Eq-Request-Id"
	AuditHeaderTaskID    = "Eq-Task-Id"
	AuditHeaderSubject   = "Eq-Subject"
	// AuditHeaderSecurityLevel is the level the orchestrator ran at when
	// it wrote the record.
	AuditHeaderSecurityLevel = "Eq-Security-Level"
	// AuditHeaderRecovered ("true") marks a record written from the stored
	// task because the record made when it was decided was not confirmed
	// (the orchestrator that decided died first); it holds the
	// orchestrator's signed account of the decision, not the original event.
	AuditHeaderRecovered = "Eq-Recovered"
)

// Decisions recorded in the audit stream (and the last token of their
// subject).
const (
	DecisionAccepted   = "accepted"
	DecisionRefused    = "refused"
	DecisionDuplicate  = "duplicate"
	DecisionDispatched = "dispatched"
	DecisionRetry      = "retry"
	// DecisionLevelChanged records a change of the security level or
	// environment (and the first start): an io.equilateral.security.level_changed.v1.
	DecisionLevelChanged = "level_changed"
)

// TypeSecurityLevelChanged is the orchestrator's signed record of a change
// of its security level or environment, in the audit stream on
// AuditSubject(DecisionLevelChanged).
const TypeSecurityLevelChanged = "io.equilateral.security.level_changed.v1"

// LevelChanged is the data of io.equilateral.security.level_changed.v1.
type LevelChanged struct {
	// From is the level before ("" for the first start at any level).
	From string `json:"from"`
	// To is the level now.
	To string `json:"to"`
	// FromEnvironment and Environment are the environments before and now.
	FromEnvironment string `json:"from_environment"`
	Environment     string `json:"environment"`
	// By says who changed it: the orchestrator that started at the new
	// level, its host and where the setting came from.
	By string `json:"by"`
	// Triggers are the usage thresholds crossed when it changed (the
	// metric, its value, the threshold and the level it calls for).
	Triggers []LevelTrigger `json:"triggers"`
}

// LevelTrigger is one usage threshold crossed (security assess).
type LevelTrigger struct {
	Level     string `json:"level"`
	Metric    string `json:"metric"`
	Value     int    `json:"value"`
	Threshold int    `json:"threshold"`
}

// JetStream API subjects that would rewrite or remove the audit stream;
// the orchestrator role is denied them.
// $JS.API.STREAM.<op>.EQ_AUDIT
var AuditStreamWrites = []string{
	"$JS.API.STREAM.DELETE." + AuditStream,
	"$JS.API.STREAM.PURGE." + AuditStream,
	"$JS.API.STREAM.MSG.DELETE." + AuditStream,
	"$JS.API.STREAM.UPDATE." + AuditStream,
}

// AuditRefusal is what the record of a refused message holds, inside the
// orchestrator's signed io.equilateral.audit.decision.v1 event (its data's
// "refusal" field): never the message itself, only its digest and size,
// the sender and the event's id and type, each clipped to 64 characters.
type AuditRefusal struct {
	// Sender is the verified principal, or "(unverified)" for a message
	// that failed verification.
	Sender string `json:"sender"`
	// ClaimedSource is the source an unverified message claimed.
	ClaimedSource string `json:"claimed_source,omitempty"`
	Subject       string `json:"subject"`
	EventID       string `json:"event_id,omitempty"`
	EventType     string `json:"event_type,omitempty"`
	// Size is the message's size in bytes (headers and data); Digest the
	// SHA-256 of its data, hex.
	Size   int    `json:"size"`
	Digest string `json:"digest"`
	// Count is how many refusals the record stands for: 1 for the first of
	// a sender's refusals for one reason in a 10-second window; for the
	// summary written when the window closes, the number that followed
	// (Since and Until bound them; the other fields are the first's).
	Count int       `json:"count"`
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// AuditDecision is the data of the orchestrator's own audit records
// (io.equilateral.audit.decision.v1): decisions it took without an event
// behind them, and refusals.
type AuditDecision struct {
	Decision string        `json:"decision"`
	Reason   string        `json:"reason,omitempty"`
	TaskID   string        `json:"task_id,omitempty"`
	Refusal  *AuditRefusal `json:"refusal,omitempty"`
}
