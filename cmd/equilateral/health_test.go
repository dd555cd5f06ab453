package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestHealth runs the probe of the containers' health checks against a
// real server (its INFO line), an HTTP endpoint, and what is not there.
func TestHealth(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`equilateral_agents_live{tenant="acme"} 4`))
	}))
	t.Cleanup(ok.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(bad.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--target", srv.ClientURL(), "--jetstream"}, 0, "healthy: "},
		{[]string{"--target", ok.URL}, 0, "healthy: "},
		{[]string{"--target", bad.URL}, 1, "status 503"},
		{[]string{"--target", "nats://" + deadAddr}, 1, "connection refused"},
		{[]string{"--target", "nats://" + strings.TrimPrefix(ok.URL, "http://"), "--timeout", "500ms"}, 1, "no INFO"},
		{[]string{"--target", "ftp://x"}, 2, "want nats://"},
		{[]string{"--target", srv.ClientURL() + "," + ok.URL}, 0, "healthy: "},
		{[]string{"--target", srv.ClientURL() + "," + bad.URL}, 1, "status 503"},
		{[]string{"--target", bad.URL, "--wait", "1200ms"}, 1, "status 503"},
		{[]string{"--target", ok.URL, "--contains", `equilateral_agents_live{tenant="acme"}`}, 0, "healthy: "},
		{[]string{"--target", ok.URL, "--contains", `tenant="globex"`}, 1, `no "tenant=\"globex\"" in the answer`},
	} {
		r := run(t, append([]string{"health"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("health %v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, r.code, tc.code, tc.want, r.stdout, r.stderr)
		}
	}
}
