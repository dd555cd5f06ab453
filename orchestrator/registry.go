package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// The live agent registry: each instance's last heartbeat, in the
// EQ_AGENTS bucket, gone AgentsTTL after the heartbeats stop (or at once
// when the instance says it stopped). `equilateral agent list` reads it.
//
// What an agent can make the registry hold is bounded: a heartbeat of at
// most MaxHeartbeatSize bytes, only the schema's fields (re-encoded from
// the decoded struct), only capabilities the agent holds, and at most
// MaxInstancesPerAgent instances per agent.

// MaxHeartbeatSize bounds a heartbeat's data.
const MaxHeartbeatSize = 4 << 10

// DefaultMaxInstancesPerAgent is how many live instances one agent may
// list unless the tenant policy says otherwise.
const DefaultMaxInstancesPerAgent = 32

// maxVersionLen bounds a heartbeat's version string.
const maxVersionLen = 64

// registry keeps the live agents' heartbeats.
type registry struct {
	*base
	admission *admission
	// instances bounds each agent's live instances in the bucket.
	instances instanceCounts
}

// handleHeartbeat records an agent instance's heartbeat.
func (rg *registry) handleHeartbeat(ctx context.Context, m *bus.Message, agent string) {
	if len(m.Event.Data()) > MaxHeartbeatSize {
		rg.admission.refuse(ctx, m, protocol.ReasonTooLarge, fmt.Sprintf("a heartbeat is at most %d bytes", MaxHeartbeatSize))
		return
	}
	if !rg.admission.limiters.allow(agent) {
		rg.admission.refuse(ctx, m, protocol.ReasonRateLimited, "you are over your request rate; slow down")
		return
	}
	var hb protocol.Heartbeat
	if err := decode(m, &hb); err != nil {
		rg.admission.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
		return
	}
	if hb.Agent != agent {
		rg.admission.refuse(ctx, m, protocol.ReasonMalformed, fmt.Sprintf("field agent: must be the sending agent %q", agent))
		return
	}
	if !validInstance(hb.Instance) {
		rg.admission.refuse(ctx, m, protocol.ReasonMalformed, "field instance: want 1 to 64 of [A-Za-z0-9_-]")
		return
	}
	if err := rg.checkHeartbeat(agent, &hb); err != nil {
		rg.admission.refuse(ctx, m, protocol.ReasonMalformed, err.Error())
		return
	}
	key := protocol.AgentInstanceKey(agent, hb.Instance)
	if hb.Status == protocol.AgentStopped {
		if err := rg.store.agents.Purge(ctx, key); err != nil {
			rg.log.WarnContext(ctx, "agent not removed from the registry", "agent", agent, "error", err)
		}
		rg.instances.remove(agent, hb.Instance)
		return
	}
	if !rg.instances.admit(ctx, rg, agent, hb.Instance) {
		rg.admission.refuse(ctx, m, protocol.ReasonOverCapacity, fmt.Sprintf("agent %s has %d live instances, its limit", agent, rg.maxInstances()))
		return
	}
	hb.LastSeen = time.Now().UTC()
	data, err := json.Marshal(hb) // only the schema's fields
	if err == nil {
		_, err = rg.store.agents.Put(ctx, key, data)
	}
	if err != nil {
		rg.log.WarnContext(ctx, "heartbeat not recorded", "agent", agent, "error", err)
	}
}

// checkHeartbeat bounds a heartbeat's fields: a known status, the agent's
// own capabilities, sane numbers, a short version.
func (rg *registry) checkHeartbeat(agent string, hb *protocol.Heartbeat) error {
	switch hb.Status {
	case protocol.AgentUp, protocol.AgentDraining, protocol.AgentStopped:
	default:
		return fmt.Errorf("heartbeat status must be up, draining or stopped")
	}
	if len(hb.Capabilities) > protocol.MaxCapabilities {
		return fmt.Errorf("a heartbeat lists at most %d capabilities", protocol.MaxCapabilities)
	}
	// Only capabilities the agent holds are listed: its creds decide what
	// it serves, not what it says.
	hb.Capabilities = slices.DeleteFunc(hb.Capabilities, func(c string) bool { return !rg.dir.serves(agent, c) })
	slices.Sort(hb.Capabilities)
	hb.Capabilities = slices.Compact(hb.Capabilities)
	if len(hb.Version) > maxVersionLen || strings.ContainsFunc(hb.Version, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("version must be at most %d printable characters", maxVersionLen)
	}
	if hb.Load < 0 || hb.MaxConcurrent < 0 || hb.Load > 1<<20 || hb.MaxConcurrent > 1<<20 {
		return fmt.Errorf("load and max_concurrent must be between 0 and %d", 1<<20)
	}
	if hb.Interval < 0 || time.Duration(hb.Interval) > protocol.MaxHeartbeatInterval {
		return fmt.Errorf("interval must be at most %s", protocol.MaxHeartbeatInterval)
	}
	return nil
}

func (rg *registry) maxInstances() int {
	if n := rg.policy.MaxInstancesPerAgent; n > 0 {
		return n
	}
	return DefaultMaxInstancesPerAgent
}

// instanceCounts knows which instances of each agent are live, to bound
// them. It is filled from the bucket when an agent's count is not known
// (a restart, another replica's instances) and kept by heartbeats.
type instanceCounts struct {
	mu sync.Mutex
	by map[string]map[string]time.Time // agent -> instance -> last seen
}

// admit reports whether instance of agent may be listed: it is already
// live, or the agent has room for another.
func (c *instanceCounts) admit(ctx context.Context, rg *registry, agent, instance string) bool {
	now := time.Now()
	c.mu.Lock()
	if c.by == nil {
		c.by = map[string]map[string]time.Time{}
	}
	live := c.by[agent]
	c.mu.Unlock()
	if live == nil {
		live = rg.liveInstancesOf(ctx, agent)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by[agent] == nil {
		c.by[agent] = live
	}
	live = c.by[agent]
	for id, seen := range live {
		if now.Sub(seen) > protocol.AgentsTTL {
			delete(live, id)
		}
	}
	if _, ok := live[instance]; !ok && len(live) >= rg.maxInstances() {
		return false
	}
	live[instance] = now
	return true
}

func (c *instanceCounts) remove(agent, instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.by[agent], instance)
}

// liveInstancesOf reads an agent's instances from the bucket.
func (rg *registry) liveInstancesOf(ctx context.Context, agent string) map[string]time.Time {
	out := map[string]time.Time{}
	keys, err := rg.store.agents.ListKeysFiltered(ctx, protocol.AgentInstancesFilter(agent))
	if err != nil {
		return out
	}
	now := time.Now()
	for k := range keys.Keys() {
		out[strings.TrimPrefix(k, agent+".")] = now
	}
	return out
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
