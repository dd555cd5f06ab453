package orchestrator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Refusals are recorded in the audit stream as bounded records, never the
// refused message itself: an attacker must not be able to make the
// orchestrator store what it sends (up to the server's max payload, as
// often as it likes). A record holds the digest and size of the message,
// the reason, the sender and the event's id and type, each clipped.
// Repeated refusals from one sender for one reason are counted: the first
// in each refusalWindow is recorded at once, the rest in one summary when
// the window closes. Storage per sender and reason is thus two records
// per window, whatever the rate.

// refusalWindow is how long repeated refusals are counted before their
// summary is written.
const refusalWindow = 10 * time.Second

// maxRefusalKeys bounds the senders and reasons counted at once; beyond
// it every refusal is counted under one overflow key.
const maxRefusalKeys = 4096

// unverifiedSender stands for the sender of a message that failed
// verification: its claimed source proves nothing, so all such messages
// are counted together (a forger cannot spread them over many keys, nor
// spend a real principal's share).
const unverifiedSender = "(unverified)"

// RefusalRecord is what a refusal's audit record says of the message.
type RefusalRecord = protocol.AuditRefusal

// newRefusalRecord describes msg without keeping any of its content.
func newRefusalRecord(sender string, msg *nats.Msg) RefusalRecord {
	r := RefusalRecord{Sender: sender, Count: 1}
	if msg == nil {
		return r
	}
	digest := sha256.Sum256(msg.Data)
	r.Subject = clip(msg.Subject)
	r.Size = len(msg.Data)
	for k, vs := range msg.Header {
		for _, v := range vs {
			r.Size += len(k) + len(v) + 4
		}
	}
	r.Digest = hex.EncodeToString(digest[:])
	r.EventID = clip(msg.Header.Get("ce-id"))
	r.EventType = clip(msg.Header.Get("ce-type"))
	if sender == unverifiedSender {
		r.ClaimedSource = clip(msg.Header.Get("ce-source"))
	}
	return r
}

// refusalCounter counts repeated refusals per (sender, reason).
type refusalCounter struct {
	mu   sync.Mutex
	open map[refusalKey]*refusalCount
}

type refusalKey struct {
	sender string
	reason protocol.Reason
}

type refusalCount struct {
	first  time.Time
	last   time.Time
	more   int // refusals after the first, not yet summarized
	record RefusalRecord
}

// note counts a refusal and reports whether it should be recorded now
// (the first of its window).
func (c *refusalCounter) note(sender string, reason protocol.Reason, now time.Time, r RefusalRecord) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[refusalKey]*refusalCount{}
	}
	key := refusalKey{sender, reason}
	if _, ok := c.open[key]; !ok && len(c.open) >= maxRefusalKeys {
		key = refusalKey{"(overflow)", reason}
	}
	if n, ok := c.open[key]; ok {
		n.more++
		n.last = now
		return false
	}
	c.open[key] = &refusalCount{first: now, last: now, record: r}
	return true
}

// refusalSummary is a closed window with refusals not yet recorded.
type refusalSummary struct {
	reason protocol.Reason
	record RefusalRecord
}

// closeWindows ends the windows older than refusalWindow and returns a
// summary for each that counted more than its first refusal.
func (c *refusalCounter) closeWindows(now time.Time) []refusalSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []refusalSummary
	for key, n := range c.open {
		if now.Sub(n.first) < refusalWindow {
			continue
		}
		delete(c.open, key)
		if n.more == 0 {
			continue
		}
		r := n.record
		r.Sender = key.sender
		r.Count, r.Since, r.Until = n.more, n.first, n.last
		out = append(out, refusalSummary{reason: key.reason, record: r})
	}
	return out
}

// recordRefusal audits a refusal as a bounded record, counted with the
// sender's other refusals of the same reason.
func (a *admission) recordRefusal(ctx context.Context, sender string, reason protocol.Reason, message, requestID string, msg *nats.Msg) {
	r := newRefusalRecord(sender, msg)
	if !a.refusals.note(sender, reason, time.Now(), r) {
		return
	}
	a.audit.record(ctx, auditEntry{decision: decisionRefused, reason: string(reason) + ": " + message, requestID: requestID, refusal: &r})
}

// summarizeRefusals writes the summaries of closed windows.
func (a *admission) summarizeRefusals(ctx context.Context, now time.Time) {
	for _, s := range a.refusals.closeWindows(now) {
		r := s.record
		a.audit.record(ctx, auditEntry{decision: decisionRefused, reason: string(s.reason) + ": repeated", refusal: &r})
	}
}
