package orchestrator

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Audit record headers, besides the signed event's own ce- headers.
const (
	headerDecision  = "Eq-Decision"
	headerReason    = "Eq-Reason"
	headerRequestID = "Eq-Request-Id"
	headerTaskID    = "Eq-Task-Id"
	headerSubject   = "Eq-Subject"
)

// Decisions recorded in the audit stream (also its subject suffix).
const (
	decisionAccepted   = "accepted"
	decisionRefused    = "refused"
	decisionDuplicate  = "duplicate"
	decisionDispatched = "dispatched"
	decisionRunning    = "running"
	decisionCompleted  = "completed"
	decisionFailed     = "failed"
	decisionRetry      = "retry"
	decisionTimedOut   = "timed_out"
	decisionCancelled  = "cancelled"
	decisionDeadLetter = "dead_lettered"
)

// auditor appends records to the tenant's audit stream. A record is the
// signed event behind the decision, verbatim (its ce- headers and body),
// plus Eq- headers saying what was decided and why; `audit verify`
// re-verifies every record's signature offline.
type auditor struct {
	js  jetstream.JetStream
	log *slog.Logger
}

type auditEntry struct {
	decision  string
	reason    string
	requestID string
	taskID    string
	// event is the signed message as it travelled (nil for a decision
	// without one, such as a timeout).
	event *nats.Msg
}

// record appends asynchronously: the hot path never waits for the audit
// write, and a failed write is logged (never with the payload).
func (a *auditor) record(ctx context.Context, e auditEntry) {
	msg := nats.NewMsg(protocol.AuditSubject(e.decision))
	if e.event != nil {
		for k, v := range e.event.Header {
			msg.Header[k] = v
		}
		msg.Data = e.event.Data
		msg.Header.Set(headerSubject, e.event.Subject)
	}
	msg.Header.Set(headerDecision, e.decision)
	if e.reason != "" {
		msg.Header.Set(headerReason, e.reason)
	}
	if e.requestID != "" {
		msg.Header.Set(headerRequestID, e.requestID)
	}
	if e.taskID != "" {
		msg.Header.Set(headerTaskID, e.taskID)
	}
	if _, err := a.js.PublishMsgAsync(msg); err != nil {
		a.log.ErrorContext(ctx, "audit write failed", "decision", e.decision, "task", e.taskID, "error", err)
	}
}
