package auth

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
)

// serverConfig is the nats-server configuration Init writes: operator mode,
// the full resolver (accounts can be added and deleted at run time through
// $SYS.REQ.CLAIMS.UPDATE/DELETE), and JetStream. A stock `nats-server -c`
// reads the same file.
type serverConfig struct {
	ServerName    string
	Host          string
	Port          int
	OperatorJWT   string // path to the operator JWT
	SystemAccount string
	SystemJWT     string
	ResolverDir   string
	JetStreamDir  string
	// JetStream capacity in bytes; 0 leaves nats-server's own default (75%
	// of the memory, 75% of the free disk when it starts).
	MaxMemoryStore int64
	MaxFileStore   int64
	// Cluster, when set, makes the server a member of a cluster.
	Cluster *clusterBlock
	// TLS, when set, requires TLS of every client and route connection.
	TLS *TLSFiles
	// StoreKey is the JetStream encryption key (auth/encryption.go); render
	// makes a fresh one when it is empty. Every config Init writes encrypts.
	StoreKey string
}

// clusterBlock is a node's cluster section: where it listens for routes
// and the routes to every other node.
type clusterBlock struct {
	Name   string
	Host   string
	Port   int
	Routes []string
}

func (c serverConfig) render() []byte {
	if c.StoreKey == "" {
		c.StoreKey = newStoreKey()
	}
	q := strconv.Quote
	var b bytes.Buffer
	fmt.Fprintf(&b, "# nats-server configuration written by `equilateral init`.\n")
	fmt.Fprintf(&b, "# Operator mode: accounts are tenants, users are agents and clients.\n")
	if c.Cluster != nil {
		fmt.Fprintf(&b, "# A member of cluster %s (docs/cluster.md): run it with\n", q(c.Cluster.Name))
		fmt.Fprintf(&b, "# `equilateral server --node K` or `nats-server -c` this file.\n")
	}
	fmt.Fprintf(&b, "server_name: %s\n", q(c.ServerName))
	fmt.Fprintf(&b, "host: %s\n", q(c.Host))
	fmt.Fprintf(&b, "port: %d\n", c.Port)
	fmt.Fprintf(&b, "# %s: this server encrypts its JetStream store (below); placement\n", EncryptedTag)
	fmt.Fprintf(&b, "# tags let a client see that (docs/cluster.md, \"Encryption at rest\").\n")
	fmt.Fprintf(&b, "server_tags: [%s]\n\n", q(EncryptedTag))
	if c.TLS != nil {
		// Clients present no certificate (their creds identify them); they
		// verify the server's against the CA. A plaintext client is refused.
		fmt.Fprintf(&b, "tls: {\n")
		fmt.Fprintf(&b, "  cert_file: %s\n", q(c.TLS.Cert))
		fmt.Fprintf(&b, "  key_file: %s\n", q(c.TLS.Key))
		fmt.Fprintf(&b, "  timeout: 5\n")
		fmt.Fprintf(&b, "}\n\n")
	}
	if c.Cluster != nil {
		fmt.Fprintf(&b, "cluster: {\n")
		fmt.Fprintf(&b, "  name: %s\n", q(c.Cluster.Name))
		fmt.Fprintf(&b, "  listen: %s\n", q(net.JoinHostPort(c.Cluster.Host, strconv.Itoa(c.Cluster.Port))))
		fmt.Fprintf(&b, "  routes: [\n")
		for _, r := range c.Cluster.Routes {
			fmt.Fprintf(&b, "    %s\n", q(r))
		}
		fmt.Fprintf(&b, "  ]\n")
		if c.TLS != nil {
			// Routes verify each other both ways against the CA.
			fmt.Fprintf(&b, "  tls: {\n")
			fmt.Fprintf(&b, "    cert_file: %s\n", q(c.TLS.Cert))
			fmt.Fprintf(&b, "    key_file: %s\n", q(c.TLS.Key))
			fmt.Fprintf(&b, "    ca_file: %s\n", q(c.TLS.CA))
			fmt.Fprintf(&b, "    timeout: 5\n")
			fmt.Fprintf(&b, "  }\n")
		}
		fmt.Fprintf(&b, "}\n\n")
	}
	fmt.Fprintf(&b, "operator: %s\n", q(c.OperatorJWT))
	fmt.Fprintf(&b, "system_account: %s\n\n", q(c.SystemAccount))
	fmt.Fprintf(&b, "resolver: {\n")
	fmt.Fprintf(&b, "  type: full\n")
	fmt.Fprintf(&b, "  dir: %s\n", q(c.ResolverDir))
	fmt.Fprintf(&b, "  allow_delete: true\n")
	fmt.Fprintf(&b, "  interval: \"2m\"\n")
	fmt.Fprintf(&b, "}\n")
	fmt.Fprintf(&b, "resolver_preload: {\n")
	fmt.Fprintf(&b, "  %s: %s\n", c.SystemAccount, q(c.SystemJWT))
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "# Every tenant has finite JetStream limits; this server reserves their sum\n")
	fmt.Fprintf(&b, "# against max_file_store and max_memory_store (default: 75%% of the free\n")
	fmt.Fprintf(&b, "# disk and of the memory), and `tenant create` refuses a tenant that does\n")
	fmt.Fprintf(&b, "# not fit. Set them to hold more or fewer tenants.\n")
	fmt.Fprintf(&b, "#\n")
	fmt.Fprintf(&b, "# Encryption at rest: every stream, KV bucket and consumer on disk is\n")
	fmt.Fprintf(&b, "# encrypted with keys derived from key. Keep this file secret (0600); a\n")
	fmt.Fprintf(&b, "# store cannot be read without its key. To rotate, move key to prev_key\n")
	fmt.Fprintf(&b, "# and set a new key, then restart (docs/cluster.md).\n")
	fmt.Fprintf(&b, "jetstream: {\n")
	fmt.Fprintf(&b, "  store_dir: %s\n", q(c.JetStreamDir))
	fmt.Fprintf(&b, "  cipher: %s\n", StoreCipher)
	fmt.Fprintf(&b, "  key: %s\n", q(c.StoreKey))
	if c.MaxMemoryStore > 0 {
		fmt.Fprintf(&b, "  max_memory_store: %d\n", c.MaxMemoryStore)
	}
	if c.MaxFileStore > 0 {
		fmt.Fprintf(&b, "  max_file_store: %d\n", c.MaxFileStore)
	}
	fmt.Fprintf(&b, "}\n")
	return b.Bytes()
}
