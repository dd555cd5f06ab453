package client

import (
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/security"
)

// Option configures Connect.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	keys           bus.KeyRegistry
	tracerProvider trace.TracerProvider
	natsOptions    []nats.Option
	minLevel       security.Level
}

func newConfig(opts []Option) *config {
	c := &config{tracerProvider: otel.GetTracerProvider()}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

// WithKeys verifies the orchestrator's replies and events against keys,
// such as the keys registered in a data dir (bus.NewStoreKeys). Without
// it, what comes as the tenant's orchestrator is trusted as such: the
// server's ACLs vouch for it.
func WithKeys(keys bus.KeyRegistry) Option { return optionFunc(func(c *config) { c.keys = keys }) }

// WithNATSOptions adds options to the NATS connection Connect makes, such
// as nats.RootCAs for a server whose TLS certificate a private CA signed.
func WithNATSOptions(opts ...nats.Option) Option {
	return optionFunc(func(c *config) { c.natsOptions = append(c.natsOptions, opts...) })
}

// WithMinimumLevel makes Connect ask the orchestrator what security level
// it runs at (eq.tasks.info) and refuse to work with one below min: the
// error wraps security.ErrBelowRequired. ctx then bounds that question
// too.
func WithMinimumLevel(min security.Level) Option {
	return optionFunc(func(c *config) { c.minLevel = min })
}

// WithTracerProvider traces requests with tp (default: the global one).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}
