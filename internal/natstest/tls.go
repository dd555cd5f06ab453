package natstest

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/equilateral-agents/equilateral/internal/localnats"
)

// StartTLS is Start with TLS on every client connection: a throwaway CA
// and a server certificate for 127.0.0.1 and localhost are made in
// t.TempDir, the server config gets a tls { cert_file, key_file } block
// (plaintext clients are refused), and every connection of the Env (Dial,
// Connect, SysConn, and orchtest's orchestrator via ClientOptions) trusts
// the CA.
func StartTLS(t testing.TB) *Env {
	t.Helper()
	return StartTLSEdited(t, nil)
}

// StartTLSEdited is StartTLS with the server config also rewritten by edit
// (before the tls block is added; a nil edit changes nothing).
func StartTLSEdited(t testing.TB, edit func(config string) string) *Env {
	t.Helper()
	ca, cert, key := WriteTestTLS(t, t.TempDir())
	addTLS := func(config string) string {
		if edit != nil {
			config = edit(config)
		}
		return config + fmt.Sprintf("\n# Clients connect with TLS only (natstest).\ntls: {\n  cert_file: %s\n  key_file: %s\n  timeout: 5\n}\n",
			strconv.Quote(cert), strconv.Quote(key))
	}
	return start(t, addTLS, []nats.Option{nats.RootCAs(ca)}, ca)
}

// WriteTestTLS makes a throwaway CA and a server certificate signed by it
// for 127.0.0.1 and localhost (ECDSA P-256, valid for a day) in dir, and
// returns the paths of the CA certificate, the server certificate and its
// key (PEM). The CA's key is not kept.
func WriteTestTLS(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caFile, certFile, keyFile, err := localnats.WriteTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return caFile, certFile, keyFile
}

// NoEncryptionAtRest is an edit for StartEdited: it removes the cipher and
// key lines Init writes into the jetstream block, so the server stores
// streams in plaintext (a server without encryption at rest).
func NoEncryptionAtRest(config string) string { return localnats.NoEncryptionAtRest(config) }
