package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Why raw and baseline do not run against a remote system.
var remoteSkips = map[Part]string{
	Raw: "a client's creds allow no plain request-reply: no subject both ends may use " +
		"(a client publishes only eq.tasks.* and hears only its own events and inbox)",
	Baseline: "it needs the JetStream API, which only the tenant's orchestrator user may use, not a client",
}

// firstTaskWait bounds the first task against a remote system, which
// shows that an agent serves the capability.
const firstTaskWait = 30 * time.Second

// remote measures the round trip of a running system as one of its
// clients, at whatever level its orchestrator announces. With agent
// creds, the agents run here and echo; else the tenant's agents answer.
// Only the client's side is visible: the server's and orchestrator's
// CPU, signatures and writes are not, and are left out.
func (b *bench) remote(ctx context.Context) (res *LevelResult, err error) {
	r := b.cfg.remote
	id, err := auth.ReadIdentity(r.Creds)
	if err != nil {
		return nil, err
	}
	if id.Role != auth.RoleClient || id.Tenant == "" {
		return nil, fmt.Errorf("%w: %s holds %q creds of tenant %q: the bench submits as a client (equilateral client create)", ErrConfig, r.Creds, id.Role, id.Tenant)
	}
	if r.AgentCreds != "" {
		a, err := auth.ReadIdentity(r.AgentCreds)
		if err != nil {
			return nil, err
		}
		if a.Role != auth.RoleAgent || a.Tenant != id.Tenant || !slices.Contains(a.Capabilities, r.Capability) {
			return nil, fmt.Errorf("%w: %s: want an agent of tenant %s holding capability %s, not a %q of tenant %q with %v",
				ErrConfig, r.AgentCreds, id.Tenant, r.Capability, a.Role, a.Tenant, a.Capabilities)
		}
	}
	setup, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	var down teardown
	defer func() {
		if derr := down.run(); derr != nil && err == nil {
			err = fmt.Errorf("remote: tear down: %w", derr)
		}
	}()
	tr := newTracing()
	down.push(tr.shutdown)

	ctp, err := tr.provider(setup, "bench-client")
	if err != nil {
		return nil, err
	}
	nc, err := bus.Dial(setup, r.URL, append([]nats.Option{
		nats.UserCredentials(r.Creds),
		nats.Name("equilateral-bench/" + id.Name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(id.Name)),
		nats.Timeout(5 * time.Second),
	}, r.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("bench: cannot reach NATS at %s as %s: %w", r.URL, id.Name, err)
	}
	down.push(func() error { nc.Close(); return nil })
	signer, err := bus.SignerFromCreds(r.Creds)
	if err != nil {
		return nil, err
	}
	keys := bus.NewSourceKeys(protocol.Source(id.Tenant, auth.OrchestratorName))
	rg, err := newRig(ctx, nc, id.Tenant, id.Name, signer, keys, ctp, r.Capability, b.cfg.payload, r.AgentCreds != "")
	if err != nil {
		return nil, err
	}
	info, err := rg.client.Info(setup)
	if err != nil {
		return nil, fmt.Errorf("bench: ask the orchestrator of tenant %s its level: %w", id.Tenant, err)
	}
	b.progressf("remote: tenant %s's orchestrator runs at %s in %s", id.Tenant, info.SecurityLevel, info.Environment)

	if r.AgentCreds != "" {
		atp, err := tr.provider(setup, "agent-bench")
		if err != nil {
			return nil, err
		}
		stop, err := b.startAgents(setup, r.URL, slices.Repeat([]string{r.AgentCreds}, b.cfg.agents), r.Capability, atp, nil, r.NATSOptions)
		if err != nil {
			return nil, err
		}
		down.push(stop)
	}
	if err := rg.first(ctx); err != nil {
		return nil, explainRefusal(err)
	}

	p, d, err := b.measure(ctx, "remote", rg.roundTrip, func() (sample, error) {
		return sample{cpu: cpuTime(), crypto: bus.Counts(), spans: -1}, nil
	}, b.cfg.cpuProfile)
	if err != nil {
		return nil, explainRefusal(err)
	}
	res = &LevelResult{
		Level:       info.SecurityLevel,
		Environment: info.Environment,
		Deployment:  "remote: " + r.URL,
		Tasks:       p.ops,
		TasksPerSec: p.perSec(),
		P50ms:       p.ms(0.50),
		P90ms:       p.ms(0.90),
		P99ms:       p.ms(0.99),
		CPUProfile:  b.cfg.cpuProfile,
		Notes: []string{
			"the server and the orchestrator run elsewhere: CPU, signatures, verifications and JetStream writes per task are not visible from a client, so they and the floor are left out",
		},
	}
	here := "the client"
	if r.AgentCreds != "" {
		here = fmt.Sprintf("the client and %d agents", b.cfg.agents)
	}
	if d.cpuKnown {
		res.Notes = append(res.Notes, fmt.Sprintf("this process (%s) used %.0f µs of CPU per task", here, perOp(d.cpu.Microseconds(), p)))
	}
	if r.AgentCreds == "" {
		res.Notes = append(res.Notes, "the tenant's own agents answered: each task was checked completed, not its output")
	}
	return res, nil
}

// explainRefusal adds to a rate or capacity refusal what it means for a
// bench: the tenant's policy, not the system, set the pace.
func explainRefusal(err error) error {
	var refused *client.RefusedError
	if errors.As(err, &refused) && (refused.Reason == protocol.ReasonRateLimited || refused.Reason == protocol.ReasonOverCapacity) {
		return fmt.Errorf("%w\n(the tenant's policy bounds what one client may submit, so a bench would measure the bound: "+
			"measure a tenant whose policy sets no rate_per_second or max_concurrent and principal_rate_per_second: -1, or lower --concurrency)", err)
	}
	return err
}

// first submits one task and waits for it, longer than for any other:
// it shows that an agent serves the capability. A task that does not
// finish is cancelled.
func (r *rig) first(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, firstTaskWait)
	defer cancel()
	acc, err := r.client.Submit(ctx, protocol.SubmitRequest{Capability: r.capability, Input: input(0, r.payload)})
	if err != nil {
		return fmt.Errorf("bench: the first task: %w", err)
	}
	v, err := r.client.Await(ctx, acc.TaskID)
	if err != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		r.client.Cancel(cctx, acc.TaskID)
		ccancel()
		return fmt.Errorf("bench: the first task did not finish in %s (cancelled it): does an agent serve capability %q? Run one, or give the bench its creds to run: %w", firstTaskWait, r.capability, err)
	}
	if v.State != protocol.StateCompleted {
		return fmt.Errorf("bench: the first task ended %s: %s", v.State, v.Error)
	}
	return nil
}
