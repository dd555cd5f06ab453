package bus

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"

	"github.com/nats-io/nkeys"
)

// Key is a public signing key and the event source it belongs to.
type Key struct {
	ID     string // public nkey, the DSSE keyid
	Source string // the only source this key may sign for
	Public ed25519.PublicKey
}

// KeyRegistry answers which source a key id belongs to. claimedSource is
// the event's source: a registry may use it to find a key it has not
// cached, but must return the key's own registered source, whatever the
// claim. It returns an error wrapping ErrUnknownSigner for a key it does
// not know (or no longer trusts, such as a revoked or rotated key).
// Implementations must be safe for concurrent use.
type KeyRegistry interface {
	Key(ctx context.Context, keyID, claimedSource string) (Key, error)
}

// NewKey decodes a public user nkey for source.
func NewKey(source, publicNKey string) (Key, error) {
	raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(publicNKey))
	if err != nil {
		return Key{}, fmt.Errorf("bus: key for %s: want a user public key", source)
	}
	return Key{ID: publicNKey, Source: source, Public: ed25519.PublicKey(raw)}, nil
}

// StaticKeys is a KeyRegistry held in memory, filled by the caller (from
// the data dir, a config, or a test).
type StaticKeys struct {
	mu   sync.RWMutex
	keys map[string]Key
}

// NewStaticKeys returns an empty registry.
func NewStaticKeys() *StaticKeys { return &StaticKeys{keys: map[string]Key{}} }

// Add registers publicNKey as the key of source.
func (r *StaticKeys) Add(source, publicNKey string) error {
	k, err := NewKey(source, publicNKey)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.keys[k.ID] = k
	r.mu.Unlock()
	return nil
}

// Remove forgets a key (it is revoked or rotated).
func (r *StaticKeys) Remove(publicNKey string) {
	r.mu.Lock()
	delete(r.keys, publicNKey)
	r.mu.Unlock()
}

// Key implements KeyRegistry.
func (r *StaticKeys) Key(_ context.Context, keyID, _ string) (Key, error) {
	r.mu.RLock()
	k, ok := r.keys[keyID]
	r.mu.RUnlock()
	if !ok {
		return Key{}, fmt.Errorf("%w: key %.12s…", ErrUnknownSigner, keyID)
	}
	return k, nil
}

// SourceKeys trusts, for the listed sources only, whatever key an event
// names: the signature is still checked against that key (integrity), but
// identity rests on the server's ACLs. That is sound where only one
// principal can publish on the subject (a client's private inbox and
// eq.client.<name>.> accept only the orchestrator), and it is how a client
// without the data dir reads its orchestrator's replies. Pin keys with
// StaticKeys or StoreKeys where identity must come from the signature.
type SourceKeys struct {
	sources map[string]bool
}

// NewSourceKeys trusts the given sources' self-named keys.
func NewSourceKeys(sources ...string) *SourceKeys {
	m := make(map[string]bool, len(sources))
	for _, s := range sources {
		m[s] = true
	}
	return &SourceKeys{sources: m}
}

// Key implements KeyRegistry.
func (r *SourceKeys) Key(_ context.Context, keyID, claimedSource string) (Key, error) {
	if !r.sources[claimedSource] {
		return Key{}, fmt.Errorf("%w: source %s is not trusted here", ErrUnknownSigner, claimedSource)
	}
	return NewKey(claimedSource, keyID)
}
