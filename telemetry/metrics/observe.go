package metrics

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
)

// The gauges (asynchronous up-down counters) are fed by funcs the Recorder
// calls at each collection (a Prometheus scrape, an OTLP export), on the
// collecting goroutine. A func reports the current counts by calling
// observe once per attribute combination, only while it runs, and should
// return promptly, honouring ctx. Counts reported for the same
// combination, by one func or several, add up: several shards may each
// report their own. Two collections (a scrape and an OTLP export) may call
// a func at the same time.

// UnfinishedFunc reports the number of unfinished tasks per tenant and
// state (submitted, dispatched, running).
type UnfinishedFunc func(ctx context.Context, observe func(tenant, state string, count int64)) error

// QueueDepthFunc reports the number of tasks submitted but not yet running
// per tenant and capability.
type QueueDepthFunc func(ctx context.Context, observe func(tenant, capability string, depth int64)) error

// AgentsLiveFunc reports the number of live agents per tenant.
type AgentsLiveFunc func(ctx context.Context, observe func(tenant string, live int64)) error

// ObserveUnfinished registers f to feed equilateral.tasks.unfinished until
// the registration is unregistered.
func (r *Recorder) ObserveUnfinished(f UnfinishedFunc) (metric.Registration, error) {
	if r == nil {
		return noRegistration{}, nil
	}
	if f == nil {
		return nil, errNilFunc
	}
	return r.register(TasksUnfinished, r.unfinished, func(ctx context.Context, o metric.Observer) error {
		return f(ctx, func(tenant, state string, count int64) {
			o.ObserveInt64(r.unfinished, count, r.byState.get(tenant, state, "").observe...)
		})
	})
}

// ObserveQueueDepth registers f to feed equilateral.queue.depth until the
// registration is unregistered.
func (r *Recorder) ObserveQueueDepth(f QueueDepthFunc) (metric.Registration, error) {
	if r == nil {
		return noRegistration{}, nil
	}
	if f == nil {
		return nil, errNilFunc
	}
	return r.register(QueueDepth, r.queueDepth, func(ctx context.Context, o metric.Observer) error {
		return f(ctx, func(tenant, capability string, depth int64) {
			o.ObserveInt64(r.queueDepth, depth, r.byCapability.get(tenant, capability, "").observe...)
		})
	})
}

// ObserveAgentsLive registers f to feed equilateral.agents.live until the
// registration is unregistered.
func (r *Recorder) ObserveAgentsLive(f AgentsLiveFunc) (metric.Registration, error) {
	if r == nil {
		return noRegistration{}, nil
	}
	if f == nil {
		return nil, errNilFunc
	}
	return r.register(AgentsLive, r.agentsLive, func(ctx context.Context, o metric.Observer) error {
		return f(ctx, func(tenant string, live int64) {
			o.ObserveInt64(r.agentsLive, live, r.byTenant.get(tenant, "", "").observe...)
		})
	})
}

func (r *Recorder) register(name string, inst metric.Observable, cb metric.Callback) (metric.Registration, error) {
	reg, err := r.meter.RegisterCallback(cb, inst)
	if err != nil {
		return nil, fmt.Errorf("metrics: register %s callback: %w", name, err)
	}
	return reg, nil
}

var errNilFunc = errors.New("metrics: nil observe func")

// noRegistration is what a nil Recorder registers.
type noRegistration struct{ embedded.Registration }

func (noRegistration) Unregister() error { return nil }
