package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/embedded"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// exitGate is the exit status of an orchestrator or dev the security gate
// refused to start (2 is a usage mistake, 1 any other failure).
const exitGate = 6

// Environment variables of the security flags.
const (
	envSecurityLevel    = "EQ_SECURITY_LEVEL"
	envEnvironment      = "EQ_ENVIRONMENT"
	envMinSecurityLevel = "EQ_MIN_SECURITY_LEVEL"
)

// securityFlags are --security-level and --environment of the commands
// that run an orchestrator (orchestrator, dev).
type securityFlags struct {
	level       string
	environment string
}

func (f *securityFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.level, "security-level", os.Getenv(envSecurityLevel),
		"foundation, enhanced, advanced or enterprise: the controls to switch on (env "+envSecurityLevel+"; default: the data dir's, else enhanced)")
	cmd.Flags().StringVar(&f.environment, "environment", os.Getenv(envEnvironment),
		"development, production or enterprise: its gate is the lowest level allowed, enhanced, advanced or enterprise (env "+envEnvironment+"; default: the data dir's, else development)")
}

// resolve picks the settings: the flags, then the config file's, then the
// recorded ones (recordedSettings: the data dir's or the published
// record), then the default (enhanced, development). from says where the
// level came from, for the audited level record.
func (f *securityFlags) resolve(fromConfig security.Settings, recorded *security.Settings, recordedFrom string) (s security.Settings, from string, err error) {
	s, from = security.Default(), "the default"
	if recorded != nil {
		s, from = *recorded, recordedFrom
	}
	if fromConfig.Level.Valid() {
		s.Level, from = fromConfig.Level, "the config file"
	}
	if fromConfig.Environment.Valid() {
		s.Environment = fromConfig.Environment
	}
	if fromConfig.MaxCredentialAge > 0 {
		s.MaxCredentialAge = fromConfig.MaxCredentialAge
	}
	if f.level != "" {
		l, err := security.ParseLevel(f.level)
		if err != nil {
			return s, "", usageError{fmt.Errorf("--security-level: %w", err)}
		}
		s.Level, from = l, "--security-level"
	}
	if f.environment != "" {
		e, err := security.ParseEnvironment(f.environment)
		if err != nil {
			return s, "", usageError{fmt.Errorf("--environment: %w", err)}
		}
		s.Environment = e
	}
	return s, from, nil
}

// recordedSettings are the settings the admin side recorded: the data
// dir's security.json, or the security record published for the first
// tenant of an orchestrator without a data dir (nil when there is none).
func recordedSettings(dataDir string, identities orchestrator.Identities) (*security.Settings, string, error) {
	if dataDir != "" {
		s, err := security.ReadSettings(dataDir)
		if err != nil {
			return nil, "", usageError{err}
		}
		return &s, "the data dir's " + security.SettingsFile(dataDir), nil
	}
	records, ok := identities.(securityRecords)
	if !ok {
		return nil, "", nil
	}
	tenants, err := identities.Tenants()
	if err != nil || len(tenants) == 0 {
		return nil, "", nil
	}
	rec, ok := records.SecurityRecord(tenants[0].Name)
	if !ok {
		return nil, "", nil
	}
	return &rec.Settings, "the security record published for tenant " + tenants[0].Name, nil
}

// minLevelFlag declares --min-security-level on the commands that work with
// an orchestrator as a client or an agent.
func minLevelFlag(cmd *cobra.Command, min *string) {
	cmd.Flags().StringVar(min, "min-security-level", os.Getenv(envMinSecurityLevel),
		"refuse to work with an orchestrator below this level: foundation, enhanced, advanced or enterprise (env "+envMinSecurityLevel+")")
}

// parseMinLevel reads --min-security-level ("" requires nothing).
func parseMinLevel(s string) (security.Level, error) {
	if s == "" {
		return 0, nil
	}
	l, err := security.ParseLevel(s)
	if err != nil {
		return 0, usageError{fmt.Errorf("--min-security-level: %w", err)}
	}
	return l, nil
}

// observeTLS asks every server in servers (a URL list) whether it requires
// TLS of its clients: its INFO line, sent before any credentials, says so.
func observeTLS(ctx context.Context, servers []string) security.Observation {
	var plain []string
	for _, s := range servers {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Host == "" {
			return security.Observation{Detail: fmt.Sprintf("server URL %q cannot be read", s)}
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "4222")
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := readServerInfo(pctx, host)
		cancel()
		if err != nil {
			return security.Observation{Detail: fmt.Sprintf("%s did not say whether it requires TLS: %v", u.Redacted(), err)}
		}
		if !info.TLSRequired {
			plain = append(plain, u.Redacted())
		}
	}
	if len(plain) > 0 {
		return security.Observation{Detail: "these servers take plaintext clients: " + strings.Join(plain, ", ")}
	}
	return security.Observation{On: true, Detail: "every server requires TLS"}
}

// gateInputs are what the start gate observes the system through.
type gateInputs struct {
	settings   security.Settings
	servers    []string
	dataDir    string // "" for an orchestrator that learns identities over NATS
	identities orchestrator.Identities
	policy     *orchestrator.PolicyFile
	natsOpts   []nats.Option // TLS
	replicas   int
	server     *embedded.Server // dev's in-process server, observed directly
	// serverConfigs are configs of servers on this host (--server-config).
	serverConfigs []string
}

// securityRecords is what an identity source says of the admin side: the
// data dir's own record, or the one published for each tenant.
type securityRecords interface {
	SecurityRecord(tenant string) (auth.SecurityRecord, bool)
}

// checkGate observes each control the level needs that depends on how the
// system is run, and refuses a start below the environment's gate or with
// any of them off.
func checkGate(ctx context.Context, in gateInputs) error {
	facts := security.Facts{}
	for _, c := range in.settings.Level.On() {
		if c.Fix() == "" || c.Planned() {
			continue
		}
		facts[c] = in.observe(ctx, c)
	}
	return security.Check(in.settings.Level, in.settings.Environment, facts).Err()
}

func (in gateInputs) observe(ctx context.Context, c security.Control) security.Observation {
	switch c {
	case security.TLSEverywhere:
		if in.server != nil {
			return security.Observation{Detail: "dev's embedded server takes plaintext clients"}
		}
		return observeTLS(ctx, in.servers)
	case security.EncryptionAtRest:
		return in.observeEncryption(ctx)
	case security.AdminMFA:
		return in.observeMFA()
	case security.OutputGate:
		if in.policy == nil {
			return security.Observation{On: true, Detail: "no policy: no capability is marked generates_code"}
		}
		return in.policy.ObserveOutputGate()
	case security.CredentialMaxAge:
		src, ok := in.identities.(auth.PrincipalSource)
		if !ok {
			return security.Observation{Detail: "the identity source lists no principals"}
		}
		return auth.ObserveCredentialMaxAge(src, in.settings.CredentialLifetime(), time.Now())
	}
	return security.Observation{Detail: "no observation of " + string(c)}
}

// observeEncryption: dev's server in process; the configs --server-config
// names; with a data dir, the server configs init wrote there (and their
// stores on this host); otherwise, over a tenant's connection, the
// cluster's placement tags (a single server cannot show it that way).
func (in gateInputs) observeEncryption(ctx context.Context) security.Observation {
	if in.server != nil {
		return in.server.ObserveEncryption()
	}
	if len(in.serverConfigs) > 0 {
		return embedded.ObserveConfigs(in.serverConfigs...)
	}
	if in.dataDir != "" {
		d, err := auth.OpenReadOnly(in.dataDir)
		if err != nil {
			return security.Observation{Detail: err.Error()}
		}
		return embedded.ObserveConfigs(d.ServerConfigFiles()...)
	}
	tenants, err := in.identities.Tenants()
	if err != nil || len(tenants) == 0 {
		return security.Observation{Detail: "no tenant to look at the servers through"}
	}
	nc, js, err := connectAsOrchestrator(strings.Join(in.servers, ","), in.identities.DefaultCredsFile(tenants[0].Name, auth.OrchestratorName), "equilateral-gate", in.natsOpts)
	if err != nil {
		return security.Observation{Detail: fmt.Sprintf("could not connect to look: %v", err)}
	}
	defer nc.Close()
	replicas := in.replicas
	if replicas == 0 {
		replicas = 1
		if nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
			replicas = 3
		}
	}
	return auth.ObserveEncryption(ctx, js, replicas)
}

// observeMFA: an admin enrolled in the data dir, or, over NATS, in every
// tenant's published security record.
func (in gateInputs) observeMFA() security.Observation {
	if in.dataDir != "" {
		d, err := auth.OpenReadOnly(in.dataDir)
		if err != nil {
			return security.Observation{Detail: err.Error()}
		}
		rec, err := d.SecurityRecord()
		if err != nil {
			return security.Observation{Detail: err.Error()}
		}
		if rec.MFAAdmins == 0 {
			return security.Observation{Detail: "no admin is enrolled in " + in.dataDir}
		}
		return security.Observation{On: true, Detail: fmt.Sprintf("%d admin(s) enrolled", rec.MFAAdmins)}
	}
	records, ok := in.identities.(securityRecords)
	if !ok {
		return security.Observation{Detail: "the identity source carries no security record"}
	}
	tenants, err := in.identities.Tenants()
	if err != nil || len(tenants) == 0 {
		return security.Observation{Detail: "no tenant's security record to read"}
	}
	for _, t := range tenants {
		rec, ok := records.SecurityRecord(t.Name)
		if !ok {
			return security.Observation{Detail: fmt.Sprintf("tenant %s has no security record signed by the operator (equilateral tenant publish %s)", t.Name, t.Name)}
		}
		if rec.MFAAdmins == 0 {
			return security.Observation{Detail: fmt.Sprintf("tenant %s's security record says no admin is enrolled", t.Name)}
		}
	}
	return security.Observation{On: true, Detail: "every tenant's published record has an enrolled admin"}
}

// checkLowering refuses, in production and enterprise, a start at a level
// below the one a tenant's orchestrator last recorded, unless an admin
// approved it: the recorded settings (the data dir's, or the record
// published with the identities, both written by MFA-guarded commands:
// `security set-level`) are at or below it.
func checkLowering(ctx context.Context, in gateInputs, recorded *security.Settings) error {
	if in.settings.Environment == security.Development {
		return nil
	}
	if recorded != nil && recorded.Level <= in.settings.Level {
		return nil
	}
	tenants, err := in.identities.Tenants()
	if err != nil {
		return err
	}
	for _, t := range tenants {
		last, ok, err := lastRecordedLevel(ctx, in, t.Name)
		if err != nil {
			return fmt.Errorf("cannot read tenant %s's last security level: %w", t.Name, err)
		}
		if !ok {
			continue
		}
		if was, err := security.ParseLevel(last.To); err == nil && in.settings.Level < was {
			v := security.Verdict{Level: in.settings.Level, Environment: in.settings.Environment, Gate: in.settings.Environment.Gate(),
				Missing: []security.Missing{{
					What: "an admin's approval to lower the level",
					Why:  fmt.Sprintf("tenant %s ran at %s; lowering it in %s needs an admin (MFA)", t.Name, was, in.settings.Environment),
					Fix:  fmt.Sprintf("equilateral security set-level %s --data-dir DIR --otp CODE (then start at it), or start at %s", in.settings.Level, was),
				}}}
			return v.Err()
		}
	}
	return nil
}

// lastRecordedLevel reads a tenant's last level_changed record as its
// orchestrator user.
func lastRecordedLevel(ctx context.Context, in gateInputs, tenant string) (protocol.LevelChanged, bool, error) {
	nc, js, err := connectAsOrchestrator(strings.Join(in.servers, ","), in.identities.DefaultCredsFile(tenant, auth.OrchestratorName), "equilateral-gate/"+tenant, in.natsOpts)
	if err != nil {
		return protocol.LevelChanged{}, false, err
	}
	defer nc.Close()
	last, _, ok, err := orchestrator.LastLevel(ctx, js)
	return last, ok, err
}

// connectAsOrchestrator connects with a tenant's orchestrator creds (the
// one principal of a tenant whose ACL reaches JetStream), once, without
// reconnecting: for a look at the tenant's state, then Close.
func connectAsOrchestrator(servers, credsFile, name string, opts []nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(servers, append([]nats.Option{
		nats.UserCredentials(credsFile),
		nats.CustomInboxPrefix(protocol.InboxPrefix(auth.OrchestratorName)),
		nats.Name(name),
		nats.Timeout(5 * time.Second),
		nats.NoReconnect(),
	}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
