package orchestrator

import (
	"context"
	"errors"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Refusing: every message turned down is counted, recorded (a bounded
// record, see refusals.go) and told to its sender with the reason, never
// acted on. A request (eq.tasks.*) is answered on the sender's own inbox;
// an agent's report or heartbeat (eq.agent.<agent>.<kind>) is answered on
// that agent's control subject eq.ctl.<agent>.refused.

func reasonFor(err error) protocol.Reason {
	switch {
	case errors.Is(err, bus.ErrUnsigned):
		return protocol.ReasonUnsigned
	case errors.Is(err, bus.ErrBadSignature):
		return protocol.ReasonBadSignature
	case errors.Is(err, bus.ErrUnknownSigner):
		return protocol.ReasonUnknownSigner
	case errors.Is(err, bus.ErrSignerMismatch):
		return protocol.ReasonSignerMismatch
	case errors.Is(err, bus.ErrReplay):
		return protocol.ReasonReplay
	case errors.Is(err, bus.ErrTooLarge):
		return protocol.ReasonTooLarge
	}
	return protocol.ReasonMalformed
}

// refused is the bus's refusal handler: a message failed decoding or
// verification. It is never acted on; it is counted and recorded as a
// bounded record (its sender unproven). A request is answered only on the
// inbox of the principal its source claims; a report only when its
// subject names the agent its source claims, because the server lets no
// one else publish on that agent's subjects.
func (a *admission) refused(ctx context.Context, msg *nats.Msg, err error) {
	requestID := newID()
	reason := reasonFor(err)
	a.countRefusal(ctx, reason)
	a.recordRefusal(ctx, unverifiedSender, reason, err.Error(), requestID, msg)
	_, claimed, perr := protocol.ParseSource(msg.Header.Get("ce-source"))
	if perr != nil {
		return // nobody to answer
	}
	r := protocol.Refused{Reason: reason, Message: err.Error(), RequestID: requestID, EventID: eventID(msg.Header.Get("ce-id"))}
	if agent, _, ok := protocol.ParseAgentSubject(msg.Subject); ok {
		if agent == claimed {
			a.tellAgent(ctx, agent, r)
		}
		return
	}
	if msg.Reply != "" && protocol.IsTaskOperation(msg.Subject) {
		a.answerRefusal(ctx, claimed, msg.Reply, r)
	}
}

// refuse turns down a verified message: counted against its sender,
// recorded, told to the sender, never executed.
func (a *admission) refuse(ctx context.Context, m *bus.Message, reason protocol.Reason, message string) {
	taskID, _ := m.Event.Extensions()[protocol.ExtTaskID].(string)
	a.refuseAbout(ctx, m, protocol.Refused{Reason: reason, Message: message, TaskID: eventID(taskID)})
}

// refuseReport turns down an agent's report about an attempt.
func (a *admission) refuseReport(ctx context.Context, m *bus.Message, r protocol.Report, reason protocol.Reason, message string) {
	a.refuseAbout(ctx, m, protocol.Refused{Reason: reason, Message: message, TaskID: eventID(r.TaskID), Attempt: max(r.Attempt, 0)})
}

func (a *admission) refuseAbout(ctx context.Context, m *bus.Message, r protocol.Refused) {
	r.RequestID = newID()
	r.EventID = m.Event.ID()
	sender := principal(m)
	spanRefused(ctx, r.Reason, r.Message)
	a.countRefusal(ctx, r.Reason)
	a.chargeRefusal(ctx, sender)
	a.recordRefusal(ctx, sender, r.Reason, r.Message, r.RequestID, m.Raw())
	a.log.InfoContext(ctx, "refused", "reason", r.Reason, "request_id", r.RequestID, "from", m.Event.Source(), "subject", clip(m.Subject))
	if agent, _, ok := protocol.ParseAgentSubject(m.Subject); ok {
		a.tellAgent(ctx, agent, r)
		return
	}
	a.answerRefusal(ctx, sender, m.Reply(), r)
}

// answerRefusal replies to a refused request on the sender's inbox.
func (a *admission) answerRefusal(ctx context.Context, sender, reply string, r protocol.Refused) {
	if reply == "" {
		return
	}
	e, err := a.newEvent(protocol.TypeTaskRefused, "", r)
	if err != nil {
		a.log.WarnContext(ctx, "refusal not sent", "error", err)
		return
	}
	e.SetExtension(protocol.ExtRequestID, r.RequestID)
	a.answer(ctx, sender, reply, e)
}

// tellAgent sends a refusal of its report or heartbeat to an agent.
func (a *admission) tellAgent(ctx context.Context, agent string, r protocol.Refused) {
	e, err := a.newEvent(protocol.TypeReportRefused, r.TaskID, r)
	if err == nil {
		e.SetExtension(protocol.ExtRequestID, r.RequestID)
		err = a.bus.Publish(ctx, protocol.ControlRefused(agent), e)
	}
	if err != nil {
		a.log.WarnContext(ctx, "refusal not sent to the agent", "agent", agent, "error", err)
	}
}

// eventID keeps an id from an unverified or refused message only if it is
// short and plain enough to send back; otherwise "".
func eventID(id string) string {
	if len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return ""
	}
	return id
}

// decode reads a verified message's body strictly (protocol.Decode).
func decode(m *bus.Message, v any) error {
	return protocol.Decode(m.Event.Data(), v)
}
