package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// ErrConnectionClosed is what Run returns when the server ends the
// connection for good (for example because the agent's creds were revoked);
// it wraps the server's last error.
var ErrConnectionClosed = errors.New("agents: connection closed")

// Agent is one running instance of an agent principal: its creds, its
// handlers per capability, and the tasks it runs. Several instances may
// share a name and creds; each dispatch goes to one of them.
type Agent struct {
	cfg      *config
	log      *slog.Logger
	tenant   string
	name     string
	allowed  []string // capabilities the creds may subscribe to
	instance string
	started  time.Time

	nc     *nats.Conn
	bus    *bus.Conn
	client *client.Client
	closed chan struct{} // closed when the connection is closed for good

	mu       sync.Mutex
	handlers map[string]Handler
	running  map[string]*attempt // by task id
	draining bool
	runCalls int

	slots    chan struct{}
	subtasks *subtaskWaiters
	wg       sync.WaitGroup
}

// Connect dials the NATS server at url with the agent's creds file. The
// tenant, name and capabilities come from the creds.
func Connect(ctx context.Context, url, credsFile string, opts ...Option) (*Agent, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	id, err := auth.ReadIdentity(credsFile)
	if err != nil {
		return nil, err
	}
	switch id.Role {
	case auth.RoleAgent:
	case "":
		return nil, fmt.Errorf("agents: %s has no role: not creds made by `equilateral agent create`", credsFile)
	default:
		return nil, fmt.Errorf("agents: %s holds %s creds, not an agent's", credsFile, id.Role)
	}
	if err := protocol.ValidateName("tenant", id.Tenant); err != nil {
		return nil, fmt.Errorf("agents: %s names no tenant: %w", credsFile, err)
	}
	a := &Agent{
		cfg:      cfg,
		tenant:   id.Tenant,
		name:     id.Name,
		allowed:  id.Capabilities,
		instance: protocol.NewID(),
		started:  time.Now().UTC(),
		closed:   make(chan struct{}),
		handlers: map[string]Handler{},
		running:  map[string]*attempt{},
		slots:    make(chan struct{}, cfg.maxConcurrent),
		subtasks: newSubtaskWaiters(),
	}
	a.log = cfg.logger.With("tenant", a.tenant, "agent", a.name)
	natsOpts := append([]nats.Option{
		nats.UserCredentials(credsFile),
		nats.Name("equilateral-agent/" + a.name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(a.name)),
		nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(a.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			a.log.Warn("nats error", "subject", subject, "error", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				a.log.Warn("disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { a.log.Info("reconnected") }),
	}, cfg.natsOptions...)
	nc, err := bus.Dial(ctx, url, natsOpts...)
	if err != nil {
		if expired := auth.ExplainConnectError(credsFile, err); errors.Is(expired, auth.ErrCredsExpired) {
			return nil, fmt.Errorf("agents: %w", expired)
		}
		return nil, fmt.Errorf("agents: connect to %s as %s: %w", url, a.name, err)
	}
	a.nc = nc
	if err := a.setUpBus(credsFile); err != nil {
		nc.Close()
		return nil, err
	}
	return a, nil
}

func (a *Agent) setUpBus(credsFile string) error {
	signer, err := bus.SignerFromCreds(credsFile)
	if err != nil {
		return err
	}
	keys := a.cfg.keys
	if keys == nil {
		keys = bus.NewSourceKeys(protocol.Source(a.tenant, auth.OrchestratorName))
	}
	opts := []bus.Option{bus.WithTracerProvider(a.cfg.tracerProvider), bus.WithLogger(a.log)}
	a.bus, err = bus.NewConn(a.nc, signer, bus.NewVerifier(keys, bus.WithTenant(a.tenant)), opts...)
	if err != nil {
		return err
	}
	a.client, err = client.New(a.nc, a.tenant, a.name, signer, keys, opts...)
	return err
}

const tracerName = "github.com/equilateral-agents/equilateral/agents"

func (a *Agent) tracer() trace.Tracer { return a.cfg.tracerProvider.Tracer(tracerName) }

// Name is the agent's principal name.
func (a *Agent) Name() string { return a.name }

// Instance tells apart instances sharing the agent's name (in heartbeats
// and the registry).
func (a *Agent) Instance() string { return a.instance }

// Tenant is the agent's tenant.
func (a *Agent) Tenant() string { return a.tenant }

// Capabilities are the capabilities the agent's creds allow.
func (a *Agent) Capabilities() []string { return slices.Clone(a.allowed) }

// Handle registers h for capability. Call it before Run; the creds must
// allow the capability (the server would refuse the subscription).
func (a *Agent) Handle(capability string, h Handler) error {
	if !slices.Contains(a.allowed, capability) {
		return fmt.Errorf("agents: the creds of %s do not allow capability %q (they allow %v)", a.name, capability, a.allowed)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runCalls > 0 {
		return errors.New("agents: Handle after Run")
	}
	if _, dup := a.handlers[capability]; dup {
		return fmt.Errorf("agents: capability %q already has a handler", capability)
	}
	a.handlers[capability] = h
	return nil
}

// HandleFunc registers a function for capability.
func (a *Agent) HandleFunc(capability string, f func(ctx context.Context, task *Task) (any, error)) error {
	return a.Handle(capability, HandlerFunc(f))
}

// Run takes tasks until ctx ends, then drains: it stops taking tasks,
// lets running ones finish within the drain timeout, hands the rest back
// to be dispatched elsewhere, announces that it stopped and closes the
// connection. It returns nil after a drain, or ErrConnectionClosed if
// the server ended the connection first (for example revoked creds).
// Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.runCalls++
	calls, n := a.runCalls, len(a.handlers)
	a.mu.Unlock()
	if calls > 1 {
		return errors.New("agents: Run called twice")
	}
	if n == 0 {
		a.nc.Close()
		return errors.New("agents: no handlers: call Handle before Run")
	}
	if err := a.requireLevel(ctx); err != nil {
		a.nc.Close()
		return err
	}
	subs, err := a.subscribe()
	if err != nil {
		a.nc.Close()
		return err
	}
	a.log.InfoContext(ctx, "agent up", "capabilities", a.capabilityNames(), "instance", a.instance)
	a.heartbeat(ctx, protocol.AgentUp)
	ticker := time.NewTicker(a.cfg.heartbeat)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			a.heartbeat(ctx, protocol.AgentUp)
		case <-a.closed:
			a.stopAll(ErrConnectionClosed)
			a.wg.Wait()
			err := a.nc.LastError()
			a.log.Warn("connection closed by the server", "error", err)
			return fmt.Errorf("%w: %w", ErrConnectionClosed, errOrClosed(err))
		case <-ctx.Done():
			return a.drain(subs)
		}
	}
}

// requireLevel asks the orchestrator's level and verifies what it sends
// as that level says (every dispatch and control message from advanced
// up; below, the server's ACLs vouch for them: see bus.TrustServer). With
// WithMinimumLevel it refuses a level below the minimum and waits for an
// orchestrator to answer; without, one that does not answer at once
// leaves every check on.
func (a *Agent) requireLevel(ctx context.Context) error {
	if a.cfg.minLevel == 0 {
		askCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if info, err := a.client.Info(askCtx); err == nil {
			a.adoptLevel(info.SecurityLevel)
		}
		return nil
	}
	for {
		info, err := a.client.Info(ctx)
		if err == nil {
			if err := security.Require(a.cfg.minLevel, info.SecurityLevel); err != nil {
				return fmt.Errorf("agents: %w", err)
			}
			a.adoptLevel(info.SecurityLevel)
			return nil
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("agents: cannot learn the orchestrator's security level: %w", err)
		}
		a.log.InfoContext(ctx, "waiting for an orchestrator to say its security level", "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// adoptLevel switches the signature checks of what the orchestrator
// sends off below advanced, unless the agent's own minimum is advanced or
// more; a level it does not know keeps them on.
func (a *Agent) adoptLevel(level string) {
	l, err := security.ParseLevel(level)
	trust := err == nil && !l.Has(security.VerifyEveryHop) && !a.cfg.minLevel.Has(security.VerifyEveryHop)
	a.bus.Verifier().TrustServer(trust)
	a.client.Verifier().TrustServer(trust)
}

func errOrClosed(err error) error {
	if err == nil {
		return nats.ErrConnectionClosed
	}
	return err
}

func (a *Agent) capabilityNames() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.handlers))
	for c := range a.handlers {
		names = append(names, c)
	}
	slices.Sort(names)
	return names
}

// subscribe listens for dispatches of each handled capability (one queue
// group per capability, shared with every agent that has it) and for this
// agent's control messages.
func (a *Agent) subscribe() ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, c := range a.capabilityNames() {
		sub, err := a.bus.QueueSubscribe(protocol.Capability(c), c, bus.HandlerFunc(a.handleDispatch))
		if err != nil {
			return nil, fmt.Errorf("agents: subscribe to capability %s: %w", c, err)
		}
		subs = append(subs, sub)
	}
	if _, err := a.bus.Subscribe(protocol.Control(a.name), bus.HandlerFunc(a.handleControl)); err != nil {
		return nil, fmt.Errorf("agents: subscribe to control: %w", err)
	}
	// A subscription the server refuses is only reported asynchronously;
	// a round trip makes it show up here.
	if err := a.nc.Flush(); err != nil {
		return nil, err
	}
	if err := a.nc.LastError(); err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	return subs, nil
}

// drain is the graceful end of Run.
func (a *Agent) drain(subs []*nats.Subscription) error {
	ctx := context.Background()
	a.mu.Lock()
	a.draining = true
	a.mu.Unlock()
	for _, sub := range subs {
		sub.Unsubscribe()
	}
	a.heartbeat(ctx, protocol.AgentDraining)
	a.log.Info("draining", "running", a.load())
	finished := make(chan struct{})
	go func() { a.wg.Wait(); close(finished) }()
	ticker := time.NewTicker(a.cfg.heartbeat)
	defer ticker.Stop()
	drainEnd := time.After(a.cfg.drainTimeout)
	var giveUp <-chan time.Time
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-a.closed:
			break wait
		case <-ticker.C:
			a.heartbeat(ctx, protocol.AgentDraining) // still listed while it drains
		case <-drainEnd:
			// Hand the unfinished tasks back now, whether or not their
			// handlers return: the tasks go elsewhere at once, and any
			// result that comes later is dropped.
			for _, at := range a.stopAll(ErrReleased) {
				a.release(ctx, protocol.Dispatch{TaskID: at.taskID, Attempt: at.attempt}, "agent draining")
			}
			giveUp = time.After(handlerGrace)
		case <-giveUp:
			// A handler that ignores its context cannot hold the agent
			// open: its task was handed back, its result will be dropped.
			a.log.Warn("handlers still running after the drain", "running", a.load())
			break wait
		}
	}
	a.heartbeat(ctx, protocol.AgentStopped)
	err := a.nc.Drain()
	<-a.closed
	a.log.Info("agent stopped")
	return err
}

// handlerGrace is how long handlers get to return once their context was
// ended by the drain.
const handlerGrace = 5 * time.Second

// stopAll ends every running handler's context with cause and returns
// the attempts it stopped.
func (a *Agent) stopAll(cause error) []*attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	stopped := make([]*attempt, 0, len(a.running))
	for _, at := range a.running {
		at.stop(cause)
		stopped = append(stopped, at)
	}
	return stopped
}

func (a *Agent) load() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.running)
}

func (a *Agent) heartbeat(ctx context.Context, status protocol.AgentStatus) {
	hb := protocol.Heartbeat{
		Agent:         a.name,
		Instance:      a.instance,
		Status:        status,
		Capabilities:  a.capabilityNames(),
		Version:       a.cfg.version,
		Load:          a.load(),
		MaxConcurrent: a.cfg.maxConcurrent,
		StartedAt:     a.started,
		Interval:      protocol.Duration(a.cfg.heartbeat),
	}
	a.publish(ctx, protocol.AgentReport(a.name, protocol.HeartbeatKind), protocol.TypeAgentHeartbeat, "", hb)
}

// publish signs and sends one event from this agent.
func (a *Agent) publish(ctx context.Context, subject, typ, taskID string, data any) error {
	e, err := bus.NewEvent(protocol.Source(a.tenant, a.name), typ, taskID, data)
	if err == nil {
		err = a.bus.Publish(ctx, subject, e)
	}
	if err != nil {
		a.log.WarnContext(ctx, "event not sent", "subject", subject, "task", taskID, "error", err)
	}
	return err
}
