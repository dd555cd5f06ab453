package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

func newSecurityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "security",
		Short: "The progressive security levels: what the system calls for and runs at",
	}
	cmd.AddCommand(newSecurityAssessCommand(), newSecuritySetLevelCommand())
	return cmd
}

func newSecuritySetLevelCommand() *cobra.Command {
	var (
		flags       adminFlags
		environment string
		maxAge      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set-level LEVEL --data-dir DIR [--environment E] [--max-credential-age D]",
		Short: "Record the security level the system runs at (an admin's decision, with MFA)",
		Long: `set-level records LEVEL (foundation, enhanced, advanced or enterprise) and
the environment in the data dir's security.json, and publishes them with
every tenant's identities (signed by the operator) for orchestrators that
learn them over NATS. Orchestrators started without --security-level take
it at their next start; each records the change in its tenants' audit
streams (io.equilateral.security.level_changed.v1).

It is how an admin approves lowering the level: in production and
enterprise an orchestrator refuses to start below the level its tenants
last ran at unless the recorded level allows it. Creds issued from now on
follow the level (from advanced they expire after --max-credential-age).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			level, err := security.ParseLevel(args[0])
			if err != nil {
				return usageError{err}
			}
			if maxAge < 0 {
				return usageError{errors.New("--max-credential-age must not be negative")}
			}
			store, err := flags.open() // MFA first, before anything changes
			if err != nil {
				return err
			}
			s, err := security.ReadSettings(store.Dir())
			if err != nil {
				return err
			}
			from := s
			s.Level = level
			if environment != "" {
				if s.Environment, err = security.ParseEnvironment(environment); err != nil {
					return usageError{fmt.Errorf("--environment: %w", err)}
				}
			}
			if cmd.Flags().Changed("max-credential-age") {
				s.MaxCredentialAge = security.Duration(maxAge)
			}
			if err := security.WriteSettings(store.Dir(), s); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "security level %s in %s recorded (was %s in %s)\n", s.Level, s.Environment, from.Level, from.Environment)
			if s.Level < s.Environment.Gate() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s is below the %s gate (%s): orchestrators will refuse to start\n", s.Level, s.Environment, s.Environment.Gate())
			}
			tenants, err := store.Tenants()
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context())
			defer cancel()
			for _, t := range tenants {
				if err := flags.publishIdentities(ctx, store, t.Name); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
				}
			}
			return nil
		},
	}
	flags.register(cmd, true)
	flags.requireMFA(cmd)
	cmd.Flags().StringVar(&environment, "environment", "", "development, production or enterprise (default: as recorded)")
	cmd.Flags().DurationVar(&maxAge, "max-credential-age", 0, "how long creds issued from advanced up stay valid (default: as recorded, else 720h)")
	return cmd
}

// belowLevelError is an assessment whose running level is below what the
// usage calls for (exit status exitGate, as a refused gate).
type belowLevelError struct{ running, required security.Level }

func (e belowLevelError) Error() string {
	if !e.running.Valid() {
		return fmt.Sprintf("no orchestrator has recorded a level for every tenant yet; the usage calls for %s", e.required)
	}
	return fmt.Sprintf("the system runs at %s; its usage calls for %s", e.running, e.required)
}

// assessment is what `security assess` prints (--json).
type assessment struct {
	Required security.Level `json:"required_level"`
	// Running is the lowest level a tenant's orchestrator recorded; 0 when
	// one has not recorded any yet (RunningLevel then says "none").
	Running      security.Level     `json:"-"`
	RunningLevel string             `json:"running_level"`
	Environment  string             `json:"environment"`
	Usage        security.Usage     `json:"usage"`
	Triggers     []security.Trigger `json:"triggers"`
	Missing      []security.Missing `json:"missing"`
	// Tenants are each tenant's recorded level (its last level_changed).
	Tenants map[string]string `json:"tenants"`
}

func newSecurityAssessCommand() *cobra.Command {
	var (
		flags    adminFlags
		policy   string
		watch    bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "assess --data-dir DIR [--server URL] [--policy FILE] [--json] [--watch]",
		Short: "Say which security level the system's usage calls for, and what is missing",
		Long: `assess reads the live metrics of every tenant of the data dir (as each
tenant's orchestrator user, from its audit stream): principals active in
the last 30 days, tasks executed in the last 30 days, the number of
tenants, the code-generating capabilities of --policy and cross-tenant
shares. It applies the thresholds (docs/security.md, "Levels"):

  enhanced    10 active principals, 100 executions, a code-generating
              capability, or a share
  advanced    25 active principals, 1,000 executions, or 2 tenants
  enterprise  100 active principals, or 10,000 executions

and prints the level the usage calls for, the level the system runs at (the
lowest level any tenant's orchestrator last recorded), the thresholds
crossed with their values, and the controls missing with how to turn each
on. It exits 6 when the running level is below the level called for (for
CI), 0 otherwise. --watch assesses again every --interval and says when the
level called for changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.dataDir == "" {
				return usageError{errors.New("--data-dir is required (or set " + envDataDir + ")")}
			}
			dir, err := auth.OpenReadOnly(flags.dataDir)
			if err != nil {
				return err
			}
			var codeGen int
			if policy != "" {
				p, err := readPolicy(policy)
				if err != nil {
					return usageError{err}
				}
				codeGen = len(p.CodeGenerating())
			}
			var last security.Level
			for {
				ctx, cancel := withTimeout(cmd.Context())
				a, err := assess(ctx, dir, flags, codeGen)
				cancel()
				if err != nil {
					return err
				}
				if !watch {
					if flags.json {
						if err := printJSON(cmd, a); err != nil {
							return err
						}
					} else {
						printAssessment(cmd.OutOrStdout(), a)
					}
					if a.Running < a.Required {
						return belowLevelError{a.Running, a.Required}
					}
					return nil
				}
				if a.Required != last {
					if flags.json {
						if err := printJSON(cmd, a); err != nil {
							return err
						}
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: the usage calls for %s (runs at %s)\n", time.Now().Format(time.RFC3339), a.Required, a.Running)
						for _, t := range a.Triggers {
							fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", t)
						}
					}
					last = a.Required
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	flags.register(cmd, false)
	cmd.Flags().StringVar(&policy, "policy", "", "the orchestrator's policy file: its code-generating capabilities count")
	cmd.Flags().BoolVar(&watch, "watch", false, "keep assessing; print when the level called for changes")
	cmd.Flags().DurationVar(&interval, "interval", time.Minute, "with --watch, how often to assess")
	return cmd
}

// assess measures every tenant's usage and compares what it calls for with
// the levels the tenants' orchestrators last recorded.
func assess(ctx context.Context, dir *auth.Directory, flags adminFlags, codeGen int) (assessment, error) {
	tenants, err := dir.Tenants()
	if err != nil {
		return assessment{}, err
	}
	a := assessment{Tenants: map[string]string{}, Triggers: []security.Trigger{}, Missing: []security.Missing{}}
	principals := map[string]bool{}
	var envs []string
	since := time.Now().Add(-orchestrator.UsageWindow)
	for _, t := range tenants {
		nc, js, err := connectAsOrchestrator(flags.server, dir.DefaultCredsFile(t.Name, auth.OrchestratorName), "equilateral-assess/"+t.Name, natsTLS(flags.tlsCA))
		if err != nil {
			return a, fmt.Errorf("cannot reach NATS at %s as tenant %s's orchestrator: %w", flags.server, t.Name, err)
		}
		u, rec, recorded, err := readTenantSecurity(ctx, js, since)
		if err == nil {
			a.Usage.Executions += u.Executions
			for p := range u.Principals {
				principals[t.Name+"/"+p] = true
			}
			if recorded {
				a.Tenants[t.Name] = rec.To
				envs = append(envs, rec.Environment)
			}
		}
		nc.Close()
		if err != nil {
			return a, fmt.Errorf("tenant %s: %w", t.Name, err)
		}
	}
	a.Usage.ActivePrincipals = len(principals)
	a.Usage.Tenants = len(tenants)
	a.Usage.CodeGenerating = codeGen
	a.Required, a.Triggers = security.Assess(a.Usage)
	if a.Triggers == nil {
		a.Triggers = []security.Trigger{}
	}

	// Running: the lowest level a tenant records; a tenant never served
	// runs at nothing yet, which is below everything.
	a.Running = security.Enterprise
	for _, t := range tenants {
		l, err := security.ParseLevel(a.Tenants[t.Name])
		if err != nil {
			a.Running = 0
			break
		}
		a.Running = min(a.Running, l)
	}
	if len(tenants) == 0 {
		a.Running = 0
	}
	a.RunningLevel = "none"
	if a.Running.Valid() {
		a.RunningLevel = a.Running.String()
	}
	slices.Sort(envs)
	a.Environment = strings.Join(slices.Compact(envs), ",")
	for _, c := range a.Required.On() {
		if a.Running.Has(c) || c.Planned() {
			continue
		}
		fix := c.Fix()
		if fix == "" {
			fix = "switched on by the level: --security-level " + c.Level().String()
		}
		a.Missing = append(a.Missing, security.Missing{Control: c, What: c.What(), Why: "off below " + c.Level().String(), Fix: fix})
	}
	return a, nil
}

// readTenantSecurity reads one tenant's usage since the given time and
// its last recorded level (recorded false when it has none).
func readTenantSecurity(ctx context.Context, js jetstream.JetStream, since time.Time) (orchestrator.TenantUsage, protocol.LevelChanged, bool, error) {
	u, err := orchestrator.ReadUsage(ctx, js, since)
	if err != nil {
		return u, protocol.LevelChanged{}, false, err
	}
	rec, _, recorded, err := orchestrator.LastLevel(ctx, js)
	return u, rec, recorded, err
}

func printAssessment(w io.Writer, a assessment) {
	running := a.Running.String()
	if !a.Running.Valid() {
		running = "none recorded (an orchestrator has not served every tenant)"
	}
	fmt.Fprintf(w, "calls for:  %s\nruns at:    %s\n", a.Required, running)
	fmt.Fprintf(w, "usage:      %d active principals, %d executions in 30 days, %d tenants, %d code-generating capabilities, %d shares\n",
		a.Usage.ActivePrincipals, a.Usage.Executions, a.Usage.Tenants, a.Usage.CodeGenerating, a.Usage.Shares)
	if len(a.Triggers) == 0 {
		fmt.Fprintln(w, "triggers:   none (foundation)")
	} else {
		fmt.Fprintln(w, "triggers:")
		for _, t := range a.Triggers {
			fmt.Fprintf(w, "  %s\n", t)
		}
	}
	if len(a.Missing) == 0 {
		fmt.Fprintln(w, "missing:    nothing")
		return
	}
	fmt.Fprintln(w, "missing:")
	for _, m := range a.Missing {
		fmt.Fprintf(w, "  %s: %s\n    fix: %s\n", m.Control, m.What, m.Fix)
	}
}
