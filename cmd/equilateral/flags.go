package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// The connection flags, and the environment variables they fall back on,
// as the nats CLI names them. Each is declared here only, so it means the
// same, with the same help, in every command that has it.
const (
	envServer        = "NATS_URL"
	envCreds         = "NATS_CREDS"
	envCA            = "NATS_CA"
	envDataDir       = "EQUILATERAL_DATA_DIR"
	defaultServerURL = "nats://127.0.0.1:4222"
)

// serverFlag declares --server: where NATS is.
func serverFlag(cmd *cobra.Command, server *string) {
	cmd.Flags().StringVar(server, "server", envOr(envServer, defaultServerURL),
		"NATS server URL, or several separated by commas (env "+envServer+")")
}

// tlsCAFlag declares --tls-ca: the CA that signed the servers' TLS
// certificates, which is all a client needs for TLS (the creds identify it).
// Every command with --server has it.
func tlsCAFlag(cmd *cobra.Command, ca *string) {
	cmd.Flags().StringVar(ca, "tls-ca", os.Getenv(envCA),
		"CA certificate (PEM) to verify the NATS servers' TLS certificates against, such as DIR/tls/ca.pem (env "+envCA+")")
}

// natsTLS is --tls-ca as NATS options: none without it, so the system's
// roots verify a server that requires TLS.
func natsTLS(ca string) []nats.Option {
	if ca == "" {
		return nil
	}
	return []nats.Option{nats.RootCAs(ca)}
}

// existOKFlag declares --exist-ok, for set-up scripts run more than once
// (a compose file's one-shot services): what the command would create
// exists already, and is left as it is.
func existOKFlag(cmd *cobra.Command, ok *bool) {
	cmd.Flags().BoolVar(ok, "exist-ok", false, "if it exists already, say so, leave it as it is and succeed")
}

// existed reports whether err is the thing's existing, which --exist-ok
// turns into success (saying so on stderr).
func existed(cmd *cobra.Command, existOK bool, err error, target error, what string) bool {
	if !existOK || !errors.Is(err, target) {
		return false
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s exists; left as it is\n", what)
	return true
}

// credsFlag declares --creds: who you are.
func credsFlag(cmd *cobra.Command, creds *string) {
	cmd.Flags().StringVar(creds, "creds", os.Getenv(envCreds),
		"creds file of the client or agent you act as (env "+envCreds+")")
}

// dataDirFlag declares --data-dir: where the operator's and tenants' keys
// live. fallback is the default when the environment sets none.
func dataDirFlag(cmd *cobra.Command, dataDir *string, fallback string) {
	cmd.Flags().StringVar(dataDir, "data-dir", envOr(envDataDir, fallback),
		"data dir made by 'equilateral init': keys, creds, server config (env "+envDataDir+")")
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// nameArg is the NAME of a command about one named thing (a tenant, an
// agent, a client): its argument, or --name, which scripts written before
// names were arguments still pass.
type nameArg struct {
	what     string // tenant, agent, client: for messages
	optional bool
	flag     string
}

// register declares the hidden --name and checks the arguments.
func (n *nameArg) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&n.flag, "name", "", n.what+" name")
	cmd.Flags().MarkDeprecated("name", "give the name as the argument: NAME")
	cmd.Args = func(_ *cobra.Command, args []string) error {
		_, err := n.value(args)
		return err
	}
}

// value is the name given, "" if none was and none is needed.
func (n *nameArg) value(args []string) (string, error) {
	switch {
	case len(args) > 1:
		return "", usageError{fmt.Errorf("want one %s NAME, got %d arguments", n.what, len(args))}
	case len(args) == 1 && n.flag != "" && n.flag != args[0]:
		return "", usageError{fmt.Errorf("%s NAME %q and --name %q differ: give the name once, as the argument", n.what, args[0], n.flag)}
	case len(args) == 1:
		return args[0], nil
	case n.flag != "" || n.optional:
		return n.flag, nil
	}
	return "", usageError{fmt.Errorf("want the %s NAME as the argument", n.what)}
}

// adminFlags are shared by the commands that read or change identities:
// where the keys live and which server to publish account changes to.
type adminFlags struct {
	dataDir string
	server  string
	tlsCA   string
	offline bool
	json    bool
}

// register declares the admin flags; publishes adds --offline for the
// commands that change accounts.
func (f *adminFlags) register(cmd *cobra.Command, publishes bool) {
	dataDirFlag(cmd, &f.dataDir, "")
	serverFlag(cmd, &f.server)
	tlsCAFlag(cmd, &f.tlsCA)
	if publishes {
		cmd.Flags().BoolVar(&f.offline, "offline", false, "server is stopped: record the change in the data dir's resolver directory; the local server loads it at start")
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON for machines")
}

func (f *adminFlags) open() (*auth.Store, error) {
	if f.dataDir == "" {
		return nil, usageError{errors.New("--data-dir is required (or set " + envDataDir + ")")}
	}
	return auth.Open(f.dataDir)
}

// publisher returns where account changes go, and a func to release it.
func (f *adminFlags) publisher(ctx context.Context, store *auth.Store) (auth.Publisher, func(), error) {
	if f.offline {
		return auth.NewResolverDirPublisher(store.ResolverDir()), func() {}, nil
	}
	nc, err := nats.Connect(f.server, append([]nats.Option{
		nats.UserCredentials(store.SystemCredsFile()),
		nats.Name("equilateral-admin"),
		nats.Timeout(5 * time.Second),
		nats.NoReconnect(),
	}, natsTLS(f.tlsCA)...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach NATS at %s: %w\n(start it with `equilateral server --data-dir %s`, point --server at it, or use --offline while the local server is stopped)", f.server, err, f.dataDir)
	}
	return auth.NewNATSPublisher(nc), nc.Close, nil
}

// publishIdentities publishes a tenant's identities into its JetStream,
// as its orchestrator user, for orchestrators that learn them over NATS
// (auth.Remote). Offline, there is no server to publish to.
func (f *adminFlags) publishIdentities(ctx context.Context, store *auth.Store, tenant string) error {
	if f.offline {
		return nil
	}
	nc, err := nats.Connect(f.server, append([]nats.Option{
		nats.UserCredentials(store.DefaultCredsFile(tenant, auth.OrchestratorName)),
		nats.Name("equilateral-admin"),
		nats.CustomInboxPrefix(protocol.InboxPrefix(auth.OrchestratorName)),
		nats.Timeout(5 * time.Second),
		nats.NoReconnect(),
	}, natsTLS(f.tlsCA)...)...)
	if err == nil {
		defer nc.Close()
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			err = store.PublishIdentities(ctx, js, tenant, 0)
		}
	}
	if err != nil {
		return fmt.Errorf("the identities of tenant %s are not published: %w\n(run `equilateral tenant publish %s` when the server is reachable)", tenant, err, tenant)
	}
	return nil
}

// change runs one admin change: the data dir opened, a publisher to the
// servers (or the offline resolver directory), all bounded by withTimeout.
func (f *adminFlags) change(cmd *cobra.Command, body func(ctx context.Context, store *auth.Store, pub auth.Publisher) error) error {
	store, err := f.open()
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(cmd.Context())
	defer cancel()
	pub, release, err := f.publisher(ctx, store)
	if err != nil {
		return err
	}
	defer release()
	return body(ctx, store, pub)
}

// withTimeout bounds one admin operation.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}
