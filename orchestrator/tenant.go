package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// queueGroup is shared by all orchestrator replicas of a tenant, so each
// request is handled by one of them.
const queueGroup = "orchestrator"

// tenant serves one tenant: its own connection (the tenant's orchestrator
// user), its own JetStream state, its own audit stream. It wires the parts
// that do the work, each with one job:
//
//   - admission: the checks every message passes, refusals and answers;
//   - intake: submits, admitted by an ordered chain of checks and stored;
//   - lifecycle: dispatch, retries, timeouts, cancels and what each tells
//     the submitter;
//   - reports: what agents say about their attempts;
//   - flows: flows and output gates, moved on as their subtasks end;
//   - operations: get, list and cancel for submitters;
//   - registry: the live agents' heartbeats;
//   - scheduler: time (due dispatches, expiries, deadlines, rechecks).
type tenant struct {
	*base
	admission  *admission
	intake     *intake
	lifecycle  *lifecycle
	reports    *reports
	flows      *flows
	operations *operations
	registry   *registry
	sched      *scheduler

	subs   []*nats.Subscription
	closed chan struct{} // closed by the connection's closed handler

	// lanes are made on the first submit or report (openLanes): a tenant
	// whose agents only heartbeat never pays for their goroutines and
	// buffers, which are most of an idle tenant's memory.
	lanesMu  sync.Mutex
	lanes    *lanes
	stopping bool // set by stop: no lanes are made after it
}

// laneCount is how many of a tenant's tasks are handled at once.
const laneCount = 32

// base is what every part of a tenant shares: who it is, its policy, and
// its connection, state, audit and directory. It holds no mutable state of
// its own.
type base struct {
	name    string
	source  string
	cfg     *config
	log     *slog.Logger
	policy  TenantPolicy
	schemas map[string]schemas

	nc    *nats.Conn
	bus   *bus.Conn
	store *taskStore
	audit *auditor
	dir   *directory
}

func startTenant(ctx context.Context, cfg *config, name string) (*tenant, error) {
	b := &base{
		name:   name,
		source: protocol.Source(name, auth.OrchestratorName),
		cfg:    cfg,
		log:    cfg.logger.With("tenant", name),
		dir:    newDirectory(cfg.store, name),
		policy: cfg.tenantPolicies.forTenant(name),
	}
	var err error
	if b.schemas, err = compileSchemas(b.policy); err != nil {
		return nil, err
	}
	t := &tenant{base: b, closed: make(chan struct{})}
	t.admission = &admission{base: b, limiters: newPrincipalLimiters(b.policy)}
	creds := cfg.store.DefaultCredsFile(name, auth.OrchestratorName)
	opts := append([]nats.Option{
		nats.UserCredentials(creds),
		nats.Name("equilateral-orchestrator/" + name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(auth.OrchestratorName)),
		nats.MaxReconnects(-1),
	}, cfg.natsOptions...)
	// Last, so no option given can take it away: stop waits for it.
	opts = append(opts, nats.ClosedHandler(func(*nats.Conn) { close(t.closed) }))
	nc, err := nats.Connect(cfg.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("orchestrator: connect tenant %s: %w", name, err)
	}
	b.nc = nc
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		nc.Close()
		return nil, err
	}
	verifier := bus.NewVerifier(cfg.keys, bus.WithTenant(name))
	b.bus, err = bus.NewConn(nc, signer, verifier,
		bus.WithTracerProvider(cfg.tracerProvider),
		bus.WithVerifySpans(),
		bus.WithLogger(b.log),
		bus.WithRefusalHandler(t.admission.refused))
	if err != nil {
		nc.Close()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	replicas := cfg.replicas
	if replicas == 0 {
		replicas = clusterReplicas(nc)
	}
	b.store, err = openTaskStore(ctx, js, storeConfig{resultTTL: cfg.resultTTL, replicas: replicas, auditMaxAge: cfg.auditMaxAge, replayWindow: 2 * bus.DefaultSkew})
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.audit = &auditor{js: js, nc: nc, log: b.log, seal: b.bus.Seal, source: b.source, level: cfg.security.Level.String(),
		usageOnly: !cfg.security.Level.Has(security.Audit)}
	if err := t.recordLevel(ctx, js); err != nil {
		nc.Close()
		return nil, fmt.Errorf("orchestrator: tenant %s: %w", name, err)
	}

	index := newTaskIndex(cfg.resultTTL)
	t.lifecycle = &lifecycle{base: b}
	t.flows = &flows{base: b, lifecycle: t.lifecycle}
	t.lifecycle.flows = t.flows
	t.sched = newScheduler(b, index, t.admission, t.lifecycle, t.flows)
	t.intake = newIntake(b, t.admission, t.lifecycle, t.flows, t.sched)
	t.reports = &reports{base: b, admission: t.admission, lifecycle: t.lifecycle, flows: t.flows, sched: t.sched}
	t.operations = &operations{base: b, admission: t.admission, lifecycle: t.lifecycle, index: index}
	t.registry = &registry{base: b, admission: t.admission}
	if err := t.sched.start(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	a := t.admission
	agentMessage := chain(t.agentMessage, a.boundTypes)
	handlers := []struct {
		subject string
		h       bus.HandlerFunc
	}{
		{protocol.TasksSubmit, t.laned(chain(t.intake.handleSubmit, a.boundTypes, a.metered, a.once), byEventID)},
		{protocol.TasksGet, chain(t.operations.handleGet, a.boundTypes, a.metered)},
		{protocol.TasksList, chain(t.operations.handleList, a.boundTypes, a.metered)},
		{protocol.TasksCancel, chain(t.operations.handleCancel, a.boundTypes, a.metered, a.once)},
		{protocol.TasksInfo, chain(t.operations.handleInfo, a.boundTypes, a.metered)},
		{protocol.AllAgentsWildcard, heartbeatsInline(agentMessage, t.laned(agentMessage, byReportTask))},
	}
	for _, h := range handlers {
		sub, err := b.bus.QueueSubscribe(h.subject, queueGroup, h.h)
		if err != nil {
			t.stop()
			return nil, fmt.Errorf("orchestrator: subscribe %s: %w", h.subject, err)
		}
		t.subs = append(t.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		t.stop()
		return nil, err
	}
	b.log.Info("serving tenant")
	return t, nil
}

// clusterReplicas is how many copies a tenant's state keeps when not told:
// 3 on a cluster of three servers or more (a majority survives one
// node's loss), 1 on a single server or a pair.
func clusterReplicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

// laned runs h in the tenant's lanes, in order per key.
func (t *tenant) laned(h bus.HandlerFunc, key func(*bus.Message) string) bus.HandlerFunc {
	return func(ctx context.Context, m *bus.Message) {
		if l := t.openLanes(); l != nil {
			l.wrap(h, key)(ctx, m)
		}
		// nil: stopping, and the drain timed out; its sender retries on no answer
	}
}

// openLanes returns the tenant's lanes, made on first use; nil if the
// tenant stopped before it had any.
func (t *tenant) openLanes() *lanes {
	t.lanesMu.Lock()
	defer t.lanesMu.Unlock()
	if t.lanes == nil && !t.stopping {
		t.lanes = newLanes(laneCount)
	}
	return t.lanes
}

// heartbeatsInline handles heartbeats where they arrive and hands the
// rest of what agents send on: a heartbeat is about no task, so nothing
// keeps it in order with reports (in the lanes they all shared one lane,
// their key being empty), and a tenant whose agents are idle needs no
// lanes.
func heartbeatsInline(heartbeat, rest bus.HandlerFunc) bus.HandlerFunc {
	return func(ctx context.Context, m *bus.Message) {
		if _, kind, ok := protocol.ParseAgentSubject(m.Subject); ok && kind == protocol.HeartbeatKind {
			heartbeat(ctx, m)
			return
		}
		rest(ctx, m)
	}
}

// agentMessage routes what an agent publishes on eq.agent.<agent>.<kind>:
// heartbeats to the registry, the rest to reports. The server lets only
// that agent publish there, and the signature proves the source; both
// must name the same agent.
func (t *tenant) agentMessage(ctx context.Context, m *bus.Message) {
	agent, kind, ok := protocol.ParseAgentSubject(m.Subject)
	if !ok || agent != principal(m) {
		t.admission.refuse(ctx, m, protocol.ReasonSignerMismatch, "report subject and signer disagree")
		return
	}
	t.annotate(ctx, telemetry.AttrAgent.String(agent))
	if kind == protocol.HeartbeatKind {
		t.registry.handleHeartbeat(ctx, m, agent)
		return
	}
	t.reports.handleReport(ctx, m, agent, kind)
}

// stopWait bounds how long stop waits for handlers in flight.
const stopWait = 5 * time.Second

// stop ends the tenant without losing a message it took: the
// subscriptions stop taking messages and hand on what they hold, the lanes
// handle all of it while the connection is still up, the scheduler's
// goroutines are joined, and the connection is drained (its last
// publishes flushed) and closed. State is in JetStream; nothing is lost.
func (t *tenant) stop() {
	var drained []<-chan nats.SubStatus
	for _, s := range t.subs {
		drained = append(drained, s.StatusChanged(nats.SubscriptionClosed))
		s.Drain()
	}
	deadline := time.After(stopWait)
	for _, ch := range drained {
		select {
		case <-ch:
		case <-deadline:
		}
	}
	t.lanesMu.Lock()
	t.stopping = true
	l := t.lanes
	t.lanesMu.Unlock()
	if l != nil {
		l.close()
	}
	if t.sched != nil {
		t.sched.stop()
	}
	if t.nc != nil {
		if err := t.nc.Drain(); err != nil {
			t.nc.Close()
		}
		select {
		case <-t.closed:
		case <-time.After(stopWait):
			t.log.Warn("connection did not drain in time; closing it")
			t.nc.Close()
			<-t.closed
		}
	}
}

// newEvent builds an orchestrator event about a task (bus.NewEvent).
func (b *base) newEvent(typ, taskID string, data any) (*event.Event, error) {
	return bus.NewEvent(b.source, typ, taskID, data)
}

// publish builds and sends an orchestrator event, logging what failed.
func (b *base) publish(ctx context.Context, subject, typ, taskID string, data any) error {
	e, err := b.newEvent(typ, taskID, data)
	if err == nil {
		err = b.bus.Publish(ctx, subject, e)
	}
	if err != nil {
		b.log.WarnContext(ctx, "event not delivered", "type", typ, "task", taskID, "error", err)
	}
	return err
}

// principal is the sender of a verified event.
func principal(m *bus.Message) string {
	_, name, _ := protocol.ParseSource(m.Event.Source())
	return name
}

// retryPolicy is the capability's retry policy: the tenant policy's
// override over the orchestrator's.
func (b *base) retryPolicy(capability string) RetryPolicy {
	return b.cfg.policy(capability).over(b.policy.Capabilities[capability].Retry)
}
