package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// LastLevel reads the level and environment of a tenant's last
// level_changed record; ok is false when there is none (never served).
func LastLevel(ctx context.Context, js jetstream.JetStream) (protocol.LevelChanged, uint64, bool, error) {
	stream, err := js.Stream(ctx, protocol.AuditStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return protocol.LevelChanged{}, 0, false, nil
	}
	if err != nil {
		return protocol.LevelChanged{}, 0, false, err
	}
	m, err := stream.GetLastMsgForSubject(ctx, protocol.AuditSubject(protocol.DecisionLevelChanged))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return protocol.LevelChanged{}, 0, false, nil
	}
	if err != nil {
		return protocol.LevelChanged{}, 0, false, err
	}
	var last protocol.LevelChanged
	if err := json.Unmarshal(m.Data, &last); err != nil {
		return protocol.LevelChanged{}, 0, false, fmt.Errorf("the last level_changed record (%d): %w", m.Sequence, err)
	}
	return last, m.Sequence, true, nil
}

// recordLevel appends a signed level_changed record when the tenant's last
// one names another level or environment, or there is none: a level
// change is an audited event, whoever made it. Replicas starting together
// write one record: its message id names the record it follows.
func (t *tenant) recordLevel(ctx context.Context, js jetstream.JetStream) error {
	s := t.cfg.security
	last, seq, _, err := LastLevel(ctx, js)
	if err != nil {
		return err
	}
	if last.To == s.Level.String() && last.Environment == s.Environment.String() {
		return nil
	}
	change := protocol.LevelChanged{
		From: last.To, To: s.Level.String(),
		FromEnvironment: last.Environment, Environment: s.Environment.String(),
		By: t.changedBy(), Triggers: []protocol.LevelTrigger{},
	}
	if usage, err := ReadUsage(ctx, js, time.Now().Add(-UsageWindow)); err == nil {
		_, fired := security.Assess(security.Usage{ActivePrincipals: len(usage.Principals), Executions: usage.Executions, Tenants: 1})
		for _, f := range fired {
			change.Triggers = append(change.Triggers, protocol.LevelTrigger{Level: f.Level.String(), Metric: f.Metric, Value: f.Value, Threshold: f.Threshold})
		}
	}
	ev, err := bus.NewEvent(t.source, protocol.TypeSecurityLevelChanged, "", change)
	if err != nil {
		return err
	}
	msg, err := t.bus.Seal(ctx, protocol.AuditSubject(protocol.DecisionLevelChanged), ev)
	if err != nil {
		return err
	}
	msg.Header.Set(protocol.AuditHeaderDecision, protocol.DecisionLevelChanged)
	msg.Header.Set(protocol.AuditHeaderSecurityLevel, s.Level.String())
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("level.%d.%s.%s", seq, s.Level, s.Environment))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("record the security level: %w", err)
	}
	t.log.Info("security level recorded", "from", change.From, "to", change.To, "environment", change.Environment)
	return nil
}

// changedBy names who set the level: this orchestrator and its host.
func (t *tenant) changedBy() string {
	host, _ := os.Hostname()
	by := t.cfg.securitySource
	if by == "" {
		by = "its configuration"
	}
	return fmt.Sprintf("the orchestrator of %s on host %q, from %s", t.name, host, by)
}
