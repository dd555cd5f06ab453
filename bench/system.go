package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/embedded"
	"github.com/equilateral-agents/equilateral/internal/localnats"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// deployment is how the server is set up: what a level's start gate
// requires of it.
type deployment struct {
	name      string
	encrypted bool // JetStream encrypted at rest
	tls       bool // TLS on every client connection
}

var (
	plainServer = deployment{name: "no encryption at rest, no TLS"}
	initServer  = deployment{name: "as init writes it: encrypted at rest, no TLS", encrypted: true}
	tlsServer   = deployment{name: "encrypted at rest, TLS on every client connection", encrypted: true, tls: true}
)

// deploymentOf is the deployment level's gate requires: foundation needs
// nothing of the server, enhanced encryption at rest, advanced (and
// enterprise) TLS too.
func deploymentOf(l security.Level) deployment {
	switch {
	case l.AtLeast(security.Advanced):
		return tlsServer
	case l.AtLeast(security.Enhanced):
		return initServer
	}
	return plainServer
}

// environmentOf is the environment a level is run in: the strictest one
// whose gate it passes (development for foundation, which passes none).
func environmentOf(l security.Level) security.Environment {
	switch {
	case l.AtLeast(security.Enterprise):
		return security.EnterpriseEnv
	case l.AtLeast(security.Advanced):
		return security.Production
	}
	return security.Development
}

// The bench tenant and its principals.
const (
	benchTenant = "bench"
	benchClient = "submitter"
)

func agentName(i int) string { return fmt.Sprintf("agent-%d", i) }

// system is a fresh data dir, its embedded server running, and the bench
// tenant with a client and agents (capability DefaultCapability).
type system struct {
	dir      string
	dep      deployment
	store    *auth.Store
	server   *embedded.Server
	url      string
	natsOpts []nats.Option // trust the CA, with TLS
	tenant   auth.Tenant
}

// startSystem makes a data dir in a temporary directory with auth.Init,
// edits its server config for dep, starts the server and creates the
// bench tenant with a client and agents. close removes it all.
func startSystem(ctx context.Context, dep deployment, agents int) (s *system, err error) {
	dir, err := os.MkdirTemp("", "equilateral-bench-")
	if err != nil {
		return nil, err
	}
	s = &system{dir: dir, dep: dep}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.store, err = auth.Init(filepath.Join(dir, "data")); err != nil {
		return nil, err
	}
	if err := s.editConfig(); err != nil {
		return nil, err
	}
	s.server, err = embedded.Start(s.store.ServerConfigFile(), embedded.WithHost("127.0.0.1"), embedded.WithPort(-1))
	if err != nil {
		return nil, err
	}
	s.url = s.server.ClientURL()
	sys, err := nats.Connect(s.url, append([]nats.Option{
		nats.UserCredentials(s.store.SystemCredsFile()),
		nats.Name("equilateral-bench-admin"),
	}, s.natsOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("bench: connect as the system user: %w", err)
	}
	defer sys.Close()
	if s.tenant, err = s.store.CreateTenant(ctx, benchTenant, auth.DefaultLimits(), auth.NewNATSPublisher(sys)); err != nil {
		return nil, err
	}
	specs := []auth.PrincipalSpec{{Tenant: benchTenant, Name: benchClient, Role: auth.RoleClient}}
	for i := range agents {
		specs = append(specs, auth.PrincipalSpec{Tenant: benchTenant, Name: agentName(i), Role: auth.RoleAgent, Capabilities: []string{DefaultCapability}})
	}
	if _, err := s.store.CreatePrincipals(ctx, specs); err != nil {
		return nil, err
	}
	return s, nil
}

// editConfig rewrites the server config Init wrote for the deployment:
// without the JetStream key when not encrypted, with a tls block (and a
// throwaway CA the clients trust) for TLS.
func (s *system) editConfig() error {
	file := s.store.ServerConfigFile()
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	config := string(raw)
	if !s.dep.encrypted {
		config = localnats.NoEncryptionAtRest(config)
	}
	if s.dep.tls {
		dir := filepath.Join(s.dir, "bench-tls")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		ca, cert, key, err := localnats.WriteTLS(dir)
		if err != nil {
			return fmt.Errorf("bench: TLS certificates: %w", err)
		}
		config += tlsBlock(cert, key)
		s.natsOpts = []nats.Option{nats.RootCAs(ca)}
	}
	return os.WriteFile(file, []byte(config), 0o600)
}

// close stops the server and removes the data dir; it may be called more
// than once.
func (s *system) close() error {
	var errs []error
	if s.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, s.server.Shutdown(ctx))
		cancel()
		s.server = nil
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
		s.dir = ""
	}
	return errors.Join(errs...)
}

// creds is the creds file of a principal of the bench tenant.
func (s *system) creds(name string) string { return s.store.DefaultCredsFile(benchTenant, name) }

// dial connects as a principal of the bench tenant, with its own creds
// and inbox prefix.
func (s *system) dial(ctx context.Context, name string) (*nats.Conn, error) {
	nc, err := bus.Dial(ctx, s.url, append([]nats.Option{
		nats.UserCredentials(s.creds(name)),
		nats.Name("equilateral-bench/" + name),
		nats.CustomInboxPrefix(protocol.InboxPrefix(name)),
	}, s.natsOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("bench: connect as %s: %w", name, err)
	}
	return nc, nil
}

// sample reads the process's CPU and signature counts and the server's
// counters; spans is how many spans were exported (-1: not counted).
func (s *system) sample(spans int64) (sample, error) {
	smp := sample{cpu: cpuTime(), crypto: bus.Counts(), spans: spans}
	v, err := s.server.NATS().Varz(nil)
	if err != nil {
		return sample{}, err
	}
	smp.in, smp.out = v.InMsgs, v.OutMsgs
	acc, err := s.server.NATS().JszAccount(&server.JSzOptions{Account: s.tenant.AccountKey, Streams: true})
	if err != nil {
		return sample{}, fmt.Errorf("bench: the tenant's streams: %w", err)
	}
	// Every write to a stream, KV buckets included, takes the next
	// sequence, whether or not the message is kept.
	for _, st := range acc.Streams {
		smp.writes += st.State.LastSeq
	}
	return smp, nil
}

// check fails unless the server runs as dep says: encryption at rest as
// observed on disk, and TLS on every client connection or on none.
func (s *system) check() error {
	if obs := s.server.ObserveEncryption(); obs.On != s.dep.encrypted {
		return fmt.Errorf("bench: the server should %sencrypt at rest: %s", map[bool]string{false: "not "}[s.dep.encrypted], obs.Detail)
	}
	connz, err := s.server.NATS().Connz(&server.ConnzOptions{Limit: 10000})
	if err != nil {
		return err
	}
	for _, c := range connz.Conns {
		if (c.TLSVersion != "") != s.dep.tls {
			return fmt.Errorf("bench: connection %q: TLS %q, but the deployment says TLS %v", c.Name, c.TLSVersion, s.dep.tls)
		}
	}
	return nil
}
