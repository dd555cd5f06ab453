package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/agents/demo"
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/embedded"
	"github.com/equilateral-agents/equilateral/examples"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/security"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// The demo tenants and principals `dev` sets up (PRODUCT.md).
var (
	devTenants = []string{"acme", "globex"}
	devClient  = "client"
)

func newDevCommand() *cobra.Command {
	var (
		dataDir, host, policyFile string
		metricsAddr               string
		port                      int
		verbose, jsonLog          bool
		sec                       securityFlags
	)
	cmd := &cobra.Command{
		Use:   "dev [--data-dir DIR] [--port N]",
		Short: "Everything on one machine: NATS, the orchestrator, demo tenants and agents",
		Long: `dev runs the whole system in one process, for trying it out and for
developing agents:
  - the embedded NATS server in operator mode with JetStream (DIR is made
    with 'equilateral init' the first time, and kept: tasks and keys survive
    a restart);
  - tenants acme and globex, each with a client named "client" and the demo
    agents planner (plan), coder (code), reviewer (review) and summarizer
    (summarize); creds land in DIR/creds/<tenant>/<name>.creds;
  - the orchestrator, with examples/policy.yaml as its policy (the coder's
    results are released only once the reviewer approves them);
  - the demo flow, written to DIR/flows/plan-code-review.yaml.
It prints "ready: nats://HOST:PORT" and commands to try, and stops cleanly
on SIGINT or SIGTERM. With OTEL_EXPORTER_OTLP_ENDPOINT set, every hop is
traced (to Jaeger, for one), each part as its own service; with
--metrics-addr the orchestrator's metrics are served for Prometheus. See
docs/observability.md.

It runs at the enhanced security level in development (--security-level,
--environment): on a fresh DIR it enrolls admin "dev" for MFA, prints its
otpauth:// URI, and opens an admin session for 12 hours, so admin commands
on DIR need no code that day. A gate it does not pass stops it (exit 6).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			var handler slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})
			if jsonLog {
				handler = slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})
			}
			var p *orchestrator.PolicyFile
			var err error
			if policyFile != "" {
				p, err = readPolicy(policyFile)
			} else {
				p, err = orchestrator.ParsePolicy(examples.Policy, "examples/policy.yaml")
			}
			if err != nil {
				return usageError{err}
			}
			d := &devStack{metricsAddr: metricsAddr, dataDir: dataDir, host: host, port: port, policy: p, sec: sec, log: slog.New(telemetry.LogHandler(handler)), out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()}
			return d.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	dataDirFlag(cmd, &dataDir, "eq-dev")
	f.StringVar(&host, "host", "127.0.0.1", "listen host")
	f.IntVar(&port, "port", 4222, "listen port, -1 for any free port")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve the orchestrator's Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)")
	f.StringVar(&policyFile, "policy", "", "tenant policies (YAML) instead of the built-in examples/policy.yaml")
	f.BoolVarP(&verbose, "verbose", "v", false, "log what the orchestrator and agents do")
	f.BoolVar(&jsonLog, "log-json", false, "log as JSON")
	sec.register(cmd)
	return cmd
}

// devStack is one `dev` run.
type devStack struct {
	metricsAddr string
	dataDir     string
	host        string
	port        int
	policy      *orchestrator.PolicyFile
	sec         securityFlags
	server      *embedded.Server
	log         *slog.Logger
	out         io.Writer
	errOut      io.Writer

	shutdowns []telemetry.Shutdown
}

func (d *devStack) run(ctx context.Context) error {
	store, err := auth.Open(d.dataDir)
	if errors.Is(err, auth.ErrNoDataDir) {
		store, err = auth.Init(d.dataDir)
	}
	if err != nil {
		return err
	}
	srv, err := embedded.Start(store.ServerConfigFile(), embedded.WithHost(d.host), embedded.WithPort(d.port))
	if err != nil {
		if d.port > 0 {
			return fmt.Errorf("%w\n(is another server on port %d? pass --port N, or --port -1 for any free port)", err, d.port)
		}
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	defer d.flushTraces()
	url := srv.ClientURL()
	d.server = srv
	if err := d.enrollAdmin(store); err != nil {
		return err
	}

	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := d.provision(setupCtx, store, url); err != nil {
		return err
	}
	flow := filepath.Join(store.Dir(), "flows", "plan-code-review.yaml")
	if err := writeFlow(flow); err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	if err := d.startOrchestrator(setupCtx, runCtx, &wg, store, url); err != nil {
		return err
	}
	if err := d.startAgents(setupCtx, runCtx, &wg, store, url); err != nil {
		stop()
		wg.Wait()
		return err
	}
	if err := d.waitForAgents(setupCtx, store, url); err != nil {
		stop()
		wg.Wait()
		return err
	}
	d.printReady(url, store, flow)

	<-ctx.Done()
	fmt.Fprintln(d.errOut, "stopping: agents drain, then the orchestrator and the server stop")
	stop()
	wg.Wait()
	return nil
}

// devAdmin is the admin dev enrolls for MFA in a data dir without one.
const devAdmin = "dev"

// enrollAdmin gives a data dir at enhanced or above, which has no admin
// yet, the admin "dev" (MFA on the admin commands is a control of
// enhanced, which the development gate needs), prints how to add it to an
// authenticator, and opens an admin session for the day: on a developer's
// own machine, admin commands on this data dir work without a code until
// it ends; after that, --otp or `admin session` with the authenticator's.
func (d *devStack) enrollAdmin(store *auth.Store) error {
	recorded, _, err := recordedSettings(store.Dir(), store)
	if err != nil {
		return err
	}
	settings, _, err := d.sec.resolve(security.Settings{}, recorded, "")
	if err != nil || !settings.Level.Has(security.AdminMFA) {
		return err
	}
	if admins, err := mfa.Enrolled(store.Dir()); err != nil || len(admins) > 0 {
		return err
	}
	e, err := mfa.Enroll(store.Dir(), devAdmin)
	if err != nil {
		return err
	}
	now := time.Now()
	code, err := totp.GenerateCodeCustom(e.Secret, now, totp.ValidateOpts{Period: mfa.Period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return err
	}
	session, err := mfa.OpenSession(store.Dir(), code, now, 12*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.errOut, "admin MFA: enrolled admin %q for %s; add it to an authenticator app:\n  %s\n"+
		"admin commands on this data dir need no code until %s (a session dev opened); then --otp CODE\n",
		devAdmin, displayPath(store.Dir()), e.URI, session.ExpiresAt.Local().Format("15:04"))
	return nil
}

// provision creates whatever of the demo tenants and principals is
// missing; what exists is kept as it is.
func (d *devStack) provision(ctx context.Context, store *auth.Store, url string) error {
	sys, err := nats.Connect(url, nats.UserCredentials(store.SystemCredsFile()), nats.Name("equilateral-dev-admin"))
	if err != nil {
		return fmt.Errorf("dev: connect as the system user: %w", err)
	}
	defer sys.Close()
	pub := auth.NewNATSPublisher(sys)
	for _, tenant := range devTenants {
		if _, err := store.Tenant(tenant); errors.Is(err, auth.ErrUnknownTenant) {
			if _, err := store.CreateTenant(ctx, tenant, auth.DefaultLimits(), pub); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		specs := []auth.PrincipalSpec{{Tenant: tenant, Name: devClient, Role: auth.RoleClient}}
		for _, a := range demo.Agents() {
			specs = append(specs, auth.PrincipalSpec{Tenant: tenant, Name: a.Name, Role: auth.RoleAgent, Capabilities: []string{a.Capability}})
		}
		var missing []auth.PrincipalSpec
		for _, spec := range specs {
			p, err := store.Principal(tenant, spec.Name)
			switch {
			case errors.Is(err, auth.ErrUnknownAgent):
				missing = append(missing, spec)
			case err != nil:
				return err
			case p.Revoked():
				fmt.Fprintf(d.errOut, "warning: %s/%s is revoked; rotate it or start over with a fresh --data-dir\n", tenant, spec.Name)
			}
		}
		if len(missing) > 0 {
			if _, err := store.CreatePrincipals(ctx, missing); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeFlow(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, examples.PlanCodeReviewFlow, 0o644)
}

// tracing returns the tracer provider of one service of the stack.
func (d *devStack) tracing(ctx context.Context, service string) (trace.TracerProvider, error) {
	tp, shutdown, err := telemetry.Tracing(ctx, service, true)
	if err != nil {
		return nil, err
	}
	d.shutdowns = append(d.shutdowns, shutdown)
	return tp, nil
}

func (d *devStack) flushTraces() {
	for _, s := range d.shutdowns {
		flushTraces(s)
	}
}

func (d *devStack) startOrchestrator(setupCtx, runCtx context.Context, wg *sync.WaitGroup, store *auth.Store, url string) error {
	tp, err := d.tracing(setupCtx, "equilateral-orchestrator")
	if err != nil {
		return err
	}
	m, err := startMetrics(setupCtx, "equilateral-orchestrator", d.metricsAddr, d.out)
	if err != nil {
		return err
	}
	recorded, recordedFrom, err := recordedSettings(d.dataDir, store)
	if err != nil {
		return err
	}
	sec, from, err := d.sec.resolve(security.Settings{}, recorded, recordedFrom)
	if err != nil {
		return err
	}
	if err := checkGate(setupCtx, gateInputs{settings: sec, dataDir: d.dataDir, identities: store, policy: d.policy, server: d.server}); err != nil {
		return err
	}
	o, err := orchestrator.New(url, store,
		orchestrator.WithSecurity(sec),
		orchestrator.WithSecuritySource(from),
		orchestrator.WithMeterProvider(m.Provider),
		orchestrator.WithLogger(d.log.With("component", "orchestrator")),
		orchestrator.WithPolicies(d.policy),
		orchestrator.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer m.stop()
		done <- o.Run(runCtx)
	}()
	for !o.Ready() {
		select {
		case err := <-done:
			return fmt.Errorf("dev: orchestrator stopped: %w", err)
		case <-setupCtx.Done():
			return fmt.Errorf("dev: orchestrator not ready: %w", setupCtx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// startAgents runs every demo agent of every demo tenant in process, each
// with its own creds and connection, as `agent run` would.
func (d *devStack) startAgents(setupCtx, runCtx context.Context, wg *sync.WaitGroup, store *auth.Store, url string) error {
	keys, err := bus.NewStoreKeys(store)
	if err != nil {
		return err
	}
	tracers := map[string]trace.TracerProvider{}
	for _, tenant := range devTenants {
		for _, da := range demo.Agents() {
			tp := tracers[da.Name]
			if tp == nil {
				if tp, err = d.tracing(setupCtx, "agent-"+da.Name); err != nil {
					return err
				}
				tracers[da.Name] = tp
			}
			a, err := agents.Connect(setupCtx, url, store.DefaultCredsFile(tenant, da.Name),
				agents.WithLogger(d.log.With("component", "agent")),
				agents.WithTracerProvider(tp),
				agents.WithKeys(keys),
				agents.WithMaxConcurrent(16),
				agents.WithDrainTimeout(10*time.Second),
				agents.WithVersion(version))
			if err != nil {
				return err
			}
			if err := a.Handle(da.Capability, demoHandler(da)); err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.Run(runCtx); err != nil {
					d.log.Error("agent stopped", "tenant", tenant, "agent", da.Name, "error", err)
				}
			}()
		}
	}
	return nil
}

// waitForAgents waits until every demo agent is in its tenant's live
// registry: then the whole loop (agent, NATS, orchestrator, JetStream)
// works, and "ready" means it.
func (d *devStack) waitForAgents(ctx context.Context, store *auth.Store, url string) error {
	for _, tenant := range devTenants {
		for {
			live, err := liveAgents(ctx, store, url, tenant)
			if err == nil && len(missingAgents(live)) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("dev: the demo agents of %s never came up (missing %v): %w", tenant, missingAgents(live), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func missingAgents[T any](live map[string][]T) []string {
	var missing []string
	for _, a := range demo.Agents() {
		if len(live[a.Name]) == 0 {
			missing = append(missing, a.Name)
		}
	}
	return missing
}

// printReady prints the ready line and three commands to try.
func (d *devStack) printReady(url string, store *auth.Store, flow string) {
	prog := programName()
	creds := displayPath(store.DefaultCredsFile("acme", devClient))
	flow = displayPath(flow)
	base := fmt.Sprintf("%s task submit --server %s --creds %s", prog, url, creds)
	fmt.Fprintf(d.out, "ready: %s\n\n", url)
	fmt.Fprintf(d.out, "Tenants %s, each with client %q and agents %s. Try, in another terminal:\n\n", strings.Join(devTenants, " and "), devClient, agentNames())
	fmt.Fprintf(d.out, "  # a task: plan a feature\n  %s \\\n      --capability plan --data '{\"feature\": \"password reset\"}' --wait\n\n", base)
	fmt.Fprintf(d.out, "  # the plan -> code -> review flow (code is released only once the reviewer approves)\n  %s \\\n      --flow %s --data '{\"feature\": \"password reset\"}' --wait\n\n", base, flow)
	fmt.Fprintf(d.out, "  # watch a task live: ask for unsafe code and see the reviewer gate stop it\n  %s task watch --server %s --creds %s \\\n      $(%s --flow %s --data '{\"feature\": \"unsafe login\"}')\n\n", prog, url, creds, base, flow)
}

func agentNames() string {
	var names []string
	for _, a := range demo.Agents() {
		names = append(names, a.Name+" ("+a.Capability+")")
	}
	return strings.Join(names, ", ")
}

// programName is how to run this binary again: "go run ./cmd/equilateral"
// when it was started by go run (a temporary build), else its name.
func programName() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/equilateral"
	}
	return os.Args[0]
}

// displayPath shortens a path relative to the working directory.
func displayPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}
