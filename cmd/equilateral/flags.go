package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// The connection flags, and the environment variables they fall back on,
// as the nats CLI names them. Each is declared here only, so it means the
// same, with the same help, in every command that has it.
const (
	envServer        = "NATS_URL"
	envCreds         = "NATS_CREDS"
	envCA            = "NATS_CA"
	envDataDir       = "EQUILATERAL_DATA_DIR"
	envOTP           = "EQ_OTP"
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

	// otp is --otp (or EQ_OTP); guarded, the command that needs it (see
	// requireMFA), nil for the commands that read.
	otp        string
	guarded    *cobra.Command
	authorized bool
	// quiet: no warning that MFA is off (admin enroll, which is the fix).
	quiet bool
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

// open opens the data dir with the operator's signing key; on a command
// that requireMFA guards, only once an admin has proved themselves (see
// authorize), so no key signs anything before.
func (f *adminFlags) open() (*auth.Store, error) {
	if f.dataDir == "" {
		return nil, usageError{errors.New("--data-dir is required (or set " + envDataDir + ")")}
	}
	store, err := auth.Open(f.dataDir)
	if err != nil {
		return nil, err
	}
	if err := f.authorize(); err != nil {
		return nil, err
	}
	return store, nil
}

// otpFlag declares --otp: an enrolled admin's one-time code.
func otpFlag(cmd *cobra.Command, otp *string) {
	cmd.Flags().StringVar(otp, "otp", "",
		"one-time code (TOTP) of an enrolled admin, needed from the enhanced security level on once an admin is enrolled, unless 'equilateral admin session' is open (env "+envOTP+")")
}

// requireMFA makes cmd one that mints or rotates creds or changes a
// tenant: it takes --otp, and open checks it (the admin-mfa control).
func (f *adminFlags) requireMFA(cmd *cobra.Command) {
	otpFlag(cmd, &f.otp)
	f.guarded = cmd
	cmd.Long += mfaHelp
}

// mfaHelp ends the help of every guarded command.
const mfaHelp = `

From the enhanced security level on (DIR/security.json), once an admin is
enrolled, it needs an enrolled admin's one-time code: --otp CODE, or
` + envOTP + `, or an open ` + "`equilateral admin session`" + `. A code is good once.
See docs/admin-mfa.md.`

// code is the one-time code given: --otp, else EQ_OTP. The environment is
// read when the command runs, so a code never shows as a default in help.
func (f *adminFlags) code() string {
	if f.otp != "" {
		return f.otp
	}
	return os.Getenv(envOTP)
}

// mfaOffWarning is printed by a guarded command that runs without a code
// because no admin is enrolled.
const mfaOffWarning = "warning: MFA is off: no admin is enrolled (equilateral admin enroll NAME --data-dir DIR)"

// authorize is the admin-mfa control, for a guarded command: at a
// security level that has it (enhanced and up) and with an admin enrolled,
// the command runs only on a valid one-time code or within an admin
// session. With no admin enrolled it runs, warning that MFA is off; below
// enhanced no code is asked for.
func (f *adminFlags) authorize() error {
	if f.guarded == nil || f.authorized {
		return nil
	}
	enforced, err := f.mfaEnforced(!f.quiet)
	if err != nil || !enforced {
		f.authorized = err == nil
		return err
	}
	if err := proveAdmin(f.guarded, f.dataDir, f.code()); err != nil {
		return err
	}
	f.authorized = true
	return nil
}

// mfaEnforced reports whether the data dir's level and enrolment ask for a
// code; warn says whether to warn when only enrolment is missing.
func (f *adminFlags) mfaEnforced(warn bool) (bool, error) {
	settings, err := security.ReadSettings(f.dataDir)
	if err != nil {
		return false, err
	}
	if !settings.Level.Has(security.AdminMFA) {
		return false, nil
	}
	admins, err := mfa.Enrolled(f.dataDir)
	if err != nil {
		return false, err
	}
	if len(admins) == 0 {
		if warn {
			fmt.Fprintln(f.guarded.ErrOrStderr(), mfaOffWarning)
		}
		return false, nil
	}
	return true, nil
}

// mfaRefusal is a guarded command refused for want of a valid code or
// session (exit status 1, as every refusal).
type mfaRefusal struct {
	command string // "tenant create"
	dataDir string
	err     error
}

func (e mfaRefusal) Error() string {
	return fmt.Sprintf("refused: %s needs an enrolled admin's one-time code (admin-mfa): %v\n"+
		"(give --otp CODE or set %s, or open a session first: equilateral admin session --otp CODE --data-dir %s)", e.command, e.err, envOTP, e.dataDir)
}
func (e mfaRefusal) Unwrap() error { return e.err }

// errNoCode: a guarded command given neither a code nor a session.
var errNoCode = errors.New("no code given and no admin session open")

// proveAdmin accepts code (spending it) or, without one, the open session.
// A code that is given is checked, never passed over for a session.
func proveAdmin(cmd *cobra.Command, dataDir, code string) error {
	command := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	refuse := func(err error) error { return mfaRefusal{command: command, dataDir: dataDir, err: err} }
	if code != "" {
		if _, err := mfa.Verify(dataDir, code, time.Now()); err != nil {
			return refuse(fmt.Errorf("the code: %w", err))
		}
		return nil
	}
	_, err := mfa.SessionAdmin(dataDir, time.Now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mfa.ErrNoSession):
		return refuse(errNoCode)
	default:
		return refuse(fmt.Errorf("the admin session: %w", err))
	}
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
