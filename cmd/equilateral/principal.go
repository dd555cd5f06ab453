package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Agents and clients are both principals (NATS users) of a tenant; their
// commands differ only in the role and, for agents, capabilities.

func newAgentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Create, list, revoke and rotate agents (NATS users with capabilities)",
	}
	cmd.AddCommand(
		newPrincipalCreateCommand(auth.RoleAgent),
		newPrincipalListCommand(auth.RoleAgent),
		newPrincipalRevokeCommand(auth.RoleAgent),
		newPrincipalRotateCommand(auth.RoleAgent),
		newAgentRunCommand(),
	)
	return cmd
}

func newClientCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Create, list, revoke and rotate clients (NATS users that submit tasks)",
	}
	cmd.AddCommand(
		newPrincipalCreateCommand(auth.RoleClient),
		newPrincipalListCommand(auth.RoleClient),
		newPrincipalRevokeCommand(auth.RoleClient),
		newPrincipalRotateCommand(auth.RoleClient),
	)
	return cmd
}

// aclSummary says in one line what a role may do; the server enforces it.
func aclSummary(role auth.Role) string {
	switch role {
	case auth.RoleAgent:
		return `An agent may subscribe eq.cap.<each capability> (queue group), eq.ctl.<name>.>
and its inbox _INBOX_<name>.>, and publish eq.agent.<name>.> and
eq.tasks.submit. Nothing else: the server enforces it.`
	default:
		return `A client may publish eq.tasks.submit and subscribe eq.client.<name>.> and its
inbox _INBOX_<name>.>. Nothing else: the server enforces it.`
	}
}

func newPrincipalCreateCommand(role auth.Role) *cobra.Command {
	var (
		flags        adminFlags
		name         = nameArg{what: string(role)}
		tenant       string
		capabilities []string
		out          string
		existOK      bool
	)
	use := "create NAME --tenant T [--out FILE.creds]"
	if role == auth.RoleAgent {
		use = "create NAME --tenant T --capability C [--capability C2] [--out FILE.creds]"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: "Issue a " + string(role) + " its own nkey and creds",
		Long: `create issues a new ` + string(role) + ` NAME in tenant T: a fresh nkey and a user JWT
signed by the tenant's scoped ` + string(role) + ` key.

` + aclSummary(role) + `

The creds file (0600) works with the nats CLI (--creds FILE --inbox-prefix
_INBOX_<name>). It defaults to DIR/creds/<tenant>/<name>.creds; an existing
file is never overwritten. Names are [a-z0-9][a-z0-9_-]{0,63}.

It then publishes the tenant's identities to the server at --server, for
orchestrators that learn them over NATS (docs/identity.md); when no server
answers it warns and succeeds (` + "`tenant publish T`" + ` does it later), and
--offline skips it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name.value(args)
			if err != nil {
				return err
			}
			// What exists needs no change, so no code: a set-up script run
			// again passes without one.
			if existOK && principalExists(flags.dataDir, tenant, n) {
				existed(cmd, true, auth.ErrPrincipalExists, auth.ErrPrincipalExists, fmt.Sprintf("%s %s in tenant %s", role, n, tenant))
				return nil
			}
			store, err := flags.open()
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context())
			defer cancel()
			p, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{
				Tenant: tenant, Name: n, Role: role, Capabilities: capabilities, CredsFile: out,
			})
			if existed(cmd, existOK, err, auth.ErrPrincipalExists, fmt.Sprintf("%s %s in tenant %s", role, n, tenant)) {
				return nil
			}
			if err != nil {
				return err
			}
			// The creds work at once (the account trusts the role's key);
			// orchestrators on other hosts learn the principal when it is
			// published. A server that is not running is no error here.
			if err := flags.publishIdentities(ctx, store, tenant); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
			}
			return printIssued(cmd, flags.json, store, p, out, "created")
		},
	}
	flags.register(cmd, true)
	flags.requireMFA(cmd)
	name.register(cmd)
	tenantFlag(cmd, &tenant)
	if role == auth.RoleAgent {
		cmd.Flags().StringArrayVar(&capabilities, "capability", nil, "capability the agent serves (repeat for more; at least one)")
		cmd.MarkFlagRequired("capability")
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the creds (default DIR/creds/<tenant>/<name>.creds)")
	existOKFlag(cmd, &existOK)
	return cmd
}

// principalExists reports whether the data dir has the principal, read
// without opening a seed.
func principalExists(dataDir, tenant, name string) bool {
	d, err := auth.OpenReadOnly(dataDir)
	if err != nil {
		return false
	}
	_, err = d.Principal(tenant, name)
	return err == nil
}

// dataDirOnly ends the help of the admin commands that do not contact a
// server.
const dataDirOnly = `
It works on the data dir alone: --server, which every admin command takes,
is not contacted.`

func newPrincipalListCommand(role auth.Role) *cobra.Command {
	var (
		flags  adminFlags
		tenant string
	)
	long := "list shows the " + string(role) + "s of tenant T, or of every tenant, from the data dir.\n" + dataDirOnly
	if role == auth.RoleAgent {
		long = `list shows the agents of tenant T, or of every tenant, from the data dir,
with their running instances and load from the tenant's live registry,
read from the server at --server (as the tenant's orchestrator). When the
server cannot be reached it says so and lists the agents without.`
	}
	cmd := &cobra.Command{
		Use:   "list --data-dir DIR [--tenant T]",
		Short: "List " + string(role) + "s (all tenants unless --tenant)",
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := flags.open()
			if err != nil {
				return err
			}
			tenants := []string{tenant}
			if tenant == "" {
				all, err := store.Tenants()
				if err != nil {
					return err
				}
				tenants = tenants[:0]
				for _, t := range all {
					tenants = append(tenants, t.Name)
				}
			}
			principals := []auth.Principal{}
			for _, t := range tenants {
				ps, err := store.Principals(t)
				if err != nil {
					return err
				}
				for _, p := range ps {
					if p.Role == role {
						principals = append(principals, p)
					}
				}
			}
			if role == auth.RoleAgent {
				return printAgents(cmd, store, &flags, tenants, principals)
			}
			if flags.json {
				return printJSON(cmd, principals)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TENANT\tNAME\tSTATUS\tUSER KEY\tCREATED")
			for _, p := range principals {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Tenant, p.Name, credsStatus(p), p.PublicKey, p.CreatedAt.Format("2006-01-02 15:04:05Z"))
			}
			return w.Flush()
		},
	}
	flags.register(cmd, false)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant")
	return cmd
}

func credsStatus(p auth.Principal) string {
	if p.Revoked() {
		return "revoked " + p.RevokedAt.Format("2006-01-02 15:04:05Z")
	}
	return "active"
}

// agentListing is an agent with its running instances.
type agentListing struct {
	auth.Principal
	Instances []protocol.Heartbeat `json:"instances"`
}

// printAgents lists agents with what the live registry says of them; if
// the server cannot be reached it says so and lists them without.
func printAgents(cmd *cobra.Command, store *auth.Store, flags *adminFlags, tenants []string, principals []auth.Principal) error {
	ctx, cancel := withTimeout(cmd.Context())
	defer cancel()
	live := map[string]map[string][]protocol.Heartbeat{}
	reachable := true
	for _, t := range tenants {
		l, err := liveAgents(ctx, store, flags.server, t, natsTLS(flags.tlsCA)...)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "equilateral: running agents unknown: %v\n", err)
			reachable = false
			break
		}
		live[t] = l
	}
	listing := make([]agentListing, 0, len(principals))
	for _, p := range principals {
		listing = append(listing, agentListing{Principal: p, Instances: live[p.Tenant][p.Name]})
	}
	if flags.json {
		return printJSON(cmd, listing)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TENANT\tNAME\tCAPABILITIES\tCREDS\tRUNNING\tUSER KEY\tCREATED")
	for _, a := range listing {
		running := "?"
		if reachable {
			running = liveSummary(a.Instances)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Tenant, a.Name, strings.Join(a.Capabilities, ","), credsStatus(a.Principal),
			running, a.PublicKey, a.CreatedAt.Format("2006-01-02 15:04:05Z"))
	}
	return w.Flush()
}

func newPrincipalRevokeCommand(role auth.Role) *cobra.Command {
	var (
		flags  adminFlags
		name   = nameArg{what: string(role)}
		tenant string
	)
	cmd := &cobra.Command{
		Use:   "revoke NAME --tenant T --data-dir DIR [--server URL]",
		Short: "Revoke a " + string(role) + "'s creds; its live connections close at once",
		Long: `revoke adds the ` + string(role) + `'s key to the tenant account's revocations and
publishes the account to the server at --server (or, with --offline, to the
data dir for the local server's next start): the server closes its live
connections immediately and refuses its creds from then on. ` + "`rotate`" + ` issues
new creds later.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name.value(args)
			if err != nil {
				return err
			}
			return flags.change(cmd, func(ctx context.Context, store *auth.Store, pub auth.Publisher) error {
				if err := checkRole(store, tenant, n, role); err != nil {
					return err
				}
				p, err := store.Revoke(ctx, tenant, n, pub)
				if err != nil {
					return err
				}
				if err := flags.publishIdentities(ctx, store, tenant); err != nil {
					return err
				}
				if flags.json {
					return printJSON(cmd, p)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s in tenant %s revoked (user %s)\n", role, p.Name, p.Tenant, p.PublicKey)
				return nil
			})
		},
	}
	flags.register(cmd, true)
	flags.requireMFA(cmd)
	name.register(cmd)
	tenantFlag(cmd, &tenant)
	return cmd
}

func newPrincipalRotateCommand(role auth.Role) *cobra.Command {
	var (
		flags  adminFlags
		name   = nameArg{what: string(role)}
		tenant string
		out    string
	)
	cmd := &cobra.Command{
		Use:   "rotate NAME --tenant T --data-dir DIR [--server URL] [--out FILE.creds]",
		Short: "Issue a " + string(role) + " new creds and revoke the old ones",
		Long: `rotate issues a new key and creds with the same name and permissions, writes
them (overwriting --out), then revokes the old key and publishes the account
to the server at --server (or, with --offline, to the data dir):
connections using the old creds close at once. From the advanced security
level creds expire (docs/credentials.md); rotate renews them. ` + "`agent rotate orchestrator --tenant T`" + `
renews the tenant's orchestrator user: copy its new creds to every
orchestrator host that has its own, then restart the replicas one by one.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name.value(args)
			if err != nil {
				return err
			}
			return flags.change(cmd, func(ctx context.Context, store *auth.Store, pub auth.Publisher) error {
				// `agent rotate orchestrator` renews the tenant's own
				// orchestrator user (its creds expire too, from advanced).
				if !(role == auth.RoleAgent && n == auth.OrchestratorName) {
					if err := checkRole(store, tenant, n, role); err != nil {
						return err
					}
				}
				p, err := store.Rotate(ctx, tenant, n, out, pub)
				if err != nil {
					return err
				}
				if err := flags.publishIdentities(ctx, store, tenant); err != nil {
					return err
				}
				return printIssued(cmd, flags.json, store, p, out, "rotated")
			})
		},
	}
	flags.register(cmd, true)
	flags.requireMFA(cmd)
	name.register(cmd)
	tenantFlag(cmd, &tenant)
	cmd.Flags().StringVar(&out, "out", "", "where to write the new creds (default DIR/creds/<tenant>/<name>.creds)")
	return cmd
}

// tenantFlag declares the required --tenant of a principal command.
func tenantFlag(cmd *cobra.Command, tenant *string) {
	cmd.Flags().StringVar(tenant, "tenant", "", "tenant (required)")
	cmd.MarkFlagRequired("tenant")
}

// checkRole keeps `agent revoke` from revoking a client and vice versa.
func checkRole(store *auth.Store, tenant, name string, role auth.Role) error {
	p, err := store.Principal(tenant, name)
	if err != nil {
		return err
	}
	if p.Role != role {
		return fmt.Errorf("%w: %s in tenant %s is the %s role (use the `equilateral %s` commands)", auth.ErrWrongRole, name, tenant, p.Role, p.Role)
	}
	return nil
}

// printIssued reports new creds: where they are and whose key they hold.
func printIssued(cmd *cobra.Command, asJSON bool, store *auth.Store, p auth.Principal, out, verb string) error {
	credsFile := out
	if credsFile == "" {
		credsFile = store.DefaultCredsFile(p.Tenant, p.Name)
	}
	if asJSON {
		return printJSON(cmd, struct {
			auth.Principal
			CredsFile string `json:"creds_file"`
		}{p, credsFile})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s in tenant %s (user %s)\ncreds %s\n", p.Role, p.Name, verb, p.Tenant, p.PublicKey, credsFile)
	if p.ExpiresAt != nil {
		fmt.Fprintf(cmd.OutOrStdout(), "expires %s (renew with rotate)\n", p.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}
