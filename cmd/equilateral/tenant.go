package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
)

func newTenantCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Create, list and delete tenants (one NATS account each)",
	}
	cmd.AddCommand(newTenantCreateCommand(), newTenantListCommand(), newTenantDeleteCommand(), newTenantPublishCommand())
	return cmd
}

func newTenantCreateCommand() *cobra.Command {
	var (
		flags       adminFlags
		name        = nameArg{what: "tenant"}
		limits      = auth.DefaultLimits()
		noJetStream bool
		connections int64
		subs        int64
		streams     int64
		consumers   int64
		existOK     bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --data-dir DIR [--server URL] [limits]",
		Short: "Create a tenant account and publish it to the running servers",
		Long: `create makes a NATS account for the tenant, with one scoped signing key per
role (agent, client, orchestrator) whose template is that role's ACL, and an
orchestrator user whose creds go to DIR/creds/<tenant>/orchestrator.creds.
The account is published live to the server at --server
($SYS.REQ.CLAIMS.UPDATE; no restart), or with --offline recorded in the
data dir for the local server's next start.

Every tenant has finite JetStream limits (--max-storage 1GiB, --max-memory
256MiB, --max-streams 32, --max-consumers 1024 unless given), so a tenant
that fills its storage is refused on its own writes and no other tenant is
affected. A server reserves the sum of its tenants' JetStream limits against
its own (max_file_store, max_memory_store in its config): create refuses a
tenant whose limits do not fit, says what is left, and checks that JetStream
works for the new tenant before it returns (not with --offline).

NAME is a single subject token: [a-z0-9][a-z0-9_-]{0,63}.
Counts take -1 for unlimited; sizes take 1048576, 64KiB, 1GB or -1.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenantName, err := name.value(args)
			if err != nil {
				return err
			}
			limits.Connections, limits.Subscriptions = connections, subs
			limits.JSStreams, limits.JSConsumers = streams, consumers
			limits.JetStream = !noJetStream
			if err := limits.Validate(); err != nil {
				return usageError{err}
			}
			// What exists needs no change, so no code: a set-up script run
			// again passes without one.
			if existOK && tenantExists(flags.dataDir, tenantName) {
				existed(cmd, true, auth.ErrTenantExists, auth.ErrTenantExists, "tenant "+tenantName)
				return nil
			}
			// After the usage checks, so a mistyped limit spends no code.
			store, err := flags.open()
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context())
			defer cancel()
			pub, release, err := flags.publisher(ctx, store)
			if err != nil {
				return err
			}
			defer release()
			tenant, err := store.CreateTenant(ctx, tenantName, limits, pub)
			if existed(cmd, existOK, err, auth.ErrTenantExists, "tenant "+tenantName) {
				return nil
			}
			if err != nil {
				return withCapacityHint(err)
			}
			if tenant.Limits.JetStream {
				// The tenant exists either way; orchestrators on other
				// hosts learn its principals once they are published.
				if err := flags.publishIdentities(ctx, store, tenant.Name); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
				}
			}
			if flags.json {
				return printJSON(cmd, tenant)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant %s created (account %s)\norchestrator creds %s\n",
				tenant.Name, tenant.AccountKey, store.DefaultCredsFile(tenant.Name, auth.OrchestratorName))
			if l := tenant.Limits; l.JetStream {
				fmt.Fprintf(cmd.OutOrStdout(), "JetStream: storage %s, memory %s, %s streams, %s consumers\n",
					auth.FormatSize(l.JSDisk), auth.FormatSize(l.JSMemory), limitString(l.JSStreams), limitString(l.JSConsumers))
			}
			return nil
		},
	}
	flags.register(cmd, true)
	flags.requireMFA(cmd)
	name.register(cmd)
	existOKFlag(cmd, &existOK)
	f := cmd.Flags()
	f.Int64Var(&connections, "max-connections", auth.Unlimited, "active connections")
	f.Int64Var(&subs, "max-subscriptions", auth.Unlimited, "subscriptions")
	f.Var(limitSize{&limits.MaxPayload}, "max-payload", "largest message")
	f.Var(limitSize{&limits.Data}, "max-data", "bytes in flight per connection")
	f.BoolVar(&noJetStream, "no-jetstream", false, "disable JetStream for the tenant (the orchestrator needs it)")
	f.Var(limitSize{&limits.JSDisk}, "max-storage", "JetStream file storage")
	f.Var(limitSize{&limits.JSMemory}, "max-memory", "JetStream memory storage")
	f.Int64Var(&streams, "max-streams", auth.DefaultJSStreams, "JetStream streams")
	f.Int64Var(&consumers, "max-consumers", auth.DefaultJSConsumers, "JetStream consumers")
	// The names before the finite defaults, kept working.
	f.Var(limitSize{&limits.JSDisk}, "js-disk", "JetStream file storage")
	f.Var(limitSize{&limits.JSMemory}, "js-memory", "JetStream memory storage")
	f.Int64Var(&streams, "js-streams", auth.DefaultJSStreams, "JetStream streams")
	f.Int64Var(&consumers, "js-consumers", auth.DefaultJSConsumers, "JetStream consumers")
	for old, name := range map[string]string{"js-disk": "max-storage", "js-memory": "max-memory", "js-streams": "max-streams", "js-consumers": "max-consumers"} {
		f.MarkDeprecated(old, "use --"+name)
	}
	return cmd
}

// limitSize is a size flag whose default shows as it would be typed
// (1GiB, unlimited).
type limitSize struct{ n *int64 }

func (v limitSize) String() string {
	if v.n == nil {
		return ""
	}
	return auth.FormatSize(*v.n)
}

func (v limitSize) Set(s string) error { return sizeValue{v.n}.Set(s) }
func (v limitSize) Type() string       { return "size" }

// withCapacityHint adds to a tenant create refused for JetStream capacity
// what the operator can do about each limit that did not fit.
func withCapacityHint(err error) error {
	var hints []string
	var walk func(error)
	walk = func(e error) {
		if ce, ok := e.(*auth.CapacityError); ok {
			flag := "--max-storage"
			if ce.Resource == "memory" {
				flag = "--max-memory"
			}
			hints = append(hints, fmt.Sprintf("lower %s to at most %s, or raise %s in the server's config and restart it",
				flag, auth.FormatSize(max(ce.Left, 0)), ce.ConfigKey()))
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	if len(hints) == 0 {
		return err
	}
	return fmt.Errorf("%w\n(%s)", err, strings.Join(hints, "; "))
}

func newTenantListCommand() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "list --data-dir DIR",
		Short: "List tenants and their limits",
		Long:  "list shows the tenants of the data dir and their limits.\n" + dataDirOnly,
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
			fmt.Fprintln(w, "TENANT\tACCOUNT\tCONNECTIONS\tMAX PAYLOAD\tJS STORAGE\tJS MEMORY\tSTREAMS\tCONSUMERS\tCREATED")
			for _, t := range tenants {
				l := t.Limits
				storage, memory, streams, consumers := "off", "off", "-", "-"
				if l.JetStream {
					storage, memory = auth.FormatSize(l.JSDisk), auth.FormatSize(l.JSMemory)
					streams, consumers = limitString(l.JSStreams), limitString(l.JSConsumers)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.AccountKey, limitString(l.Connections),
					limitString(l.MaxPayload), storage, memory, streams, consumers, t.CreatedAt.Format("2006-01-02 15:04:05Z"))
			}
			return w.Flush()
		},
	}
	flags.register(cmd, false)
	return cmd
}

func newTenantDeleteCommand() *cobra.Command {
	var (
		flags adminFlags
		name  = nameArg{what: "tenant"}
	)
	cmd := &cobra.Command{
		Use:   "delete NAME --data-dir DIR [--server URL]",
		Short: "Delete a tenant: disconnect its users and remove its account and keys",
		Long: `delete revokes every user of the tenant (live connections close at once),
deletes the account from the server at --server ($SYS.REQ.CLAIMS.DELETE;
with --offline, from the data dir's resolver directory), and removes its
keys and creds from the data dir. JetStream data of the account stays on
the servers until an operator removes it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, err := name.value(args)
			if err != nil {
				return err
			}
			return flags.change(cmd, func(ctx context.Context, store *auth.Store, pub auth.Publisher) error {
				if err := store.DeleteTenant(ctx, tenant, pub); err != nil {
					return err
				}
				if flags.json {
					return printJSON(cmd, map[string]string{"deleted": tenant})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tenant %s deleted\n", tenant)
				return nil
			})
		},
	}
	flags.register(cmd, true)
	flags.requireMFA(cmd)
	name.register(cmd)
	return cmd
}

func limitString(n int64) string {
	if n == auth.Unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

// tenantExists reports whether the data dir has the tenant, read without
// opening a seed.
func tenantExists(dataDir, tenant string) bool {
	d, err := auth.OpenReadOnly(dataDir)
	if err != nil {
		return false
	}
	_, err = d.Tenant(tenant)
	return err == nil
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTenantPublishCommand() *cobra.Command {
	var (
		flags adminFlags
		name  = nameArg{what: "tenant"}
	)
	cmd := &cobra.Command{
		Use:   "publish NAME --data-dir DIR [--server URL]",
		Short: "Publish the tenant's identities into its JetStream, for orchestrators on other hosts",
		Long: `publish writes the tenant's account JWT and every principal's record (role,
capabilities, current and retired keys, revocation), each signed by the
operator, into the tenant's EQ_IDENTITIES bucket, as the tenant's
orchestrator user. An orchestrator started with --operator-jwt and
--creds-dir (no data dir) learns the tenant's principals and keys from
there, and trusts a record only if the operator signed it.

tenant create, revoke and rotate publish by themselves; run publish after
agent create or client create, which work on the data dir alone.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenantName, err := name.value(args)
			if err != nil {
				return err
			}
			store, err := flags.open()
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context())
			defer cancel()
			if err := flags.publishIdentities(ctx, store, tenantName); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "identities of tenant %s published\n", tenantName)
			return nil
		},
	}
	flags.register(cmd, false)
	name.register(cmd)
	return cmd
}
