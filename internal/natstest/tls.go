package natstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "natstest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "natstest server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem")
	for file, block := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// NoEncryptionAtRest is an edit for StartEdited: it removes the cipher and
// key lines Init writes into the jetstream block, so the server stores
// streams in plaintext (a server without encryption at rest).
func NoEncryptionAtRest(config string) string {
	var out []string
	inJetStream := false
	for _, line := range strings.SplitAfter(config, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "jetstream"):
			inJetStream = true
		case inJetStream && trimmed == "}":
			inJetStream = false
		case inJetStream && (strings.HasPrefix(trimmed, "cipher") || strings.HasPrefix(trimmed, "key")):
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "")
}
