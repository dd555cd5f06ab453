package orchestrator

import (
	"context"
	"time"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Metrics: counters and histograms are recorded where transitions happen;
// the gauges (unfinished tasks, queue depth) are read from each tenant's
// scheduler index when a collector asks.

// observe registers the gauges of every tenant served.
func (o *Orchestrator) observe() error {
	if _, err := o.cfg.metrics.ObserveUnfinished(func(_ context.Context, observe func(tenant, state string, n int64)) error {
		for _, t := range o.serving() {
			for state, n := range t.sched.byState() {
				observe(t.name, string(state), int64(n))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if _, err := o.cfg.metrics.ObserveQueueDepth(func(_ context.Context, observe func(tenant, capability string, n int64)) error {
		for _, t := range o.serving() {
			for capability, n := range t.sched.queued() {
				observe(t.name, capability, int64(n))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	_, err := o.cfg.metrics.ObserveAgentsLive(func(ctx context.Context, observe func(tenant string, n int64)) error {
		for _, t := range o.serving() {
			if n, err := t.registry.liveInstances(ctx); err == nil {
				observe(t.name, int64(n))
			}
		}
		return nil
	})
	return err
}

// liveInstances counts the agent instances in the live registry (the
// heartbeats are shared among replicas, so only the bucket knows them all).
func (rg *registry) liveInstances(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	keys, err := rg.store.agents.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return n, nil
}

// serving lists the tenants being served now.
func (o *Orchestrator) serving() []*tenant {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]*tenant, 0, len(o.tenants))
	for _, t := range o.tenants {
		out = append(out, t)
	}
	return out
}

// countTransition records a task's move to its current state; a final one
// also records the task's whole duration.
func (b *base) countTransition(ctx context.Context, task *Task) {
	m := b.cfg.metrics
	m.TaskTransition(ctx, b.name, task.Capability, string(task.State))
	if task.State.Final() {
		m.TaskFinished(ctx, b.name, task.Capability, string(task.State), time.Since(task.CreatedAt))
	}
}

// signatureReasons are the refusals that mean an event's signature or
// freshness did not hold.
var signatureReasons = map[protocol.Reason]bool{
	protocol.ReasonUnsigned: true, protocol.ReasonBadSignature: true, protocol.ReasonUnknownSigner: true,
	protocol.ReasonSignerMismatch: true, protocol.ReasonReplay: true,
}

func (b *base) countRefusal(ctx context.Context, reason protocol.Reason) {
	b.cfg.metrics.Refused(ctx, b.name, string(reason))
	if signatureReasons[reason] {
		b.cfg.metrics.SignatureFailure(ctx, b.name, string(reason))
	}
}

// byState counts the unfinished tasks by state.
func (s *scheduler) byState() map[protocol.State]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[protocol.State]int{}
	for _, tm := range s.active {
		counts[tm.state]++
	}
	return counts
}

// queued counts the tasks waiting for an agent (submitted or dispatched,
// not yet running) by capability; flows and held results wait on others.
func (s *scheduler) queued() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[string]int{}
	for _, tm := range s.active {
		if !tm.flow && (tm.state == protocol.StateSubmitted || tm.state == protocol.StateDispatched) {
			counts[tm.capability]++
		}
	}
	return counts
}
