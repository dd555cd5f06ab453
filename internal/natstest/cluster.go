package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/embedded"
)

// Cluster is a data dir whose n nodes run as routed, in-process servers on
// loopback (auth.WithCluster's configs), with JetStream clustered.
type Cluster struct {
	*Env
	t     testing.TB
	mu    sync.Mutex
	nodes []*embedded.Server // by k-1; nil while a node is down
	urls  []string
}

// StartCluster initialises a data dir for an n-node cluster and starts
// every node, waiting until JetStream has a meta leader. Env.URL lists
// every node, so connections move to a live one when one goes down.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartClusterEdited(t, n, nil)
}

// StartClusterEdited is StartCluster with node k's config rewritten by
// edit before it starts (a nil edit changes nothing): for tests of what
// the configs Init writes protect against.
func StartClusterEdited(t testing.TB, n int, edit func(k int, config string) string) *Cluster {
	t.Helper()
	client, route := freePortRuns(t, n)
	store, err := auth.Init(t.TempDir(), auth.WithCluster(n, nil), auth.WithClusterPorts(client, route))
	if err != nil {
		t.Fatalf("init cluster data dir: %v", err)
	}
	for k := 1; edit != nil && k <= n; k++ {
		raw, err := os.ReadFile(store.NodeConfigFile(k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(store.NodeConfigFile(k), []byte(edit(k, string(raw))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{t: t, nodes: make([]*embedded.Server, n)}
	for k := 1; k <= n; k++ {
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", client+k-1))
	}
	// Start the nodes at once: each waits for its routes to form.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for k := 1; k <= n; k++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[k-1] = c.start(store, k) }()
	}
	wg.Wait()
	t.Cleanup(func() {
		for k := 1; k <= n; k++ {
			c.Kill(k)
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	url := strings.Join(c.urls, ",")
	sys, err := nats.Connect(url, nats.UserCredentials(store.SystemCredsFile()), nats.Name("natstest-admin"), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("connect system user: %v", err)
	}
	t.Cleanup(sys.Close)
	c.Env = &Env{Store: store, Server: c.nodes[0], URL: url, Publisher: auth.NewNATSPublisher(sys), SysConn: sys}
	Eventually(t, 30*time.Second, c.metaLeader, "the cluster elected no JetStream meta leader")
	return c
}

func (c *Cluster) start(store *auth.Store, k int) error {
	srv, err := embedded.Start(store.NodeConfigFile(k), embedded.WithReadyTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("start node %d: %w", k, err)
	}
	c.mu.Lock()
	c.nodes[k-1] = srv
	c.mu.Unlock()
	return nil
}

// metaLeader reports whether every running node knows a JetStream meta
// leader.
func (c *Cluster) metaLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.nodes {
		if s != nil && (!s.NATS().JetStreamEnabled() || s.NATS().JetStreamIsClustered() && !s.NATS().JetStreamIsCurrent()) {
			return false
		}
	}
	return true
}

// Name is node k's server name.
func (c *Cluster) Name(k int) string { return fmt.Sprintf("nats%d", k) }

// Node returns node k's number for a server name ("nats2" → 2), or 0.
func (c *Cluster) Node(name string) int {
	var k int
	if _, err := fmt.Sscanf(name, "nats%d", &k); err != nil || k < 1 || k > len(c.nodes) {
		return 0
	}
	return k
}

// Kill stops node k at once (if it runs).
func (c *Cluster) Kill(k int) {
	c.mu.Lock()
	srv := c.nodes[k-1]
	c.nodes[k-1] = nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// Restart starts node k again from its config and store.
func (c *Cluster) Restart(k int) {
	c.t.Helper()
	if err := c.start(c.Store, k); err != nil {
		c.t.Fatal(err)
	}
	Eventually(c.t, 30*time.Second, c.metaLeader, "node %d came back, but JetStream is not current", k)
}

// freePortRuns finds n consecutive free loopback ports for clients and n
// for routes.
func freePortRuns(t testing.TB, n int) (client, route int) {
	t.Helper()
	base := FreePortRun(t, 2*n)
	return base, base + n
}

// FreePortRun finds n consecutive free loopback ports and returns the
// first (a cluster's nodes take port, port+1, ...).
func FreePortRun(t testing.TB, n int) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		first := ln.Addr().(*net.TCPAddr).Port
		held := []net.Listener{ln}
		for p := first + 1; p < first+n && p <= 65535; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if len(held) == n {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
