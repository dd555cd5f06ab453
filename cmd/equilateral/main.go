package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/agents/subprocess"
	"github.com/equilateral-agents/equilateral/security"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// `agent run --exec` starts handlers through this binary, which sets
	// their resource limits before it becomes them.
	subprocess.RunShimIfRequested()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "equilateral: %v\n", err)
		var usage usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		var gate *security.GateError
		var below belowLevelError
		if errors.As(err, &gate) || errors.As(err, &below) {
			os.Exit(exitGate)
		}
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "equilateral",
		Short: "Message-bus orchestrator for agents on NATS",
		Long: `Equilateral runs agents as NATS subscribers with their own nkey credentials
and subject-level ACLs, isolates tenants as NATS accounts, and routes signed,
traced CloudEvents between them.

Start with:
  equilateral init --data-dir ./eq            # operator, system account, server config
  equilateral server --data-dir ./eq          # embedded NATS in operator mode
  equilateral tenant create acme --data-dir ./eq
  equilateral agent create coder --data-dir ./eq --tenant acme --capability code

Connection flags mean the same in every command: --server (env NATS_URL,
default ` + defaultServerURL + `), --creds (env NATS_CREDS) and --data-dir (env
EQUILATERAL_DATA_DIR). A command about one tenant, agent or client takes
its NAME as the argument.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newDevCommand(),
		newInitCommand(),
		newServerCommand(),
		newTenantCommand(),
		newAgentCommand(),
		newClientCommand(),
		newAdminCommand(),
		newOrchestratorCommand(),
		newTaskCommand(),
		newAuditCommand(),
		newSecurityCommand(),
		newHealthCommand(),
		newBenchCommand(),
	)
	return root
}

// usageError marks a mistake in the command line itself (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
