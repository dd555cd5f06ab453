package deploy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/internal/natstest"
)

// TestComposeTLS brings the stack up with docker-compose.tls.yml laid over
// it: the nodes require TLS of clients and routes. The demo flow completes
// with every service connecting over TLS; the three nodes are routed (over
// TLS) and agree on a meta leader, seen through a TLS connection that
// verifies node 1's certificate against the CA init made; and a client
// with good creds that speaks plaintext is refused by every node, on the
// client and the route port.
func TestComposeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no docker-compose project")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	c := upCompose(ctx, t, composeFile, composeTLSFile)
	c.demoApproved(ctx)

	caPEM, err := os.ReadFile(c.copyOut(ctx, t, "tls/ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("tls/ca.pem holds no certificate")
	}
	clientCreds := c.copyOut(ctx, t, "creds/acme/client.creds")

	t.Run("cluster", func(t *testing.T) {
		// The host reaches the node by its container address, which its
		// certificate does not name; the service name it does.
		verifyAsNats1 := nats.Secure(&tls.Config{ServerName: "nats1", RootCAs: roots, MinVersion: tls.VersionTLS12})
		checkCluster(ctx, t, "tls://"+c.ip(ctx, "nats1")+":4222", c.copyOut(ctx, t, "system/admin.creds"), verifyAsNats1)
	})
	t.Run("plaintext refused", func(t *testing.T) {
		for _, node := range []string{"nats1", "nats2", "nats3"} {
			ip := c.ip(ctx, node)
			info, pong, err := natstest.PlaintextConnect("nats://"+ip+":4222", clientCreds)
			if err != nil {
				t.Fatalf("%s: %v", node, err)
			}
			if pong || !strings.Contains(info, `"tls_required":true`) {
				t.Errorf("%s let a plaintext client with good creds in (PONG %v): %s", node, pong, info)
			}
			if answer := plaintextRoute(t, ip+":6222"); strings.Contains(answer, "INFO") || strings.Contains(answer, "PONG") {
				t.Errorf("%s: the route port speaks plaintext: %q", node, answer)
			}
			if err := tlsRouteWithoutCert(ip+":6222", roots, node); err == nil {
				t.Errorf("%s: the route port took a TLS connection without a certificate", node)
			}
		}
	})
	t.Run("unverified server refused", func(t *testing.T) {
		// Without the CA a client cannot verify the nodes and does not
		// connect: TLS is not merely offered, it is checked.
		_, err := nats.Connect("tls://"+c.ip(ctx, "nats1")+":4222", nats.UserCredentials(clientCreds),
			nats.Secure(&tls.Config{ServerName: "nats1", MinVersion: tls.VersionTLS12}))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("connect without the CA: %v, want a certificate error", err)
		}
	})
}

// plaintextRoute connects to a route port in plaintext, sends a route's
// CONNECT and a PING, and returns whatever came back before the node hung
// up (a node that requires TLS waits for a handshake and never answers in
// the clear).
func plaintextRoute(t *testing.T, hostPort string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", hostPort, 5*time.Second)
	if err != nil {
		t.Fatalf("route port %s: %v", hostPort, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprint(conn, "CONNECT {\"name\":\"intruder\",\"cluster\":\"equilateral\"}\r\nPING\r\n")
	answer, _ := io.ReadAll(conn) // EOF or the deadline: either ends it
	return string(answer)
}

// tlsRouteWithoutCert is a TLS connection to a route port that trusts the
// node but presents no certificate of its own; routes verify each other,
// so the node must end it.
func tlsRouteWithoutCert(hostPort string, roots *x509.CertPool, node string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", hostPort,
		&tls.Config{ServerName: node, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// With TLS 1.3 the server's verdict on the client certificate comes
	// with the first read.
	_, err = bufio.NewReader(conn).ReadString('\n')
	return err
}
