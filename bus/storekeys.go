package bus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/protocol"
)

// StoreKeys is a KeyRegistry read from an Equilateral data dir: each
// active principal's public key is registered to its source
// (eq://<tenant>/<name>). Revoked principals and rotated-out keys are not
// registered, unless WithRetiredKeys says so.
type StoreKeys struct {
	store       *auth.Store
	reloadEvery time.Duration
	cfg         storeKeysConfig

	mu        sync.RWMutex
	keys      map[string]Key
	loadedAt  time.Time
	reloading atomic.Bool
}

type storeKeysConfig struct {
	retired bool
}

// StoreKeysOption configures a StoreKeys.
type StoreKeysOption interface{ applyStoreKeys(*storeKeysConfig) }

type storeKeysOptionFunc func(*storeKeysConfig)

func (f storeKeysOptionFunc) applyStoreKeys(c *storeKeysConfig) { f(c) }

// WithRetiredKeys also registers, each to its own source, the keys of
// revoked principals and the keys rotation retired: every key a principal
// of the data dir ever held. It is for verifying old events offline (the
// audit stream); a live verifier must not use it, or a revoked key would
// still speak for its principal.
func WithRetiredKeys() StoreKeysOption {
	return storeKeysOptionFunc(func(c *storeKeysConfig) { c.retired = true })
}

// NewStoreKeys loads the registry from store.
func NewStoreKeys(store *auth.Store, opts ...StoreKeysOption) (*StoreKeys, error) {
	r := &StoreKeys{store: store, reloadEvery: time.Second}
	for _, o := range opts {
		o.applyStoreKeys(&r.cfg)
	}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads every tenant's principals again. A revocation is effective
// for signatures after the next reload (and at once for connections,
// which the server closes).
func (r *StoreKeys) Reload() error {
	tenants, err := r.store.Tenants()
	if err != nil {
		return err
	}
	keys := map[string]Key{}
	for _, t := range tenants {
		principals, err := r.store.Principals(t.Name)
		if err != nil {
			return err
		}
		for _, p := range principals {
			source := protocol.Source(p.Tenant, p.Name)
			for _, pub := range r.trusted(p) {
				k, err := NewKey(source, pub)
				if err != nil {
					return err
				}
				keys[k.ID] = k
			}
		}
	}
	r.mu.Lock()
	r.keys, r.loadedAt = keys, time.Now()
	r.mu.Unlock()
	return nil
}

// trusted lists the public keys of p this registry accepts.
func (r *StoreKeys) trusted(p auth.Principal) []string {
	if !r.cfg.retired {
		if p.Revoked() {
			return nil
		}
		return []string{p.PublicKey}
	}
	keys := []string{p.PublicKey}
	for _, k := range p.RetiredKeys {
		keys = append(keys, k.PublicKey)
	}
	return keys
}

// Key implements KeyRegistry. A key not cached is looked up through the
// claimed source's principal record (one file read), so principals created
// or rotated a moment ago verify at once; a stale cache is reloaded in the
// background, so a revocation reaches signature checks within about
// reloadEvery.
func (r *StoreKeys) Key(_ context.Context, keyID, claimedSource string) (Key, error) {
	r.mu.RLock()
	k, ok := r.keys[keyID]
	stale := time.Since(r.loadedAt) >= r.reloadEvery
	r.mu.RUnlock()
	if stale && r.reloading.CompareAndSwap(false, true) {
		go func() {
			defer r.reloading.Store(false)
			r.Reload()
		}()
	}
	if ok {
		return k, nil
	}
	if tenant, name, err := protocol.ParseSource(claimedSource); err == nil {
		if p, err := r.store.Principal(tenant, name); err == nil && slices.Contains(r.trusted(p), keyID) {
			k, err := NewKey(claimedSource, keyID)
			if err == nil {
				r.mu.Lock()
				r.keys[keyID] = k
				r.mu.Unlock()
				return k, nil
			}
		}
	}
	return Key{}, fmt.Errorf("%w: key %.12s…", ErrUnknownSigner, keyID)
}
