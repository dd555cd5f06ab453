package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// setupTimeout bounds standing one system up.
const setupTimeout = time.Minute

// teardown runs what it was given in reverse order.
type teardown []func() error

func (t *teardown) push(f func() error) { *t = append(*t, f) }

func (t teardown) run() error {
	var errs []error
	for i := len(t) - 1; i >= 0; i-- {
		errs = append(errs, t[i]())
	}
	return errors.Join(errs...)
}

// level measures the task round trip at level l on a fresh system with
// the deployment its gate requires: the orchestrator at l, the agents
// echoing, a client submitting. All of it is torn down, its data dir
// removed, before level returns.
func (b *bench) level(ctx context.Context, l security.Level, profile string) (res *LevelResult, err error) {
	dep, env := deploymentOf(l), environmentOf(l)
	b.progressf("%s: starting a fresh system (%s; orchestrator at %s in %s)", l, dep.name, l, env)
	setup, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	s, err := startSystem(setup, dep, b.cfg.agents)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	var down teardown
	defer func() {
		if derr := down.run(); derr != nil && err == nil {
			err = fmt.Errorf("%s: tear down: %w", l, derr)
		}
	}()
	down.push(s.close)
	tr := newTracing()
	down.push(tr.shutdown)
	keys, err := bus.NewStoreKeys(s.store)
	if err != nil {
		return nil, err
	}

	otp, err := tr.provider(setup, "equilateral-orchestrator")
	if err != nil {
		return nil, err
	}
	stopOrchestrator, err := s.startOrchestrator(setup, security.Settings{Level: l, Environment: env}, otp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	down.push(stopOrchestrator)

	atp, err := tr.provider(setup, "agent-bench")
	if err != nil {
		return nil, err
	}
	var creds []string
	for i := range b.cfg.agents {
		creds = append(creds, s.creds(agentName(i)))
	}
	stopAgents, err := b.startAgents(setup, s.url, creds, DefaultCapability, atp, keys, s.natsOpts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	down.push(stopAgents)
	if err := s.waitForAgents(setup, b.cfg.agents); err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}

	ctp, err := tr.provider(setup, "bench-client")
	if err != nil {
		return nil, err
	}
	nc, err := s.dial(setup, benchClient)
	if err != nil {
		return nil, err
	}
	down.push(func() error { nc.Close(); return nil })
	signer, err := bus.SignerFromCreds(s.creds(benchClient))
	if err != nil {
		return nil, err
	}
	r, err := newRig(ctx, nc, benchTenant, benchClient, signer, keys, ctp, DefaultCapability, b.cfg.payload, true)
	if err != nil {
		return nil, err
	}

	p, d, err := b.measure(ctx, l.String(), r.roundTrip, func() (sample, error) { return s.sample(tr.spans()) }, profile)
	if err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	res = &LevelResult{
		Level:                  l.String(),
		Environment:            env.String(),
		Deployment:             dep.name,
		Tasks:                  p.ops,
		TasksPerSec:            p.perSec(),
		P50ms:                  p.ms(0.50),
		P90ms:                  p.ms(0.90),
		P99ms:                  p.ms(0.99),
		SignaturesPerTask:      ptr(perOp(d.signed, p)),
		VerificationsPerTask:   ptr(perOp(d.verified, p)),
		JetStreamWritesPerTask: ptr(perOp(d.writes, p)),
		ServerMsgsInPerTask:    ptr(perOp(d.in, p)),
		ServerMsgsOutPerTask:   ptr(perOp(d.out, p)),
		CPUProfile:             profile,
	}
	if d.cpuKnown {
		res.CPUusPerTask = ptr(perOp(d.cpu.Microseconds(), p))
	}
	if d.spansKnown {
		res.SpansPerTask = ptr(perOp(d.spans, p))
	} else {
		res.Notes = append(res.Notes, "spans exported over OTLP, not counted")
	}
	return res, nil
}

// startOrchestrator runs the orchestrator of s's data dir at settings,
// tracing to tp, until stop; it returns once every tenant is served.
func (s *system) startOrchestrator(ctx context.Context, settings security.Settings, tp trace.TracerProvider) (stop func() error, err error) {
	o, err := orchestrator.New(s.url, s.store,
		orchestrator.WithSecurity(settings),
		orchestrator.WithSecuritySource("equilateral bench"),
		// One client submits as fast as the pipeline goes: the
		// per-principal rate, which would hold it to its share, is off.
		orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{PrincipalRatePerSecond: -1}}),
		orchestrator.WithTracerProvider(tp),
		orchestrator.WithNATSOptions(s.natsOpts...))
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx) }()
	stop = func() error { cancel(); return <-done }
	for !o.Ready() {
		select {
		case err := <-done:
			cancel()
			return nil, fmt.Errorf("the orchestrator stopped: %w", err)
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("the orchestrator is not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return stop, nil
}

// waitForAgents waits until n agent instances are in the bench tenant's
// live registry: then each is subscribed, and the orchestrator knows it.
func (s *system) waitForAgents(ctx context.Context, n int) error {
	nc, err := s.dial(ctx, auth.OrchestratorName)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	live := 0
	for {
		if kv, err := js.KeyValue(ctx, protocol.AgentsBucket); err == nil {
			if keys, err := kv.ListKeys(ctx); err == nil {
				live = 0
				for range keys.Keys() {
					live++
				}
			}
		}
		if live >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d agents registered: %w", live, n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
