package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/security"
	"github.com/equilateral-agents/equilateral/telemetry/metrics"
)

// Orchestrator serves every tenant of a data dir: each through its own
// connection as that tenant's orchestrator user, with its state in that
// tenant's JetStream. Tenants created while it runs are picked up.
type Orchestrator struct {
	cfg *config

	mu      sync.Mutex
	tenants map[string]*tenant
}

type config struct {
	url            string
	store          Identities
	keys           bus.KeyRegistry
	logger         *slog.Logger
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	metrics        *metrics.Recorder
	policies       map[string]RetryPolicy
	defaultPolicy  RetryPolicy
	tenantPolicies *PolicyFile
	resultTTL      time.Duration
	auditMaxAge    time.Duration
	discoverEvery  time.Duration
	tick           time.Duration
	// replicas of every stream and bucket; 0 chooses by the cluster.
	replicas int
	// natsOptions are added to every tenant connection (TLS, timeouts).
	natsOptions []nats.Option
	// security is the level and environment it announces (info replies,
	// audit records); the start gate is the caller's (security.Check).
	security security.Settings
	// securitySource says where security came from (a flag, a config
	// file), for the level_changed record.
	securitySource string
}

// Option configures an Orchestrator.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithSecurity sets the security level and environment the orchestrator
// runs at and announces: in its answer on eq.tasks.info and in every
// audit record (default security.Default(): enhanced, development). The
// caller runs the start gate (security.Check) before Run.
func WithSecurity(s security.Settings) Option {
	return optionFunc(func(c *config) { c.security = s })
}

// WithSecuritySource says where the security settings came from ("the
// --security-level flag", "the config file /etc/..."), for the audited
// record of a level change.
func WithSecuritySource(from string) Option {
	return optionFunc(func(c *config) { c.securitySource = from })
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithTracerProvider sets where spans go (default: the global provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMeterProvider sets where metrics go (default: nowhere). The
// instruments are those of package metrics.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithRetryPolicy sets the policy of one capability.
func WithRetryPolicy(capability string, p RetryPolicy) Option {
	return optionFunc(func(c *config) { c.policies[capability] = p })
}

// WithDefaultRetryPolicy sets the policy of capabilities without their own.
func WithDefaultRetryPolicy(p RetryPolicy) Option {
	return optionFunc(func(c *config) { c.defaultPolicy = p })
}

// WithPolicies sets tenant policies: rate limits, concurrency bounds and
// output gates.
func WithPolicies(p *PolicyFile) Option {
	return optionFunc(func(c *config) { c.tenantPolicies = p })
}

// WithResultTTL sets how long finished tasks and their results are kept
// (default 7 days).
func WithResultTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.resultTTL = d }) }

// WithKeys sets where the keys that verify events come from (default: the
// identities, when they are a data dir).
func WithKeys(keys bus.KeyRegistry) Option { return optionFunc(func(c *config) { c.keys = keys }) }

// WithNATSOptions adds options to every connection the orchestrator makes
// (a CA for TLS: nats.RootCAs).
func WithNATSOptions(opts ...nats.Option) Option {
	return optionFunc(func(c *config) { c.natsOptions = append(c.natsOptions, opts...) })
}

// WithReplicas sets how many copies of its streams and buckets each
// tenant keeps (1 to 5). By default: 3 on a cluster of three servers or
// more, 1 otherwise (see clusterReplicas).
func WithReplicas(n int) Option { return optionFunc(func(c *config) { c.replicas = n }) }

// WithTick sets how often deadlines and retries are checked (default 50ms).
func WithTick(d time.Duration) Option { return optionFunc(func(c *config) { c.tick = d }) }

// New prepares an orchestrator for the NATS server at url, learning
// tenants, principals, their keys and its own creds from identities. Run
// starts it.
func New(url string, identities Identities, opts ...Option) (*Orchestrator, error) {
	cfg := &config{
		url:           url,
		store:         identities,
		logger:        slog.New(slog.DiscardHandler),
		policies:      map[string]RetryPolicy{},
		defaultPolicy: DefaultRetryPolicy(),
		resultTTL:     7 * 24 * time.Hour,
		auditMaxAge:   0, // kept until an operator decides otherwise
		discoverEvery: time.Second,
		tick:          50 * time.Millisecond,
		security:      security.Default(),
	}
	for _, o := range opts {
		o.apply(cfg)
	}
	if !cfg.security.Level.Valid() || !cfg.security.Environment.Valid() {
		return nil, fmt.Errorf("orchestrator: security settings %+v: want a level and an environment", cfg.security)
	}
	if err := cfg.tenantPolicies.Check(); err != nil {
		return nil, fmt.Errorf("orchestrator: %w", err)
	}
	if cfg.replicas < 0 || cfg.replicas > 5 {
		return nil, fmt.Errorf("orchestrator: replicas %d: want 1 to 5 (or 0 to choose by the cluster)", cfg.replicas)
	}
	if cfg.tracerProvider == nil {
		cfg.tracerProvider = otel.GetTracerProvider()
	}
	if cfg.keys == nil {
		src, ok := identities.(bus.IdentitySource)
		if !ok {
			return nil, errors.New("orchestrator: these identities carry no keys: give WithKeys")
		}
		keys, err := bus.NewStoreKeys(src)
		if err != nil {
			return nil, err
		}
		cfg.keys = keys
	}
	var err error
	if cfg.metrics, err = metrics.New(cfg.meterProvider); err != nil {
		return nil, fmt.Errorf("orchestrator: metrics: %w", err)
	}
	o := &Orchestrator{cfg: cfg, tenants: map[string]*tenant{}}
	if err := o.observe(); err != nil {
		return nil, err
	}
	return o, nil
}

func (c *config) policy(capability string) RetryPolicy {
	if p, ok := c.policies[capability]; ok {
		return p
	}
	return c.defaultPolicy
}

// Run serves until ctx is done, then stops every tenant cleanly. Tenants
// that fail to start are retried at the next discovery.
func (o *Orchestrator) Run(ctx context.Context) error {
	if _, err := o.cfg.store.Tenants(); err != nil {
		return err // nothing to serve from: say so at once
	}
	// A tenant that cannot start now (a new cluster still electing its
	// stream leaders) is tried again at the next discovery.
	if err := o.discover(ctx); err != nil {
		o.cfg.logger.Warn("tenant not served yet; trying again", "error", err)
	}
	ticker := time.NewTicker(o.cfg.discoverEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			o.stopAll()
			return nil
		case <-ticker.C:
			if err := o.discover(ctx); err != nil {
				o.cfg.logger.Warn("tenant discovery failed", "error", err)
			}
		}
	}
}

// Ready reports whether every tenant known now is being served.
func (o *Orchestrator) Ready() bool {
	tenants, err := o.cfg.store.Tenants()
	if err != nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range tenants {
		if o.tenants[t.Name] == nil {
			return false
		}
	}
	return true
}

// discover starts tenants that appeared and stops those deleted.
func (o *Orchestrator) discover(ctx context.Context) error {
	tenants, err := o.cfg.store.Tenants()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, t := range tenants {
		seen[t.Name] = true
		o.mu.Lock()
		running := o.tenants[t.Name] != nil
		o.mu.Unlock()
		if running || !t.Limits.JetStream {
			continue
		}
		rt, err := startTenant(ctx, o.cfg, t.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o.mu.Lock()
		o.tenants[t.Name] = rt
		o.mu.Unlock()
	}
	o.mu.Lock()
	for name, rt := range o.tenants {
		if !seen[name] {
			rt.stop()
			delete(o.tenants, name)
		}
	}
	o.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("orchestrator: %w", errors.Join(errs...))
	}
	return nil
}

func (o *Orchestrator) stopAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	var wg sync.WaitGroup
	for name, rt := range o.tenants {
		wg.Add(1)
		go func() { defer wg.Done(); rt.stop() }()
		delete(o.tenants, name)
	}
	wg.Wait()
}
