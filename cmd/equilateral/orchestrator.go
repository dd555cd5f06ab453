package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/security"
	"github.com/equilateral-agents/equilateral/telemetry"
)

func newOrchestratorCommand() *cobra.Command {
	var (
		configFile string
		server     string
		cfg        orchestrator.Config
		sec        securityFlags
	)
	cmd := &cobra.Command{
		Use:   "orchestrator (--data-dir DIR | --config FILE) [--server URL,...]",
		Short: "Route, persist and audit every tenant's tasks",
		Long: `orchestrator serves every tenant of the data dir: it connects to NATS as each
tenant's orchestrator user, takes tasks on eq.tasks.submit (verifying every
signature), keeps their state in the tenant's JetStream, dispatches them to
agents on eq.cap.<capability>, applies retries, deadlines and cancellation,
and appends every decision to the tenant's audit stream. Tenants created
while it runs are picked up within a second. Several replicas may run side
by side; state is in JetStream, so a restarted one carries on.

It reads the data dir read-only and never a signing seed. On a cluster of
three servers or more every stream and bucket keeps 3 replicas (--replicas
sets another number).

--config FILE holds the same settings in one YAML file (see
docs/cluster.md): servers, data_dir, tls_ca, policy, replicas, result_ttl,
metrics_addr, log_json, security.level, environment. A flag given on the
command line wins over the file.

It runs at the security level of --security-level (else the config file's,
else the data dir's, else enhanced) in the environment of --environment
(else development), announces it on eq.tasks.info and in every audit
record; docs/security.md, "Levels", says what each level switches on.
Before serving it runs the gate: below the environment's level
(development: enhanced, production: advanced, enterprise: enterprise), or
with a control of its level off (an enrolled admin for MFA, encryption at
rest, TLS, a review gate on every generates_code capability, creds that
expire), it does not start, names each missing control with its fix, and
exits 6. --server-config names the config of a single server on this host,
whose encryption at rest a connection cannot show.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Servers = strings.Split(server, ",")
			if configFile != "" {
				if err := mergeConfigFile(cmd, configFile, &cfg); err != nil {
					return err
				}
			}
			identities, keys, closeIDs, err := openIdentities(cfg)
			if err != nil {
				return err
			}
			defer closeIDs()
			recorded, recordedFrom, err := recordedSettings(cfg.DataDir, identities)
			if err != nil {
				return err
			}
			settings, from, err := sec.resolve(security.Settings{Level: cfg.Security.Level, Environment: cfg.Environment,
				MaxCredentialAge: cfg.Security.MaxCredentialAge}, recorded, recordedFrom)
			if err != nil {
				return err
			}
			opts := []orchestrator.Option{
				orchestrator.WithSecurity(settings),
				orchestrator.WithSecuritySource(from),
				orchestrator.WithLogger(newLogger(cfg.LogJSON)),
				orchestrator.WithResultTTL(cfg.ResultTTL),
				orchestrator.WithReplicas(cfg.Replicas),
				orchestrator.WithNATSOptions(natsTLS(cfg.TLSCA)...),
			}
			if keys != nil {
				opts = append(opts, orchestrator.WithKeys(keys))
			}
			var policy *orchestrator.PolicyFile
			if cfg.Policy != "" {
				if policy, err = readPolicy(cfg.Policy); err != nil {
					return usageError{err}
				}
				opts = append(opts, orchestrator.WithPolicies(policy))
			}
			// The gate, before anything is served: below the environment's
			// level, or with a control of the level off, it does not start.
			gate := gateInputs{settings: settings, servers: cfg.Servers, dataDir: cfg.DataDir,
				identities: identities, policy: policy, natsOpts: natsTLS(cfg.TLSCA), replicas: cfg.Replicas,
				serverConfigs: cfg.ServerConfigs}
			if err := checkGate(cmd.Context(), gate); err != nil {
				return err
			}
			if err := checkLowering(cmd.Context(), gate, recorded); err != nil {
				return err
			}
			tp, shutdown, err := telemetry.Tracing(cmd.Context(), "equilateral-orchestrator", false)
			if err != nil {
				return err
			}
			defer flushTraces(shutdown)
			m, err := startMetrics(cmd.Context(), "equilateral-orchestrator", cfg.MetricsAddr, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer m.stop()
			opts = append(opts, orchestrator.WithTracerProvider(tp), orchestrator.WithMeterProvider(m.Provider))
			server := strings.Join(cfg.Servers, ",")
			o, err := orchestrator.New(server, identities, opts...)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "orchestrator serving %s on %s at security level %s (%s)\n", identitiesFrom(cfg), server, settings.Level, settings.Environment)
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "config file (YAML) with the settings below; flags given win over it")
	dataDirFlag(cmd, &cfg.DataDir, "")
	cmd.Flags().StringVar(&cfg.OperatorJWT, "operator-jwt", "", "with --creds-dir, instead of --data-dir: the operator JWT, to trust the identities published over NATS (tenant publish)")
	cmd.Flags().StringVar(&cfg.CredsDir, "creds-dir", "", "with --operator-jwt: a directory of <tenant>.creds, each tenant's orchestrator creds; the tenants to serve")
	serverFlag(cmd, &server)
	tlsCAFlag(cmd, &cfg.TLSCA)
	cmd.Flags().BoolVar(&cfg.LogJSON, "log-json", false, "log as JSON")
	cmd.Flags().DurationVar(&cfg.ResultTTL, "result-ttl", 7*24*time.Hour, "how long finished tasks and their results are kept")
	cmd.Flags().IntVar(&cfg.Replicas, "replicas", 0, "copies of every stream and bucket, 1 to 5 (default: 3 on a cluster of three servers or more, else 1)")
	cmd.Flags().StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)")
	cmd.Flags().StringVar(&cfg.Policy, "policy", "", "tenant policies (YAML): rate limits, max concurrent tasks, output gates; see examples/policy.yaml")
	cmd.Flags().StringArrayVar(&cfg.ServerConfigs, "server-config", nil, "a nats-server config of a server on this host (repeat for more): the gate reads it to see encryption at rest where a connection cannot show it (one server, not a cluster)")
	sec.register(cmd)
	return cmd
}

// openIdentities opens where the orchestrator learns identities: a data
// dir, read only; or, with the operator JWT and a creds dir, what the
// admin published over NATS (then the keys come with it).
func openIdentities(cfg orchestrator.Config) (orchestrator.Identities, bus.KeyRegistry, func(), error) {
	switch {
	case cfg.DataDir != "" && cfg.CredsDir == "" && cfg.OperatorJWT == "":
		d, err := auth.OpenReadOnly(cfg.DataDir)
		return d, nil, func() {}, err
	case cfg.DataDir == "" && cfg.CredsDir != "" && cfg.OperatorJWT != "":
		operatorJWT, err := os.ReadFile(cfg.OperatorJWT)
		if err != nil {
			return nil, nil, nil, usageError{fmt.Errorf("--operator-jwt: %w", err)}
		}
		r, err := auth.OpenRemote(strings.Join(cfg.Servers, ","), cfg.CredsDir, operatorJWT, natsTLS(cfg.TLSCA)...)
		if err != nil {
			return nil, nil, nil, usageError{err}
		}
		return r, bus.NewOwnerKeys(r), r.Close, nil
	}
	return nil, nil, nil, usageError{fmt.Errorf("give --data-dir (or set %s), or --operator-jwt with --creds-dir (or data_dir, or operator_jwt and creds_dir, in --config)", envDataDir)}
}

// identitiesFrom says where identities come from, for the start-up line.
func identitiesFrom(cfg orchestrator.Config) string {
	if cfg.DataDir != "" {
		return cfg.DataDir
	}
	return "identities over NATS (creds " + cfg.CredsDir + ")"
}

// mergeConfigFile reads the config file into cfg, except for the settings
// whose flags were given on the command line.
func mergeConfigFile(cmd *cobra.Command, path string, cfg *orchestrator.Config) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return usageError{fmt.Errorf("--config: %w", err)}
	}
	file, err := orchestrator.ParseConfig(raw, path)
	if err != nil {
		return usageError{fmt.Errorf("--config: %w", err)}
	}
	set := func(flag string) bool { return cmd.Flags().Changed(flag) }
	if len(file.Servers) > 0 && !set("server") && os.Getenv(envServer) == "" {
		cfg.Servers = file.Servers
	}
	if file.DataDir != "" && !set("data-dir") && os.Getenv(envDataDir) == "" {
		cfg.DataDir = file.DataDir
	}
	if file.OperatorJWT != "" && !set("operator-jwt") {
		cfg.OperatorJWT = file.OperatorJWT
	}
	if file.CredsDir != "" && !set("creds-dir") {
		cfg.CredsDir = file.CredsDir
	}
	if file.TLSCA != "" && !set("tls-ca") && os.Getenv(envCA) == "" {
		cfg.TLSCA = file.TLSCA
	}
	if len(file.ServerConfigs) > 0 && !set("server-config") {
		cfg.ServerConfigs = file.ServerConfigs
	}
	if file.Policy != "" && !set("policy") {
		cfg.Policy = file.Policy
	}
	if file.Replicas != 0 && !set("replicas") {
		cfg.Replicas = file.Replicas
	}
	if file.ResultTTL != 0 && !set("result-ttl") {
		cfg.ResultTTL = file.ResultTTL
	}
	if file.MetricsAddr != "" && !set("metrics-addr") {
		cfg.MetricsAddr = file.MetricsAddr
	}
	if file.LogJSON && !set("log-json") {
		cfg.LogJSON = true
	}
	return nil
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
