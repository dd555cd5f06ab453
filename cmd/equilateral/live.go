package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// liveAgents reads a tenant's registry of running agent instances (the
// EQ_AGENTS bucket the orchestrator keeps from heartbeats), connected as
// the tenant's orchestrator user. Instances are grouped by agent name.
// extra adds connection options (natsTLS).
func liveAgents(ctx context.Context, store *auth.Store, server, tenant string, extra ...nats.Option) (map[string][]protocol.Heartbeat, error) {
	nc, err := nats.Connect(server, append([]nats.Option{
		nats.UserCredentials(store.DefaultCredsFile(tenant, auth.OrchestratorName)),
		nats.CustomInboxPrefix(protocol.InboxPrefix(auth.OrchestratorName)),
		nats.Name("equilateral-admin/" + tenant),
		nats.Timeout(3 * time.Second),
		nats.NoReconnect(),
	}, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", server, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	live := map[string][]protocol.Heartbeat{}
	kv, err := js.KeyValue(ctx, protocol.AgentsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return live, nil // no orchestrator has served the tenant yet
	}
	if err != nil {
		return nil, fmt.Errorf("tenant %s: agent registry: %w", tenant, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: agent registry: %w", tenant, err)
	}
	for key := range keys.Keys() {
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired while we read
		}
		if err != nil {
			return nil, fmt.Errorf("tenant %s: agent registry: %w", tenant, err)
		}
		var hb protocol.Heartbeat
		if json.Unmarshal(entry.Value(), &hb) == nil {
			live[hb.Agent] = append(live[hb.Agent], hb)
		}
	}
	return live, nil
}

// liveSummary says in a few words how an agent's instances are doing:
// "2 up, load 3/8", "1 draining", "-" for none.
func liveSummary(instances []protocol.Heartbeat) string {
	if len(instances) == 0 {
		return "-"
	}
	counts := map[protocol.AgentStatus]int{}
	load, capacity := 0, 0
	for _, hb := range instances {
		counts[hb.Status]++
		load += hb.Load
		capacity += hb.MaxConcurrent
	}
	s := ""
	for _, st := range []protocol.AgentStatus{protocol.AgentUp, protocol.AgentDraining} {
		if counts[st] > 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%d %s", counts[st], st)
		}
	}
	return fmt.Sprintf("%s, load %d/%d", s, load, capacity)
}
