package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/procout"
)

// parseNode reads node k's config with the real server's parser, the one
// a stock `nats-server -c` uses.
func parseNode(t *testing.T, store *auth.Store, k int) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(store.NodeConfigFile(k))
	if err != nil {
		raw, _ := os.ReadFile(store.NodeConfigFile(k))
		t.Fatalf("nats-server cannot read node %d's config: %v\n%s", k, err, raw)
	}
	return opts
}

func routeHosts(opts *server.Options) []string {
	var hosts []string
	for _, u := range opts.Routes {
		hosts = append(hosts, u.Host)
	}
	slices.Sort(hosts)
	return hosts
}

func TestClusterConfigsLoopback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	store, err := auth.Init(dir, auth.WithCluster(3, nil), auth.WithClusterPorts(14222, 16222))
	if err != nil {
		t.Fatal(err)
	}
	single, err := server.ProcessConfigFile(store.ServerConfigFile())
	if err != nil || single.Cluster.Port != 0 || single.Port != 4222 || single.TLSConfig != nil {
		t.Fatalf("server.conf changed: err %v, cluster port %d, port %d", err, single.Cluster.Port, single.Port)
	}
	assertEncrypting(t, "server.conf", single)
	for k := 1; k <= 3; k++ {
		opts := parseNode(t, store, k)
		name := fmt.Sprintf("nats%d", k)
		if opts.ServerName != name || opts.Host != "127.0.0.1" || opts.Port != 14222+k-1 {
			t.Errorf("node %d: server %s on %s:%d", k, opts.ServerName, opts.Host, opts.Port)
		}
		if opts.Cluster.Name != auth.ClusterName || opts.Cluster.Host != "127.0.0.1" || opts.Cluster.Port != 16222+k-1 {
			t.Errorf("node %d: cluster %s on %s:%d", k, opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port)
		}
		var want []string
		for o := 1; o <= 3; o++ {
			if o != k {
				want = append(want, fmt.Sprintf("127.0.0.1:%d", 16222+o-1))
			}
		}
		if got := routeHosts(opts); !slices.Equal(got, want) {
			t.Errorf("node %d routes %v, want %v", k, got, want)
		}
		if want := filepath.Join(store.Dir(), "nats", name, "jetstream"); !opts.JetStream || opts.StoreDir != want {
			t.Errorf("node %d: jetstream %v in %s, want %s", k, opts.JetStream, opts.StoreDir, want)
		}
		if _, err := os.Stat(filepath.Join(store.Dir(), "nats", name, "jwt")); err != nil {
			t.Errorf("node %d: resolver dir: %v", k, err)
		}
		if len(opts.TrustedOperators) != 1 || opts.SystemAccount == "" || opts.AccountResolver == nil {
			t.Errorf("node %d: not in operator mode with a resolver", k)
		}
		if _, ok := opts.AccountResolver.(*server.DirAccResolver); !ok {
			t.Errorf("node %d: resolver %T, want the full (directory) resolver", k, opts.AccountResolver)
		}
		if opts.TLSConfig != nil || opts.Cluster.TLSConfig != nil {
			t.Errorf("node %d: TLS on without --tls", k)
		}
		assertEncrypting(t, name, opts)
	}
	if store.TLSCAFile() != "" {
		t.Errorf("a CA without TLS: %s", store.TLSCAFile())
	}
}

func TestClusterConfigsNamedHostsTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	hosts := []string{"nats1", "nats2", "nats3"}
	store, err := auth.Init(dir, auth.WithCluster(3, hosts), auth.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	ca := store.TLSCAFile()
	if ca != filepath.Join(store.Dir(), "tls", "ca.pem") {
		t.Fatalf("CA file %q", ca)
	}
	pemCA, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		t.Fatal("ca.pem holds no certificate")
	}
	for k := 1; k <= 3; k++ {
		opts := parseNode(t, store, k)
		if opts.Host != "0.0.0.0" || opts.Port != 4222 || opts.Cluster.Host != "0.0.0.0" || opts.Cluster.Port != 6222 {
			t.Errorf("node %d: client %s:%d, routes %s:%d", k, opts.Host, opts.Port, opts.Cluster.Host, opts.Cluster.Port)
		}
		var want []string
		for o, h := range hosts {
			if o+1 != k {
				want = append(want, h+":6222")
			}
		}
		if got := routeHosts(opts); !slices.Equal(got, want) {
			t.Errorf("node %d routes %v, want %v", k, got, want)
		}
		if opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil {
			t.Fatalf("node %d: TLS off for clients (%v) or routes (%v)", k, opts.TLSConfig != nil, opts.Cluster.TLSConfig != nil)
		}
		// Routes verify each other against the CA, both ways.
		if opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
			t.Errorf("node %d: routes do not verify their peers", k)
		}

		certFile := filepath.Join(store.Dir(), "tls", fmt.Sprintf("nats%d-cert.pem", k))
		keyFile := filepath.Join(store.Dir(), "tls", fmt.Sprintf("nats%d-key.pem", k))
		if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("node %d key: %v %v", k, fi.Mode(), err)
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{hosts[k-1], "localhost", "127.0.0.1"} {
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("node %d certificate for %s (usage %v): %v", k, name, usage, err)
				}
			}
		}
		// Node 1's certificate is not node 2's.
		other := hosts[k%3]
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: other}); err == nil {
			t.Errorf("node %d certificate also valid for %s", k, other)
		}
	}
}

func TestClusterOwnTLSFiles(t *testing.T) {
	// Certificates made by another init stand in for the operator's own.
	made, err := auth.Init(filepath.Join(t.TempDir(), "made"), auth.WithCluster(3, nil), auth.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	own := auth.TLSFiles{
		Cert: filepath.Join(made.Dir(), "tls", "nats1-cert.pem"),
		Key:  filepath.Join(made.Dir(), "tls", "nats1-key.pem"),
		CA:   made.TLSCAFile(),
	}
	store, err := auth.Init(filepath.Join(t.TempDir(), "eq"), auth.WithCluster(3, nil), auth.WithTLSFiles(own))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(store.Dir(), "tls")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("init copied certificates: %v", err)
	}
	for k := 1; k <= 3; k++ {
		opts := parseNode(t, store, k)
		if opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil {
			t.Errorf("node %d: TLS off with the operator's files", k)
		}
	}
	raw, err := os.ReadFile(store.NodeConfigFile(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{own.Cert, own.Key, own.CA} {
		if !strings.Contains(string(raw), p) {
			t.Errorf("node 2's config does not name %s:\n%s", p, raw)
		}
	}
}

func TestClusterRefused(t *testing.T) {
	cases := []struct {
		name string
		opts []auth.InitOption
	}{
		{"two nodes", []auth.InitOption{auth.WithCluster(2, nil)}},
		{"hosts do not match nodes", []auth.InitOption{auth.WithCluster(3, []string{"a", "b"})}},
		{"host twice", []auth.InitOption{auth.WithCluster(3, []string{"a", "b", "a"})}},
		{"bad host", []auth.InitOption{auth.WithCluster(3, []string{"a", "b c", "d"})}},
		{"tls without cluster", []auth.InitOption{auth.WithTLS()}},
		{"port out of range", []auth.InitOption{auth.WithCluster(3, nil), auth.WithClusterPorts(65534, 6222)}},
		{"missing own cert", []auth.InitOption{auth.WithCluster(3, nil), auth.WithTLSFiles(auth.TLSFiles{Cert: "/nope", Key: "/nope", CA: "/nope"})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "eq")
			_, err := auth.Init(dir, tc.opts...)
			if !errors.Is(err, auth.ErrInvalidCluster) {
				t.Fatalf("Init: %v, want ErrInvalidCluster", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused init left %s behind", dir)
			}
		})
	}
}

// TestClusterStockServers: three stock nats-server processes, each run as
// `nats-server -c DIR/nats/nats<K>.conf`, form the JetStream cluster; a
// tenant pushed to node 1 works on node 3.
func TestClusterStockServers(t *testing.T) {
	bin := natsServerBinary(t)
	base := natstest.FreePortRun(t, 6)
	store, err := auth.Init(filepath.Join(t.TempDir(), "eq"), auth.WithCluster(3, nil), auth.WithClusterPorts(base, base+3))
	if err != nil {
		t.Fatal(err)
	}
	urls := make([]string, 3)
	for k := 1; k <= 3; k++ {
		urls[k-1] = startStockNode(t, bin, store.NodeConfigFile(k), base+k-1)
	}
	pub := procSystemPublisher(t, urls[0], store)
	// The tenant needs JetStream, so it can only be created once the
	// cluster has elected its meta leader.
	var lastErr error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, lastErr = store.CreateTenant(context.Background(), "acme", auth.DefaultLimits(), pub); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("create tenant on the cluster: %v", lastErr)
	}
	procAgent(t, store, "acme", "coder", "code")
	procRoundTrip(t, urls[2], store, "acme", "coder", "code")
}

// startStockNode runs `nats-server -c config` and waits until it accepts
// connections on port; it is stopped when the test ends.
func startStockNode(t *testing.T, bin, config string, port int) string {
	t.Helper()
	cmd := exec.Command(bin, "-c", config)
	var out procout.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(config), out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return "nats://" + addr
		}
	}
	t.Fatalf("%s: not accepting connections on %s:\n%s", config, addr, out.String())
	return ""
}
