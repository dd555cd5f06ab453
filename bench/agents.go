package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/bus"
)

// echo is the agents' handler: the task's input is its result.
func echo(_ context.Context, t *agents.Task) (any, error) { return t.Input, nil }

// startAgents runs one agent of the agents SDK per creds file, each on
// its own connection, serving capability with echo, until stop. keys may
// be nil (the SDK's default: the orchestrator's self-named key).
func (b *bench) startAgents(ctx context.Context, url string, creds []string, capability string, tp trace.TracerProvider, keys bus.KeyRegistry, natsOpts []nats.Option) (stop func() error, err error) {
	runCtx, cancel := context.WithCancel(context.Background())
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	stop = func() error {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return errors.Join(errs...)
	}
	// Enough slots that the agents never hold the submitters back.
	slots := max(8, (b.cfg.concurrency+len(creds)-1)/len(creds))
	opts := []agents.Option{
		agents.WithTracerProvider(tp),
		agents.WithMaxConcurrent(slots),
		agents.WithDrainTimeout(5 * time.Second),
		agents.WithNATSOptions(natsOpts...),
	}
	if keys != nil {
		opts = append(opts, agents.WithKeys(keys))
	}
	for _, c := range creds {
		a, err := agents.Connect(ctx, url, c, opts...)
		if err != nil {
			stop()
			return nil, err
		}
		if err := a.HandleFunc(capability, echo); err != nil {
			a.Run(runCtx) // without a handler, Run only closes the connection
			stop()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(runCtx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("agent %s: %w", a.Name(), err))
				mu.Unlock()
			}
		}()
	}
	return stop, nil
}
