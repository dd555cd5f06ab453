package orchestrator

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Decisions recorded in the audit stream; the lifecycle states name the
// rest (completed, failed, timed_out, cancelled, dead_lettered, running).
const (
	decisionAccepted   = protocol.DecisionAccepted
	decisionRefused    = protocol.DecisionRefused
	decisionDuplicate  = protocol.DecisionDuplicate
	decisionDispatched = protocol.DecisionDispatched
	decisionRetry      = protocol.DecisionRetry
)

// auditor appends records to the tenant's audit stream. A record is the
// signed event behind the decision, verbatim (its ce- headers and body),
// plus Eq- headers saying what was decided and why; `audit verify`
// re-verifies every record's signature offline.
type auditor struct {
	js     jetstream.JetStream
	log    *slog.Logger
	seal   func(ctx context.Context, subject string, e *event.Event) (*nats.Msg, error)
	source string
}

// auditDecision is the data of the orchestrator's own decision records.
type auditDecision struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	TaskID   string `json:"task_id,omitempty"`
}

func (a *auditor) selfSigned(ctx context.Context, e auditEntry) *nats.Msg {
	if a.seal == nil {
		return nil
	}
	ev := event.New()
	ev.SetID(newID())
	ev.SetSource(a.source)
	ev.SetType(protocol.TypeAuditDecision)
	ev.SetTime(time.Now())
	if e.taskID != "" {
		ev.SetExtension(protocol.ExtTaskID, e.taskID)
	}
	if err := ev.SetData(event.ApplicationJSON, auditDecision{Decision: e.decision, Reason: e.reason, TaskID: e.taskID}); err != nil {
		return nil
	}
	msg, err := a.seal(ctx, protocol.AuditSubject(e.decision), &ev)
	if err != nil {
		a.log.WarnContext(ctx, "audit record not signed", "decision", e.decision, "task", e.taskID, "error", err)
		return nil
	}
	return msg
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
	event := e.event
	if event == nil {
		// A decision of the orchestrator's own (a timeout, a flow step):
		// it signs a record of it, so every record verifies.
		event = a.selfSigned(ctx, e)
	}
	if event != nil {
		for k, v := range event.Header {
			// Only the event's own headers: a sender's Nats-* headers would
			// steer JetStream (dedupe, expectations) and could keep the
			// record out; Eq-* are ours to set.
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "nats-") || strings.HasPrefix(lk, "eq-") {
				continue
			}
			msg.Header[k] = v
		}
		msg.Data = event.Data
		msg.Header.Set(protocol.AuditHeaderSubject, event.Subject)
	}
	msg.Header.Set(protocol.AuditHeaderDecision, e.decision)
	if e.reason != "" {
		msg.Header.Set(protocol.AuditHeaderReason, e.reason)
	}
	if e.requestID != "" {
		msg.Header.Set(protocol.AuditHeaderRequestID, e.requestID)
	}
	if e.taskID != "" {
		msg.Header.Set(protocol.AuditHeaderTaskID, e.taskID)
	}
	if _, err := a.js.PublishMsgAsync(msg); err != nil {
		a.log.ErrorContext(ctx, "audit write failed", "decision", e.decision, "task", e.taskID, "error", err)
	}
}
