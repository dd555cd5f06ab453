package bus

import (
	"crypto/ed25519"
	"sync"

	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The ed25519 of the bus. Signatures are the largest share of a task's CPU
// (docs/performance.md), so they use curve25519-voi, about twice as fast
// as crypto/ed25519 here, with each public key expanded once. Verification
// keeps the standard library's accept rules exactly (VerifyOptionsStdLib:
// cofactorless, small-order and non-canonical A allowed, non-canonical R
// refused), so what verifies is what crypto/ed25519 would verify
// (TestVerifyMatchesStandardLibrary).

var stdlibRules = &voied.Options{Verify: voied.VerifyOptionsStdLib}

// signEd25519 signs msg: the same signature crypto/ed25519 makes (ed25519
// is deterministic).
func signEd25519(key ed25519.PrivateKey, msg []byte) []byte {
	return voied.Sign(voied.PrivateKey(key), msg)
}

// verifyEd25519 checks sig over msg by pub.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	exp := expandedKeys.get(pub)
	if exp == nil {
		// Not a point at all: crypto/ed25519 refuses it too.
		return false
	}
	return voied.VerifyExpandedWithOptions(exp, msg, sig, stdlibRules)
}

// expandedKeys holds the expanded form (about 1.5 KiB) of the keys this
// process has verified with. Only keys a registry trusts get here, but the
// cache is bounded all the same: when full it starts over.
var expandedKeys = &keyCache{keys: map[string]*voied.ExpandedPublicKey{}}

const maxExpandedKeys = 1 << 14

type keyCache struct {
	mu   sync.RWMutex
	keys map[string]*voied.ExpandedPublicKey
}

func (c *keyCache) get(pub ed25519.PublicKey) *voied.ExpandedPublicKey {
	c.mu.RLock()
	exp, ok := c.keys[string(pub)]
	c.mu.RUnlock()
	if ok {
		return exp
	}
	exp, err := voied.NewExpandedPublicKey(voied.PublicKey(pub))
	if err != nil {
		exp = nil
	}
	c.mu.Lock()
	if len(c.keys) >= maxExpandedKeys {
		clear(c.keys)
	}
	c.keys[string(pub)] = exp
	c.mu.Unlock()
	return exp
}
