package orchestrator

import (
	"context"
	"encoding/json"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// The live agent registry: each instance's last heartbeat, in the
// EQ_AGENTS bucket, gone AgentsTTL after the heartbeats stop (or at once
// when the instance says it stopped). `equilateral agent list` reads it.

// handleHeartbeat records an agent instance's heartbeat.
func (t *tenant) handleHeartbeat(ctx context.Context, m *bus.Message, agent string) {
	var hb protocol.Heartbeat
	if err := decode(m, &hb); err != nil || hb.Agent != agent || !validInstance(hb.Instance) {
		t.refuse(ctx, m, reasonMalformed, "want a heartbeat from the agent that sends it")
		return
	}
	key := agent + "." + hb.Instance
	if hb.Status == protocol.AgentStopped {
		if err := t.store.agents.Purge(ctx, key); err != nil {
			t.log.WarnContext(ctx, "agent not removed from the registry", "agent", agent, "error", err)
		}
		return
	}
	hb.LastSeen = time.Now().UTC()
	data, err := json.Marshal(hb)
	if err == nil {
		_, err = t.store.agents.Put(ctx, key, data)
	}
	if err != nil {
		t.log.WarnContext(ctx, "heartbeat not recorded", "agent", agent, "error", err)
	}
}

// validInstance keeps instance ids one short key token.
func validInstance(s string) bool {
	if s == "" || len(s) > protocol.MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
