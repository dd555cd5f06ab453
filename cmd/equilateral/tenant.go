package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
)

func newTenantCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Create, list and delete tenants (one NATS account each)",
	}
	cmd.AddCommand(newTenantCreateCommand(), newTenantListCommand(), newTenantDeleteCommand())
	return cmd
}

func newTenantCreateCommand() *cobra.Command {
	var (
		flags       adminFlags
		limits      = auth.DefaultLimits()
		noJetStream bool
		connections int64
		subs        int64
		streams     int64
		consumers   int64
	)
	cmd := &cobra.Command{
		Use:   "create NAME --data-dir DIR [--server URL] [limits]",
		Short: "Create a tenant account and publish it to the running servers",
		Long: `create makes a NATS account for the tenant, with one scoped signing key per
role (agent, client, orchestrator) whose template is that role's ACL, and an
orchestrator user whose creds go to DIR/creds/<tenant>/orchestrator.creds.
The account is published live ($SYS.REQ.CLAIMS.UPDATE); no restart.

NAME is a single subject token: [a-z0-9][a-z0-9_-]{0,63}.
Counts take -1 for unlimited; sizes take 1048576, 64KiB, 1GB or -1.`,
		Args: exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := flags.open()
			if err != nil {
				return err
			}
			limits.Connections, limits.Subscriptions = connections, subs
			limits.JSStreams, limits.JSConsumers = streams, consumers
			limits.JetStream = !noJetStream
			if err := limits.Validate(); err != nil {
				return usageError{err}
			}
			ctx, cancel := withTimeout(cmd.Context())
			defer cancel()
			pub, release, err := flags.publisher(ctx, store)
			if err != nil {
				return err
			}
			defer release()
			tenant, err := store.CreateTenant(ctx, args[0], limits, pub)
			if err != nil {
				return err
			}
			if flags.json {
				return printJSON(cmd, tenant)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant %s created (account %s)\norchestrator creds %s\n",
				tenant.Name, tenant.AccountKey, store.DefaultCredsFile(tenant.Name, auth.OrchestratorName))
			return nil
		},
	}
	flags.register(cmd, true)
	f := cmd.Flags()
	f.Int64Var(&connections, "max-connections", auth.Unlimited, "active connections")
	f.Int64Var(&subs, "max-subscriptions", auth.Unlimited, "subscriptions")
	f.Var(sizeValue{&limits.MaxPayload}, "max-payload", "largest message (default 1MiB)")
	f.Var(sizeValue{&limits.Data}, "max-data", "bytes in flight per connection (default unlimited)")
	f.BoolVar(&noJetStream, "no-jetstream", false, "disable JetStream for the tenant (the orchestrator needs it)")
	f.Var(sizeValue{&limits.JSMemory}, "js-memory", "JetStream memory storage (default unlimited)")
	f.Var(sizeValue{&limits.JSDisk}, "js-disk", "JetStream disk storage (default unlimited)")
	f.Int64Var(&streams, "js-streams", auth.Unlimited, "JetStream streams")
	f.Int64Var(&consumers, "js-consumers", auth.Unlimited, "JetStream consumers")
	return cmd
}

func newTenantListCommand() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "list --data-dir DIR",
		Short: "List tenants and their limits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := flags.open()
			if err != nil {
				return err
			}
			tenants, err := store.Tenants()
			if err != nil {
				return err
			}
			if flags.json {
				if tenants == nil {
					tenants = []auth.Tenant{}
				}
				return printJSON(cmd, tenants)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TENANT\tACCOUNT\tCONNECTIONS\tMAX PAYLOAD\tJETSTREAM\tCREATED")
			for _, t := range tenants {
				js := "off"
				if t.Limits.JetStream {
					js = "disk " + limitString(t.Limits.JSDisk) + ", mem " + limitString(t.Limits.JSMemory)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.AccountKey, limitString(t.Limits.Connections),
					limitString(t.Limits.MaxPayload), js, t.CreatedAt.Format("2006-01-02 15:04:05Z"))
			}
			return w.Flush()
		},
	}
	flags.register(cmd, false)
	return cmd
}

func newTenantDeleteCommand() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "delete NAME --data-dir DIR [--server URL]",
		Short: "Delete a tenant: disconnect its users and remove its account and keys",
		Long: `delete revokes every user of the tenant (live connections close at once),
deletes the account from the servers ($SYS.REQ.CLAIMS.DELETE), and removes
its keys and creds from the data dir. JetStream data of the account stays on
the servers until an operator removes it.`,
		Args: exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return flags.change(cmd, func(ctx context.Context, store *auth.Store, pub auth.Publisher) error {
				if err := store.DeleteTenant(ctx, args[0], pub); err != nil {
					return err
				}
				if flags.json {
					return printJSON(cmd, map[string]string{"deleted": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tenant %s deleted\n", args[0])
				return nil
			})
		},
	}
	flags.register(cmd, true)
	return cmd
}

func exactlyOneName(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("want exactly one tenant NAME, got %d arguments", len(args))}
	}
	return nil
}

func limitString(n int64) string {
	if n == auth.Unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
