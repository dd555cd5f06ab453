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
	"golang.org/x/time/rate"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
)

// queueGroup is shared by all orchestrator replicas of a tenant, so each
// request is handled by one of them.
const queueGroup = "orchestrator"

// tenant serves one tenant: its own connection (the tenant's orchestrator
// user), its own JetStream state, its own audit stream.
type tenant struct {
	name   string
	source string
	cfg    *config
	log    *slog.Logger
	policy TenantPolicy
	// limiter bounds the tenant's accepted submissions (nil: no bound);
	// limiters bound each principal's requests.
	limiter  *rate.Limiter
	limiters *principalLimiters
	refusals refusalCounter
	// instances bounds each agent's live instances in the registry.
	instances instanceCounts
	index     *taskIndex
	schemas   map[string]schemas

	nc    *nats.Conn
	bus   *bus.Conn
	store *taskStore
	audit *auditor
	dir   *directory
	sched *scheduler

	subs  []*nats.Subscription
	lanes *lanes
	wg    sync.WaitGroup
}

func startTenant(ctx context.Context, cfg *config, name string) (*tenant, error) {
	t := &tenant{
		name:   name,
		source: protocol.Source(name, auth.OrchestratorName),
		cfg:    cfg,
		log:    cfg.logger.With("tenant", name),
		dir:    newDirectory(cfg.store, name),
		policy: cfg.tenantPolicies.forTenant(name),
	}
	var err error
	if t.schemas, err = compileSchemas(t.policy); err != nil {
		return nil, err
	}
	if t.policy.RatePerSecond > 0 {
		t.limiter = rate.NewLimiter(rate.Limit(t.policy.RatePerSecond), max(t.policy.Burst, 1))
	}
	t.limiters = newPrincipalLimiters(t.policy)
	t.index = newTaskIndex(cfg.resultTTL)
	creds := cfg.store.DefaultCredsFile(name, auth.OrchestratorName)
	nc, err := nats.Connect(cfg.url,
		nats.UserCredentials(creds),
		nats.Name("equilateral-orchestrator/"+name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(auth.OrchestratorName)),
		nats.MaxReconnects(-1),
	)
	if err != nil {
		return nil, fmt.Errorf("orchestrator: connect tenant %s: %w", name, err)
	}
	t.nc = nc
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		nc.Close()
		return nil, err
	}
	verifier := bus.NewVerifier(cfg.keys, bus.WithTenant(name))
	t.bus, err = bus.NewConn(nc, signer, verifier,
		bus.WithTracerProvider(cfg.tracerProvider),
		bus.WithVerifySpans(),
		bus.WithLogger(t.log),
		bus.WithRefusalHandler(t.refused))
	if err != nil {
		nc.Close()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.store, err = openTaskStore(ctx, js, storeConfig{resultTTL: cfg.resultTTL, replicas: 1, auditMaxAge: cfg.auditMaxAge, replayWindow: 2 * bus.DefaultSkew})
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.audit = &auditor{js: js, log: t.log, seal: t.bus.Seal, source: t.source}
	t.sched, err = startScheduler(ctx, t)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.lanes = newLanes(32)
	handlers := []struct {
		subject string
		h       bus.HandlerFunc
	}{
		{protocol.TasksSubmit, t.lanes.wrap(chain(t.handleSubmit, t.boundTypes, t.metered, t.once), byEventID)},
		{protocol.TasksGet, chain(t.handleGet, t.boundTypes, t.metered)},
		{protocol.TasksList, chain(t.handleList, t.boundTypes, t.metered)},
		{protocol.TasksCancel, chain(t.handleCancel, t.boundTypes, t.metered, t.once)},
		{protocol.AllAgentsWildcard, t.lanes.wrap(chain(t.handleReport, t.boundTypes), byReportTask)},
	}
	for _, h := range handlers {
		sub, err := t.bus.QueueSubscribe(h.subject, queueGroup, h.h)
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
	t.log.Info("serving tenant")
	return t, nil
}

// stop drains the subscriptions (handlers in flight finish) and closes the
// connection. State is in JetStream; nothing is lost.
func (t *tenant) stop() {
	if t.sched != nil {
		t.sched.stop()
	}
	for _, s := range t.subs {
		s.Drain()
	}
	if t.nc != nil {
		t.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !t.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		t.nc.Close()
	}
	if t.lanes != nil {
		t.lanes.close()
	}
}

// newEvent builds an orchestrator event about a task (bus.NewEvent).
func (t *tenant) newEvent(typ, taskID string, data any) (*event.Event, error) {
	return bus.NewEvent(t.source, typ, taskID, data)
}

// publish builds and sends an orchestrator event, logging what failed.
func (t *tenant) publish(ctx context.Context, subject, typ, taskID string, data any) error {
	e, err := t.newEvent(typ, taskID, data)
	if err == nil {
		err = t.bus.Publish(ctx, subject, e)
	}
	if err != nil {
		t.log.WarnContext(ctx, "event not delivered", "type", typ, "task", taskID, "error", err)
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
func (t *tenant) retryPolicy(capability string) RetryPolicy {
	return t.cfg.policy(capability).over(t.policy.Capabilities[capability].Retry)
}
