package agents

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// Option configures an Agent.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onRefused      func(protocol.Refused)
	maxConcurrent  int
	claimWait      time.Duration
	quickWindow    time.Duration
	drainTimeout   time.Duration
	heartbeat      time.Duration
	version        string
	logger         *slog.Logger
	tracerProvider trace.TracerProvider
	keys           bus.KeyRegistry
	natsOptions    []nats.Option
	minLevel       security.Level
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		maxConcurrent:  8,
		claimWait:      2 * time.Second,
		quickWindow:    DefaultQuickWindow,
		drainTimeout:   30 * time.Second,
		heartbeat:      5 * time.Second,
		logger:         slog.New(slog.DiscardHandler),
		tracerProvider: otel.GetTracerProvider(),
	}
	for _, o := range opts {
		o.apply(c)
	}
	switch {
	case c.maxConcurrent < 1:
		return nil, fmt.Errorf("agents: max concurrent must be at least 1, not %d", c.maxConcurrent)
	case c.heartbeat <= 0 || c.heartbeat > protocol.MaxHeartbeatInterval:
		return nil, fmt.Errorf("agents: heartbeat interval must be in (0, %s], not %s", protocol.MaxHeartbeatInterval, c.heartbeat)
	case c.drainTimeout < 0 || c.claimWait < 0 || c.quickWindow < 0:
		return nil, fmt.Errorf("agents: negative drain timeout, claim wait or quick window")
	}
	return c, nil
}

// WithMaxConcurrent bounds the tasks the agent runs at once (default 8).
// A dispatch that finds no free slot waits up to the claim wait, then is
// handed back for another instance to take.
func WithMaxConcurrent(n int) Option { return optionFunc(func(c *config) { c.maxConcurrent = n }) }

// WithClaimWait is how long a dispatch may wait for a free slot before it
// is handed back (default 2s; keep it under the orchestrator's claim
// timeout, 5s by default).
func WithClaimWait(d time.Duration) Option { return optionFunc(func(c *config) { c.claimWait = d }) }

// DefaultQuickWindow is how long a handler may run before its attempt is
// claimed with a "running" report.
const DefaultQuickWindow = 250 * time.Millisecond

// WithQuickWindow is how long a handler may run before the agent says
// "running" (default DefaultQuickWindow). A task that ends sooner is
// reported once, with its result: one message and one stored transition
// less. The claim is sent sooner when the handler reports progress or
// submits a subtask, and always before half the dispatch's claim time
// (claim_by) has passed. Zero says "running" at once.
func WithQuickWindow(d time.Duration) Option {
	return optionFunc(func(c *config) { c.quickWindow = d })
}

// WithDrainTimeout is how long Run lets running tasks finish after its
// context ends; the ones still running then are handed back (default 30s).
func WithDrainTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.drainTimeout = d })
}

// WithHeartbeat sets the heartbeat interval (default 5s, at most
// protocol.MaxHeartbeatInterval).
func WithHeartbeat(d time.Duration) Option { return optionFunc(func(c *config) { c.heartbeat = d }) }

// WithVersion is the version the agent announces in its heartbeats.
func WithVersion(v string) Option { return optionFunc(func(c *config) { c.version = v }) }

// WithRefusals calls f with each refusal of this agent's reports and
// heartbeats the orchestrator sends (on eq.ctl.<agent>.refused). They are
// logged either way. f runs on the control subscription: keep it short.
func WithRefusals(f func(protocol.Refused)) Option {
	return optionFunc(func(c *config) { c.onRefused = f })
}

// WithLogger sets the logger (default: discard). Payloads are never logged.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithTracerProvider sets where spans go (default: the global provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMinimumLevel makes Run ask the orchestrator what security level it
// runs at (eq.tasks.info) before taking any task, and refuse to work with
// one below min: Run returns an error wrapping security.ErrBelowRequired.
// While no orchestrator answers yet, Run asks again every second.
func WithMinimumLevel(min security.Level) Option {
	return optionFunc(func(c *config) { c.minLevel = min })
}

// WithKeys pins the keys that verify the orchestrator's events (for
// example bus.NewStoreKeys over the data dir). By default the
// orchestrator's self-named key is trusted because the server lets no one
// else publish dispatches, control messages or replies to this agent.
func WithKeys(keys bus.KeyRegistry) Option { return optionFunc(func(c *config) { c.keys = keys }) }

// WithNATSOptions adds options to the NATS connection Connect makes.
func WithNATSOptions(opts ...nats.Option) Option {
	return optionFunc(func(c *config) { c.natsOptions = append(c.natsOptions, opts...) })
}
