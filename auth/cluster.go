package auth

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// ErrInvalidCluster: the cluster Init was asked for cannot be written
// (too few nodes, hosts that do not match, ports out of range).
var ErrInvalidCluster = errors.New("auth: invalid cluster")

// ClusterName is the name every node's cluster block carries.
const ClusterName = "equilateral"

// Where a cluster's files live in the data dir:
//
//	DIR/nats/nats<K>.conf           node K's nats-server config
//	DIR/nats/nats<K>/jwt/           node K's full resolver directory
//	DIR/nats/nats<K>/jetstream/     node K's JetStream store
//	DIR/tls/                        ca.pem, nats<K>-cert.pem, nats<K>-key.pem (with --tls)
func (l layout) natsDir() string              { return filepath.Join(l.root, "nats") }
func (l layout) nodeConfig(k int) string      { return filepath.Join(l.natsDir(), nodeName(k)+".conf") }
func (l layout) nodeDir(k int) string         { return filepath.Join(l.natsDir(), nodeName(k)) }
func (l layout) nodeResolverDir(k int) string { return filepath.Join(l.nodeDir(k), "jwt") }
func (l layout) nodeJetStreamDir(k int) string {
	return filepath.Join(l.nodeDir(k), "jetstream")
}
func (l layout) tlsDir() string       { return filepath.Join(l.root, "tls") }
func (l layout) tlsCA() string        { return filepath.Join(l.tlsDir(), "ca.pem") }
func (l layout) tlsCert(k int) string { return filepath.Join(l.tlsDir(), nodeName(k)+"-cert.pem") }
func (l layout) tlsKey(k int) string  { return filepath.Join(l.tlsDir(), nodeName(k)+"-key.pem") }

// nodeName is node k's server_name (k counts from 1).
func nodeName(k int) string { return "nats" + strconv.Itoa(k) }

// NodeConfigFile is the nats-server config of cluster node k (1..N) that
// Init writes with WithCluster; it exists only for k in 1..N.
func (s *Store) NodeConfigFile(k int) string { return s.layout.nodeConfig(k) }

// TLSCAFile is the CA certificate Init made with WithTLS ("" if it made
// none). Clients need only it to verify the servers.
func (s *Store) TLSCAFile() string {
	if _, err := os.Stat(s.layout.tlsCA()); err != nil {
		return ""
	}
	return s.layout.tlsCA()
}

// clusterConfig is what WithCluster, WithClusterPorts and the TLS options
// ask of Init.
type clusterConfig struct {
	nodes     int
	hosts     []string // empty: every node on 127.0.0.1
	port      int      // client port (of node 1 on loopback)
	routePort int      // route port (of node 1 on loopback)
	tls       bool     // make a CA and node certificates
	tlsFiles  *TLSFiles
}

// TLSFiles are certificates the operator already has: every node presents
// Cert (with Key), and verifies routes against CA.
type TLSFiles struct {
	Cert, Key, CA string
}

// WithCluster also writes a config per node of an n-node cluster,
// DIR/nats/nats<K>.conf. With no hosts every node runs on 127.0.0.1, node
// K on client port 4222+K-1 and route port 6222+K-1 (one machine);
// with n distinct hosts (one per node, e.g. nats1,nats2,nats3) every node
// listens on 0.0.0.0:4222 and routes on 6222.
func WithCluster(n int, hosts []string) InitOption {
	return initOptionFunc(func(c *initConfig) {
		c.cluster.nodes, c.cluster.hosts = n, hosts
	})
}

// WithClusterPorts sets the client and route ports of the cluster's nodes
// (defaults 4222 and 6222): every node's with distinct hosts, node 1's on
// one machine (node K gets port+K-1).
func WithClusterPorts(client, route int) InitOption {
	return initOptionFunc(func(c *initConfig) { c.cluster.port, c.cluster.routePort = client, route })
}

// WithTLS makes a CA and a certificate per node into DIR/tls and turns TLS
// on for client and route connections of the cluster's nodes.
func WithTLS() InitOption {
	return initOptionFunc(func(c *initConfig) { c.cluster.tls = true })
}

// WithTLSFiles turns TLS on with the operator's own certificate, key and
// CA: the configs name these files, nothing is copied.
func WithTLSFiles(f TLSFiles) InitOption {
	return initOptionFunc(func(c *initConfig) { c.cluster.tlsFiles = &f })
}

// clusterNode is one node's place in the cluster.
type clusterNode struct {
	k         int
	host      string // how the others and clients reach it
	listen    string // what it binds
	port      int
	routePort int
}

// hostPattern: a DNS name or an IPv4 address; IPv6 is checked by net.ParseIP.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)

// plan checks the cluster and places its nodes.
func (c clusterConfig) plan() ([]clusterNode, error) {
	if c.nodes < 3 {
		return nil, fmt.Errorf("%w: %d nodes; a JetStream cluster needs at least 3 to survive losing one", ErrInvalidCluster, c.nodes)
	}
	for _, p := range []int{c.port, c.routePort} {
		if p < 1 || p+c.nodes-1 > 65535 {
			return nil, fmt.Errorf("%w: port %d out of range", ErrInvalidCluster, p)
		}
	}
	if c.tls && c.tlsFiles != nil {
		return nil, fmt.Errorf("%w: either make certificates (TLS) or name your own (TLS files), not both", ErrInvalidCluster)
	}
	if f := c.tlsFiles; f != nil && (f.Cert == "" || f.Key == "" || f.CA == "") {
		return nil, fmt.Errorf("%w: own TLS needs a certificate, its key and the CA", ErrInvalidCluster)
	}
	nodes := make([]clusterNode, c.nodes)
	if len(c.hosts) == 0 {
		for i := range nodes {
			nodes[i] = clusterNode{k: i + 1, host: "127.0.0.1", listen: "127.0.0.1", port: c.port + i, routePort: c.routePort + i}
		}
		return nodes, nil
	}
	if len(c.hosts) != c.nodes {
		return nil, fmt.Errorf("%w: %d hosts for %d nodes; name one host per node", ErrInvalidCluster, len(c.hosts), c.nodes)
	}
	seen := map[string]bool{}
	for i, h := range c.hosts {
		if net.ParseIP(h) == nil && !hostPattern.MatchString(h) {
			return nil, fmt.Errorf("%w: host %q is neither a DNS name nor an IP address", ErrInvalidCluster, h)
		}
		if seen[h] {
			return nil, fmt.Errorf("%w: host %s named twice; leave the hosts out to run every node on this machine", ErrInvalidCluster, h)
		}
		seen[h] = true
		nodes[i] = clusterNode{k: i + 1, host: h, listen: "0.0.0.0", port: c.port, routePort: c.routePort}
	}
	return nodes, nil
}

// writeCluster writes every node's config, its resolver and JetStream
// directories and, when asked, the TLS certificates into l; the configs
// name the files where they will be, under final.
func writeCluster(l, final layout, cfg initConfig, base serverConfig) error {
	nodes, err := cfg.cluster.plan()
	if err != nil {
		return err
	}
	var files *TLSFiles
	switch {
	case cfg.cluster.tlsFiles != nil:
		own := *cfg.cluster.tlsFiles
		for _, p := range []*string{&own.Cert, &own.Key, &own.CA} {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
			if _, err := os.Stat(*p); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidCluster, err)
			}
		}
		files = &own
	case cfg.cluster.tls:
		if err := writeClusterTLS(l, nodes); err != nil {
			return err
		}
	}
	// One JetStream key for every node: each encrypts its own store.
	base.StoreKey = newStoreKey()
	for _, n := range nodes {
		for _, d := range []string{l.nodeResolverDir(n.k), l.nodeJetStreamDir(n.k)} {
			if err := os.MkdirAll(d, dirPerm); err != nil {
				return err
			}
		}
		conf := base
		conf.ServerName = nodeName(n.k)
		conf.Host, conf.Port = n.listen, n.port
		conf.ResolverDir = final.nodeResolverDir(n.k)
		conf.JetStreamDir = final.nodeJetStreamDir(n.k)
		conf.Cluster = &clusterBlock{Name: ClusterName, Host: n.listen, Port: n.routePort}
		for _, other := range nodes {
			if other.k != n.k {
				conf.Cluster.Routes = append(conf.Cluster.Routes,
					"nats-route://"+net.JoinHostPort(other.host, strconv.Itoa(other.routePort)))
			}
		}
		switch {
		case files != nil:
			conf.TLS = files
		case cfg.cluster.tls:
			conf.TLS = &TLSFiles{Cert: final.tlsCert(n.k), Key: final.tlsKey(n.k), CA: final.tlsCA()}
		}
		if err := writeFileAtomic(l.nodeConfig(n.k), conf.render(), secretPerm); err != nil {
			return fmt.Errorf("auth: write %s: %w", filepath.Base(l.nodeConfig(n.k)), err)
		}
	}
	return nil
}
