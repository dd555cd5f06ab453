package client

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/bus"
)

// Option configures Connect.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	keys           bus.KeyRegistry
	tracerProvider trace.TracerProvider
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

// WithTracerProvider traces requests with tp (default: the global one).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}
