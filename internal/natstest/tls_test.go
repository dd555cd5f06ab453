package natstest

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// StartTLS's server refuses plaintext clients, and every connection the
// Env makes (SysConn, Dial) runs TLS.
func TestStartTLS(t *testing.T) {
	env := StartTLS(t)
	env.Tenant(t, "acme")
	creds := env.Client(t, "acme", "alice")

	info, pong, err := PlaintextConnect(env.URL, creds)
	if err != nil {
		t.Fatal(err)
	}
	if pong || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("a plaintext client was served (pong %v) or not told TLS is required: %s", pong, info)
	}
	// Without the CA, the certificate is not trusted.
	if nc, err := nats.Connect(env.URL, nats.UserCredentials(creds), nats.Secure()); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the test CA")
	}

	nc := env.Connect(t, creds, "alice")
	if !nc.TLSRequired() {
		t.Fatal("the client connection does not require TLS")
	}
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Fatalf("client connection: %v", err)
	}
	if _, err := env.SysConn.TLSConnectionState(); err != nil {
		t.Fatalf("SysConn: %v", err)
	}
	if env.CAFile == "" {
		t.Fatal("no CAFile")
	}
}

// NoEncryptionAtRest turns the server's encryption at rest off; Init's
// config has it on.
func TestNoEncryptionAtRest(t *testing.T) {
	if env := Start(t); !env.Server.ObserveEncryption().On {
		t.Fatalf("Init's config: encryption at rest off: %s", env.Server.ObserveEncryption().Detail)
	}
	env := StartEdited(t, NoEncryptionAtRest)
	if obs := env.Server.ObserveEncryption(); obs.On {
		t.Fatalf("without cipher and key: encryption at rest on: %s", obs.Detail)
	}
	env.Tenant(t, "acme")
	if env.CAFile != "" || len(env.ClientOptions) > 0 {
		t.Fatal("TLS options on a plaintext server")
	}
}
