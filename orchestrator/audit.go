package orchestrator

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/bus"
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
//
// A final decision is on record exactly once, even when the orchestrator
// dies between storing the final state and writing its record: final
// records carry the message id <task>.final (the stream drops a second
// one within auditDedupeWindow), and every replica's scheduler, which sees
// each final state the store takes, has the record written from the
// stored task when the one in flight is not confirmed within auditGrace.
type auditor struct {
	js jetstream.JetStream
	// nc sends the records nobody waits for (every one but the final),
	// without asking JetStream for an ack: one message less each.
	nc     *nats.Conn
	log    *slog.Logger
	seal   func(ctx context.Context, subject string, e *event.Event) (*nats.Msg, error)
	source string
	level  string // the security level, on every record
	// usageOnly: below enhanced (security.Audit) only accepted tasks are
	// recorded, which is what `security assess` counts; the decisions
	// after them are not.
	usageOnly bool

	mu      sync.Mutex
	pending map[string]jetstream.PubAckFuture // final records in flight, by task
	due     []expectedFinal
}

// expectedFinal is a final state seen in the store whose record is due.
type expectedFinal struct {
	at       time.Time
	taskID   string
	decision string
	reason   string
}

const (
	// auditDedupeWindow is how long the audit stream remembers message
	// ids (its Duplicates setting, the server's default).
	auditDedupeWindow = 2 * time.Minute
	// auditGrace is how long a final record may take to be confirmed
	// before it is written from the stored task.
	auditGrace = 2 * time.Second
)

func finalRecordID(taskID string) string { return taskID + ".final" }

// auditDecision is the data of the orchestrator's own decision records.
type auditDecision = protocol.AuditDecision

func (a *auditor) selfSigned(ctx context.Context, e auditEntry) *nats.Msg {
	if a.seal == nil {
		return nil
	}
	ev, err := bus.NewEvent(a.source, protocol.TypeAuditDecision, e.taskID, auditDecision{Decision: e.decision, Reason: e.reason, TaskID: e.taskID, Refusal: e.refusal})
	if err != nil {
		a.log.ErrorContext(ctx, "audit record not built", "decision", e.decision, "task", e.taskID, "error", err)
		return nil
	}
	msg, err := a.seal(ctx, protocol.AuditSubject(e.decision), ev)
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
	// recovered: written from the stored task after the record of the
	// decision was not confirmed (see reconcile).
	recovered bool
	// refusal describes a refused message; its record is the
	// orchestrator's signed account, never the message itself.
	refusal *RefusalRecord
}

// record appends asynchronously: the hot path never waits for the audit
// write, and a failed write is logged (never with the payload).
func (a *auditor) record(ctx context.Context, e auditEntry) {
	if a.usageOnly && e.decision != decisionAccepted {
		return
	}
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
	if e.refusal != nil {
		msg.Header.Set(protocol.AuditHeaderSubject, e.refusal.Subject)
	}
	msg.Header.Set(protocol.AuditHeaderDecision, e.decision)
	msg.Header.Set(protocol.AuditHeaderSecurityLevel, a.level)
	if e.recovered {
		msg.Header.Set(protocol.AuditHeaderRecovered, "true")
	}
	if e.reason != "" {
		msg.Header.Set(protocol.AuditHeaderReason, e.reason)
	}
	if e.requestID != "" {
		msg.Header.Set(protocol.AuditHeaderRequestID, e.requestID)
	}
	if e.taskID != "" {
		msg.Header.Set(protocol.AuditHeaderTaskID, e.taskID)
	}
	final := e.taskID != "" && protocol.State(e.decision).Final()
	if final {
		msg.Header.Set(jetstream.MsgIDHeader, finalRecordID(e.taskID))
	}
	if !final && a.nc != nil {
		// Only a final record is reconciled from the store when its ack
		// does not come; the others are written as the stream takes them.
		if err := a.nc.PublishMsg(msg); err != nil {
			a.log.ErrorContext(ctx, "audit write failed", "decision", e.decision, "task", e.taskID, "error", err)
		}
		return
	}
	ack, err := a.js.PublishMsgAsync(msg)
	if err != nil {
		a.log.ErrorContext(ctx, "audit write failed", "decision", e.decision, "task", e.taskID, "error", err)
		return
	}
	if final && !e.recovered {
		a.mu.Lock()
		if a.pending == nil {
			a.pending = map[string]jetstream.PubAckFuture{}
		}
		a.pending[e.taskID] = ack
		a.mu.Unlock()
	}
}

// expectFinal notes a final state seen in the store: its record is
// checked after auditGrace. Final states older than the dedupe window
// allows for (seen when a watch starts) are left alone: a record written
// now could no longer be told from one written then.
func (a *auditor) expectFinal(task *Task, now time.Time) {
	if a.usageOnly || now.Sub(task.UpdatedAt) > auditDedupeWindow/2 {
		return
	}
	a.mu.Lock()
	a.due = append(a.due, expectedFinal{at: now.Add(auditGrace), taskID: task.ID, decision: string(task.State), reason: task.Error})
	a.mu.Unlock()
}

// reconcile writes the final records that are due and not confirmed, from
// the stored task; a record that did arrive makes the stream drop it.
func (a *auditor) reconcile(ctx context.Context, now time.Time) {
	a.mu.Lock()
	var ready []expectedFinal
	keep := a.due[:0]
	for _, d := range a.due {
		if now.Before(d.at) {
			keep = append(keep, d)
			continue
		}
		if ack, ok := a.pending[d.taskID]; ok {
			select {
			case <-ack.Ok():
				delete(a.pending, d.taskID)
				continue // confirmed
			case <-ack.Err():
				delete(a.pending, d.taskID)
			default:
				if now.Sub(d.at) < auditDedupeWindow/4 {
					d.at = now.Add(auditGrace) // still in flight: look again
					keep = append(keep, d)
					continue
				}
				delete(a.pending, d.taskID)
			}
		}
		ready = append(ready, d)
	}
	a.due = keep
	a.mu.Unlock()
	for _, d := range ready {
		reason := "recorded from the stored task: the record of the orchestrator that decided it was not confirmed"
		if d.reason != "" {
			reason = d.reason + "; " + reason
		}
		a.record(ctx, auditEntry{decision: d.decision, reason: reason, taskID: d.taskID, recovered: true})
	}
}
