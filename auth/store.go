package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Store is an Equilateral data dir: the operator, the system account, the
// tenant accounts and their principals. It is the Directory with the
// operator's signing key, which every change needs. Methods that change it
// take the data dir's lock, so separate commands (and goroutines) may
// share one.
type Store struct {
	*Directory
	operatorSigner nkeys.KeyPair
}

// lockWait bounds how long a change waits for another command's lock.
const lockWait = 30 * time.Second

// Init creates a data dir at dir: the operator with a signing key, the
// system account with an admin user, and a server config for operator mode
// with the full resolver. dir may exist but must be empty.
func Init(dir string, opts ...InitOption) (*Store, error) {
	cfg := newInitConfig(opts)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("auth: data dir %s: %w", dir, err)
	}
	if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s is not empty", ErrDataDirExists, abs)
	}
	// Build in a sibling temporary directory and rename it into place, so a
	// failed init leaves nothing behind.
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("auth: create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, ".equilateral-init-*")
	if err != nil {
		return nil, fmt.Errorf("auth: create data dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeDataDir(layout{root: tmp}, abs, cfg); err != nil {
		return nil, err
	}
	if err := os.Remove(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("auth: replace empty %s: %w", abs, err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		return nil, fmt.Errorf("auth: create data dir: %w", err)
	}
	if err := syncFS(abs); err != nil {
		return nil, err
	}
	return Open(abs)
}

// writeDataDir writes a fresh operator, system account and server config
// into l. finalRoot is where the directory will live (the config names it).
func writeDataDir(l layout, finalRoot string, cfg initConfig) error {
	if err := os.Chmod(l.root, dirPerm); err != nil {
		return err
	}
	opKP, opSeed, err := newKey(nkeys.CreateOperator)
	if err != nil {
		return err
	}
	opSigner, opSignerSeed, err := newKey(nkeys.CreateOperator)
	if err != nil {
		return err
	}
	sysKP, _, err := newKey(nkeys.CreateAccount)
	if err != nil {
		return err
	}
	sysSigner, sysSignerSeed, err := newKey(nkeys.CreateAccount)
	if err != nil {
		return err
	}

	sysClaims := jwt.NewAccountClaims(publicKey(sysKP))
	sysClaims.Name = "SYS"
	sysClaims.SigningKeys.Add(publicKey(sysSigner))
	sysJWT, err := sysClaims.Encode(opSigner)
	if err != nil {
		return fmt.Errorf("auth: sign system account: %w", err)
	}

	opClaims := jwt.NewOperatorClaims(publicKey(opKP))
	opClaims.Name = cfg.operatorName
	opClaims.SystemAccount = publicKey(sysKP)
	opClaims.SigningKeys.Add(publicKey(opSigner))
	// The identity key only ever signs the operator; accounts must come
	// from the signing key, which can be rotated without re-trusting.
	opClaims.StrictSigningKeyUsage = true
	opJWT, err := opClaims.Encode(opKP)
	if err != nil {
		return fmt.Errorf("auth: sign operator: %w", err)
	}

	adminCreds, _, err := newUserCreds("admin", publicKey(sysKP), sysSigner, nil, jwt.UserPermissionLimits{
		Limits: jwt.Limits{NatsLimits: jwt.NatsLimits{Subs: jwt.NoLimit, Data: jwt.NoLimit, Payload: jwt.NoLimit}},
	}, time.Time{}) // the system admin is no tenant's principal: no maximum age
	if err != nil {
		return err
	}

	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{l.operatorSeed(), opSeed, secretPerm},
		{l.operatorSigning(), opSignerSeed, secretPerm},
		{l.operatorJWT(), []byte(opJWT), secretPerm},
		{l.systemJWT(), []byte(sysJWT), secretPerm},
		{l.systemSigning(), sysSignerSeed, secretPerm},
		{l.systemCreds(), adminCreds, secretPerm},
		{l.keyJournal(), nil, secretPerm},
	}
	for _, f := range files {
		if err := writeFileAtomic(f.path, f.data, f.perm); err != nil {
			return fmt.Errorf("auth: write %s: %w", filepath.Base(f.path), err)
		}
	}
	for _, d := range []string{l.resolverDir(), l.jetStreamDir(), l.tenantsDir(), l.credsDir()} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return err
		}
	}
	final := layout{root: finalRoot}
	conf := serverConfig{
		ServerName:     cfg.serverName,
		Host:           cfg.host,
		Port:           cfg.port,
		OperatorJWT:    final.operatorJWT(),
		SystemAccount:  publicKey(sysKP),
		SystemJWT:      sysJWT,
		ResolverDir:    final.resolverDir(),
		JetStreamDir:   final.jetStreamDir(),
		MaxMemoryStore: cfg.jsMemory,
		MaxFileStore:   cfg.jsStore,
	}
	if err := writeFileAtomic(l.serverConfig(), conf.render(), secretPerm); err != nil {
		return fmt.Errorf("auth: write server config: %w", err)
	}
	if cfg.cluster.nodes != 0 || cfg.cluster.tls || cfg.cluster.tlsFiles != nil {
		return writeCluster(l, final, cfg, conf)
	}
	return nil
}

// Open opens an existing data dir made by Init, with the operator signing
// key. A process that only reads identities should use OpenReadOnly, which
// needs no key.
func Open(dir string) (*Store, error) {
	d, err := OpenReadOnly(dir)
	if err != nil {
		return nil, err
	}
	signer, err := loadKey(d.layout.operatorSigning())
	if err != nil {
		return nil, fmt.Errorf("%w in %s: %w", ErrNoSigningKey, d.Dir(), err)
	}
	return &Store{Directory: d, operatorSigner: signer}, nil
}

// ServerConfigFile is the nats-server config written by Init.
func (s *Store) ServerConfigFile() string { return s.layout.serverConfig() }

// SystemCredsFile is the system account admin's creds, used to push
// account updates to servers.
func (s *Store) SystemCredsFile() string { return s.layout.systemCreds() }

// ResolverDir is the full resolver's JWT directory of the local server.
func (s *Store) ResolverDir() string { return s.layout.resolverDir() }

func (s *Store) lock(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	return lockDataDir(ctx, s.layout.lockFile())
}

// InitOption configures Init.
type InitOption interface{ apply(*initConfig) }

type initConfig struct {
	operatorName string
	serverName   string
	host         string
	port         int
	jsMemory     int64
	jsStore      int64
	cluster      clusterConfig
}

type initOptionFunc func(*initConfig)

func (f initOptionFunc) apply(c *initConfig) { f(c) }

// WithListen sets the host and port the generated server config listens on
// (default 127.0.0.1:4222).
func WithListen(host string, port int) InitOption {
	return initOptionFunc(func(c *initConfig) { c.host, c.port = host, port })
}

// WithServerName sets the server_name in the generated config.
func WithServerName(name string) InitOption {
	return initOptionFunc(func(c *initConfig) { c.serverName = name })
}

// WithJetStreamCapacity sets the generated server's JetStream memory and
// file storage in bytes (max_memory_store, max_file_store): the sum of the
// tenants' JetStream limits must fit in them. Zero leaves nats-server's
// default, 75% of the memory and of the free disk when it starts.
func WithJetStreamCapacity(memory, store int64) InitOption {
	return initOptionFunc(func(c *initConfig) { c.jsMemory, c.jsStore = memory, store })
}

func newInitConfig(opts []InitOption) initConfig {
	cfg := initConfig{operatorName: "equilateral", serverName: "equilateral", host: "127.0.0.1", port: 4222,
		cluster: clusterConfig{port: 4222, routePort: 6222}}
	for _, o := range opts {
		o.apply(&cfg)
	}
	return cfg
}
