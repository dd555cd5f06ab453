package audit

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// StreamName is the audit stream in each tenant account.
const StreamName = protocol.AuditStream

// Headers the orchestrator adds to each record, besides the event's own.
const (
	HeaderDecision  = protocol.AuditHeaderDecision
	HeaderReason    = protocol.AuditHeaderReason
	HeaderRequestID = protocol.AuditHeaderRequestID
	HeaderTaskID    = protocol.AuditHeaderTaskID
	HeaderSubject   = protocol.AuditHeaderSubject
)

// DecisionRefused is the decision of a request or event turned down.
const DecisionRefused = protocol.DecisionRefused

// maxRecordSize bounds a record when it is decoded: far above any event a
// tenant can send (NATS caps a message at 64 MiB), so no real record is
// refused for its size.
const maxRecordSize = 64 << 20

// Record is one audit record without its payload.
type Record struct {
	Sequence  uint64    `json:"sequence"`
	Time      time.Time `json:"time"` // when the stream stored it
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	TaskID    string    `json:"task_id,omitempty"`
	// Subject is where the event travelled (eq.tasks.submit, eq.cap.code…).
	Subject string `json:"subject,omitempty"`
	// The event behind the decision; empty for a decision the orchestrator
	// took on its own (a timeout, a retry). Unverified: Verify checks them.
	EventID     string `json:"event_id,omitempty"`
	EventSource string `json:"event_source,omitempty"`
	EventType   string `json:"event_type,omitempty"`
	// EventTraceParent is the event's W3C trace context (the span that
	// sent it), when it was traced.
	EventTraceParent string `json:"event_traceparent,omitempty"`
	// Refusal is set on the record of a refused message: the record is the
	// orchestrator's signed account of it (never the message), and the
	// Event fields above name the refused event, as it claimed.
	Refusal *protocol.AuditRefusal `json:"refusal,omitempty"`
}

// newRecord reads a record's headers; msg is the stored message.
func newRecord(msg *nats.Msg, meta *jetstream.MsgMetadata) Record {
	h := msg.Header
	r := Record{
		Sequence:  meta.Sequence.Stream,
		Time:      meta.Timestamp.UTC(),
		Decision:  h.Get(HeaderDecision),
		Reason:    h.Get(HeaderReason),
		RequestID: h.Get(HeaderRequestID),
		TaskID:    h.Get(HeaderTaskID),
		Subject:   h.Get(HeaderSubject),
	}
	if e, err := bus.Decode(msg, maxRecordSize); err == nil {
		r.EventID, r.EventSource, r.EventType = e.ID(), e.Source(), e.Type()
		if tp, err := e.Context.GetExtension(bus.ExtTraceParent); err == nil {
			r.EventTraceParent, _ = tp.(string)
		}
		if e.Type() == protocol.TypeAuditDecision {
			r.readRefusal(e.Data())
		}
		return r
	}
	// Not a well-formed event (a refused one, say): show what it claimed.
	r.EventID = ceHeader(h, "id")
	r.EventSource = ceHeader(h, "source")
	r.EventType = ceHeader(h, "type")
	return r
}

// decisionOfSubject is the <decision> of eq.audit.<decision>.
func decisionOfSubject(subject string) string {
	d, _ := strings.CutPrefix(subject, strings.TrimSuffix(protocol.AuditWildcard, ">"))
	return d
}

// hasEvent reports whether the record carries an event, well formed or
// not: the orchestrator names the event's subject, and any ce- header, a
// content type or a body is one too.
func hasEvent(msg *nats.Msg) bool {
	if len(msg.Data) > 0 || msg.Header.Get(HeaderSubject) != "" {
		return true
	}
	for k := range msg.Header {
		if len(k) >= 3 && strings.EqualFold(k[:3], "ce-") || strings.EqualFold(k, "Content-Type") {
			return true
		}
	}
	return false
}

// ceHeader is the raw value of ce-<name>, in any case.
func ceHeader(h nats.Header, name string) string {
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, "ce-"+name) {
			return v[0]
		}
	}
	return ""
}

// readRefusal fills the record of a refusal from the orchestrator's
// account of it.
func (r *Record) readRefusal(data []byte) {
	var d protocol.AuditDecision
	if json.Unmarshal(data, &d) != nil || d.Refusal == nil {
		return
	}
	ref := d.Refusal
	tenant, _, _ := protocol.ParseSource(r.EventSource) // the orchestrator's
	r.Refusal = ref
	r.EventID, r.EventType, r.EventTraceParent = ref.EventID, ref.EventType, ""
	r.EventSource = ref.ClaimedSource
	if r.EventSource == "" && protocol.ValidateName("principal", ref.Sender) == nil {
		r.EventSource = protocol.Source(tenant, ref.Sender)
	}
}
