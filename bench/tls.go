package bench

import (
	"fmt"
	"strconv"
)

// tlsBlock is the server config's tls block: clients connect with TLS
// only (a plaintext client is refused) and present no certificate.
func tlsBlock(certFile, keyFile string) string {
	return fmt.Sprintf("\n# Clients connect with TLS only (equilateral bench).\ntls: {\n  cert_file: %s\n  key_file: %s\n  timeout: 5\n}\n",
		strconv.Quote(certFile), strconv.Quote(keyFile))
}
