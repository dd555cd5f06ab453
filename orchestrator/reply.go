package orchestrator

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Every answer the orchestrator sends to a request goes through answer,
// and answer sends only to the sender's own inbox. The orchestrator may
// write subjects no principal may ($KV.>, $JS.API.>, eq.audit.>), so a
// reply subject is never taken on trust: a refusal aimed at
// $KV.EQ_TASKS.<id> would otherwise overwrite another's task.

// maxReplySubject bounds a reply subject (an inbox prefix, a dot and a
// NATS client's token are well under it).
const maxReplySubject = 256

// replyAllowed reports whether reply is sender's own inbox:
// _INBOX_<sender>.<tokens>, no wildcards, no empty tokens.
func replyAllowed(sender, reply string) bool {
	if protocol.ValidateName("principal", sender) != nil || len(reply) > maxReplySubject {
		return false
	}
	prefix := protocol.InboxPrefix(sender) + "."
	if len(reply) <= len(prefix) || reply[:len(prefix)] != prefix {
		return false
	}
	rest := reply[len(prefix):]
	if rest[0] == '.' || rest[len(rest)-1] == '.' {
		return false
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c == '*' || c == '>' || c <= ' ' || c == 0x7f:
			return false
		case c == '.' && rest[i+1] == '.':
			return false
		}
	}
	return true
}

// answer sends e to reply if reply is sender's own inbox; anything else
// is dropped with a log line (the request was already decided).
func (a *admission) answer(ctx context.Context, sender, reply string, e *event.Event) {
	if reply == "" {
		return
	}
	if !replyAllowed(sender, reply) {
		a.log.WarnContext(ctx, "answer withheld: the reply subject is not the sender's own inbox", "sender", clip(sender), "reply", clip(reply))
		return
	}
	if err := a.bus.Publish(ctx, reply, e); err != nil {
		a.log.WarnContext(ctx, "answer not delivered", "type", e.Type(), "error", err)
	}
}

// respond answers a verified request.
func (a *admission) respond(ctx context.Context, m *bus.Message, typ, taskID string, data any) {
	if m.Reply() == "" {
		return
	}
	e, err := a.newEvent(typ, taskID, data)
	if err != nil {
		a.log.WarnContext(ctx, "answer not sent", "type", typ, "error", err)
		return
	}
	a.answer(ctx, principal(m), m.Reply(), e)
}
