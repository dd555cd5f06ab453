package auth

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
	"time"
)

// certValidity is how long the CA and node certificates Init makes are
// valid. Replace them (or bring your own, TLSFiles) before then.
const certValidity = 5 * 365 * 24 * time.Hour

// writeClusterTLS makes a CA and one certificate per node (ECDSA P-256)
// into l's tls directory: ca.pem, nats<K>-cert.pem and nats<K>-key.pem.
// A node's certificate names its host, localhost and 127.0.0.1, and serves
// for both ends of a route (server and client auth). The CA's key is not
// kept: nobody can issue another certificate the cluster trusts.
func writeClusterTLS(l layout, nodes []clusterNode) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: "equilateral NATS CA", Organization: []string{"equilateral"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("auth: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.tlsCA(), pemBlock("CERTIFICATE", caDER), secretPerm); err != nil {
		return fmt.Errorf("auth: write CA: %w", err)
	}
	for _, n := range nodes {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("auth: %s key: %w", nodeName(n.k), err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serialNumber(),
			Subject:      pkix.Name{CommonName: nodeName(n.k), Organization: []string{"equilateral"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(certValidity),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		if ip := net.ParseIP(n.host); ip != nil {
			if !ip.Equal(net.IPv4(127, 0, 0, 1)) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n.host)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("auth: %s certificate: %w", nodeName(n.k), err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(l.tlsCert(n.k), pemBlock("CERTIFICATE", der), secretPerm); err != nil {
			return fmt.Errorf("auth: write %s certificate: %w", nodeName(n.k), err)
		}
		if err := writeFileAtomic(l.tlsKey(n.k), pemBlock("PRIVATE KEY", keyDER), secretPerm); err != nil {
			return fmt.Errorf("auth: write %s key: %w", nodeName(n.k), err)
		}
	}
	return nil
}

// serialNumber is a random 128-bit certificate serial.
func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}
