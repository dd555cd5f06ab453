package protocol

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
)

// JetStream API subjects that would rewrite or remove the audit stream;
// the orchestrator role is denied them.
// $JS.API.STREAM.<op>.EQ_AUDIT
var AuditStreamWrites = []string{
	"$JS.API.STREAM.DELETE." + AuditStream,
	"$JS.API.STREAM.PURGE." + AuditStream,
	"$JS.API.STREAM.MSG.DELETE." + AuditStream,
	"$JS.API.STREAM.UPDATE." + AuditStream,
}
