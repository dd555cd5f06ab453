package orchestrator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/equilateral-agents/equilateral/internal/yamlerr"
	"github.com/equilateral-agents/equilateral/security"
)

// Config is the orchestrator's config file (`equilateral orchestrator
// --config FILE`): what a replica on its own host needs, all in one place.
// A flag given on the command line wins over the file.
//
//	servers: [nats://nats1:4222, nats://nats2:4222, nats://nats3:4222]
//	data_dir: /eq            # identities, read only: never a signing seed
//	# or, with no data dir, identities over NATS:
//	operator_jwt: /etc/equilateral/operator.jwt
//	creds_dir: /etc/equilateral/creds   # <tenant>.creds, each tenant's orchestrator
//	tls_ca: /etc/equilateral/ca.pem
//	policy: /etc/equilateral/policy.yaml
//	replicas: 3              # 0 or left out: by the cluster
//	result_ttl: 168h
//	metrics_addr: 0.0.0.0:9464
//	log_json: true
//	security:
//	  level: advanced        # foundation | enhanced | advanced | enterprise
//	environment: production  # development | production | enterprise
type Config struct {
	// Servers are the NATS URLs to connect to (any of them will do).
	Servers []string `yaml:"servers"`
	// DataDir is read for tenants, principals, keys and the orchestrator's
	// creds (auth.OpenReadOnly).
	DataDir string `yaml:"data_dir"`
	// OperatorJWT and CredsDir, instead of DataDir, learn identities over
	// NATS (auth.Remote): the operator JWT is the trust anchor, CredsDir
	// holds <tenant>.creds for each tenant to serve.
	OperatorJWT string `yaml:"operator_jwt"`
	CredsDir    string `yaml:"creds_dir"`
	// TLSCA verifies the servers' certificates.
	TLSCA string `yaml:"tls_ca"`
	// ServerConfigs are the nats-server configs of servers on this host,
	// read by the start gate to see encryption at rest where it cannot be
	// seen over a connection (a single server, not a cluster).
	ServerConfigs []string `yaml:"server_configs"`
	// Policy is a policy file (ParsePolicy).
	Policy      string        `yaml:"policy"`
	Replicas    int           `yaml:"replicas"`
	ResultTTL   time.Duration `yaml:"result_ttl"`
	MetricsAddr string        `yaml:"metrics_addr"`
	LogJSON     bool          `yaml:"log_json"`
	// Security holds the level; Environment the environment whose gate
	// the level must pass (docs/security.md, "Levels"). Unset: the data
	// dir's settings, or enhanced in development.
	Security    SecurityConfig       `yaml:"security"`
	Environment security.Environment `yaml:"environment"`
}

// SecurityConfig is the config file's security: section.
type SecurityConfig struct {
	Level security.Level `yaml:"level"`
	// MaxCredentialAge is the credential maximum age the start gate
	// checks creds against (default: the recorded one, else 720h).
	MaxCredentialAge security.Duration `yaml:"max_credential_age"`
}

// ParseConfig reads a config file; name names it in errors, and relative
// paths in it are taken from the file's directory.
func ParseConfig(raw []byte, name string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // a misspelt field is an error, not a default
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty config file", name)
		}
		return nil, yamlerr.Wrap(name, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document (---); a config file is one", name)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return nil, fmt.Errorf("%s: replicas %d: want 1 to 5, or 0 to choose by the cluster", name, c.Replicas)
	}
	if c.ResultTTL < 0 {
		return nil, fmt.Errorf("%s: result_ttl must not be negative", name)
	}
	dir := filepath.Dir(name)
	if c.DataDir != "" && (c.OperatorJWT != "" || c.CredsDir != "") {
		return nil, fmt.Errorf("%s: give data_dir, or operator_jwt and creds_dir, not both", name)
	}
	if (c.OperatorJWT == "") != (c.CredsDir == "") {
		return nil, fmt.Errorf("%s: operator_jwt and creds_dir go together", name)
	}
	for _, p := range []*string{&c.DataDir, &c.TLSCA, &c.Policy, &c.OperatorJWT, &c.CredsDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i, p := range c.ServerConfigs {
		if !filepath.IsAbs(p) {
			c.ServerConfigs[i] = filepath.Join(dir, p)
		}
	}
	return &c, nil
}
