package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/telemetry"
)

func newOrchestratorCommand() *cobra.Command {
	var (
		dataDir string
		server  string
		jsonLog bool
		policy  string
		ttl     time.Duration
		metrics string
		tlsCA   string
	)
	cmd := &cobra.Command{
		Use:   "orchestrator --data-dir DIR [--server URL]",
		Short: "Route, persist and audit every tenant's tasks",
		Long: `orchestrator serves every tenant of the data dir: it connects to NATS as each
tenant's orchestrator user, takes tasks on eq.tasks.submit (verifying every
signature), keeps their state in the tenant's JetStream, dispatches them to
agents on eq.cap.<capability>, applies retries, deadlines and cancellation,
and appends every decision to the tenant's audit stream. Tenants created
while it runs are picked up within a second. Several replicas may run side
by side; state is in JetStream, so a restarted one carries on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return usageError{fmt.Errorf("--data-dir is required (or set %s)", envDataDir)}
			}
			if tlsCA != "" {
				if err := trustOnly(tlsCA); err != nil {
					return err
				}
			}
			store, err := auth.OpenReadOnly(dataDir)
			if err != nil {
				return err
			}
			opts := []orchestrator.Option{orchestrator.WithLogger(newLogger(jsonLog)), orchestrator.WithResultTTL(ttl)}
			if policy != "" {
				p, err := readPolicy(policy)
				if err != nil {
					return usageError{err}
				}
				opts = append(opts, orchestrator.WithPolicies(p))
			}
			tp, shutdown, err := telemetry.Tracing(cmd.Context(), "equilateral-orchestrator", false)
			if err != nil {
				return err
			}
			defer flushTraces(shutdown)
			m, err := startMetrics(cmd.Context(), "equilateral-orchestrator", metrics, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer m.stop()
			opts = append(opts, orchestrator.WithTracerProvider(tp), orchestrator.WithMeterProvider(m.Provider))
			o, err := orchestrator.New(server, store, opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "orchestrator serving %s on %s\n", store.Dir(), server)
			return o.Run(cmd.Context())
		},
	}
	dataDirFlag(cmd, &dataDir, "")
	serverFlag(cmd, &server)
	tlsCAFlag(cmd, &tlsCA)
	cmd.Flags().BoolVar(&jsonLog, "log-json", false, "log as JSON")
	cmd.Flags().DurationVar(&ttl, "result-ttl", 7*24*time.Hour, "how long finished tasks and their results are kept")
	cmd.Flags().StringVar(&metrics, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)")
	cmd.Flags().StringVar(&policy, "policy", "", "tenant policies (YAML): rate limits, max concurrent tasks, output gates; see examples/policy.yaml")
	return cmd
}

// trustOnly makes ca the only root this process's TLS trusts.
// orchestrator.New dials NATS itself and takes no NATS options yet, so a
// server that requires TLS is verified against Go's system roots, which
// SSL_CERT_FILE names on Linux and the BSDs. It must run before anything
// uses TLS (the roots are read once). Replace with explicit nats.RootCAs
// once the orchestrator takes NATS options.
func trustOnly(ca string) error {
	if _, err := os.Stat(ca); err != nil {
		return usageError{fmt.Errorf("--tls-ca: %w", err)}
	}
	return os.Setenv("SSL_CERT_FILE", ca)
}

func readPolicy(path string) (*orchestrator.PolicyFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	p, err := orchestrator.ParsePolicy(raw, path)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	return p, nil
}

// flushTraces sends the last spans before the process exits.
func flushTraces(shutdown telemetry.Shutdown) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "equilateral: traces not flushed: %v\n", err)
	}
}
