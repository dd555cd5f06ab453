package orchestrator

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/equilateral-agents/equilateral/protocol"
)

// newID makes task and request ids: unique, URL- and subject-safe.
func newID() string { return protocol.NewID() }

func hexDigest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:16])
}
