package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
//
// # Freshness
//
// Keys are cached, and the cache follows the data dir's key journal
// (auth.KeyJournal): every lookup first checks, with one fstat, whether a
// revocation, rotation or tenant deletion was recorded since; if one was,
// the principals it names are read again before the lookup is answered.
// auth.Store's Revoke, Rotate and DeleteTenant journal the change before
// they return, so once `agent|client revoke|rotate` or `tenant delete` has
// returned, every StoreKeys over the same data dir refuses the old key on
// its very next lookup. A key created a moment ago is found at once too: a
// key not cached is looked up in the claimed source's principal record.
// A full reload in the background (every minute) is only a backstop for
// records changed by hand.
type StoreKeys struct {
	identities  IdentitySource
	journal     *auth.KeyJournal
	reloadEvery time.Duration
	cfg         storeKeysConfig

	// catchUp serializes whatever reads the journal: Reload and applying
	// journal entries.
	catchUp sync.Mutex

	mu       sync.RWMutex
	keys     map[string]Key      // key id -> key
	bySource map[string][]string // source -> key ids
	// applied is the journal position the cache reflects: every change
	// journalled before it is applied. It moves only after the changes.
	applied auth.JournalPosition
	// gen counts changes applied from the journal or a reload. A lookup
	// that read a principal record caches what it found only if gen did
	// not move meanwhile, so a record read before a revocation is never
	// cached after the revocation was applied.
	gen       uint64
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

// storeKeysBackstop is how often the whole cache is read again, for
// principal records changed without the journal (by hand).
const storeKeysBackstop = time.Minute

// IdentitySource is the part of a data dir StoreKeys reads: the tenants,
// their principals' records and the key journal. The read-only view
// (*auth.Directory, from auth.OpenReadOnly) is enough, so a verifier needs
// no signing key; *auth.Store provides it too. Its methods are called from
// several goroutines at once.
type IdentitySource interface {
	Tenants() ([]auth.Tenant, error)
	Principals(tenant string) ([]auth.Principal, error)
	Principal(tenant, name string) (auth.Principal, error)
	KeyJournal() *auth.KeyJournal
}

// NewStoreKeys loads the registry from identities.
func NewStoreKeys(identities IdentitySource, opts ...StoreKeysOption) (*StoreKeys, error) {
	r := &StoreKeys{identities: identities, journal: identities.KeyJournal(), reloadEvery: storeKeysBackstop}
	for _, o := range opts {
		o.applyStoreKeys(&r.cfg)
	}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads every tenant's principals again.
func (r *StoreKeys) Reload() error {
	r.catchUp.Lock()
	defer r.catchUp.Unlock()
	return r.reloadLocked()
}

func (r *StoreKeys) reloadLocked() error {
	// The position first: a change journalled while the records are read
	// is applied again by the next lookup, never lost.
	pos, err := r.journal.End()
	if err != nil {
		return err
	}
	tenants, err := r.identities.Tenants()
	if err != nil {
		return err
	}
	keys, bySource := map[string]Key{}, map[string][]string{}
	for _, t := range tenants {
		principals, err := r.identities.Principals(t.Name)
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
				bySource[source] = append(bySource[source], k.ID)
			}
		}
	}
	r.mu.Lock()
	r.keys, r.bySource, r.applied, r.loadedAt = keys, bySource, pos, time.Now()
	r.gen++
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

// Key implements KeyRegistry. It answers from the cache when the journal
// ends where the cache's position is (one fstat), and after applying what
// changed otherwise.
func (r *StoreKeys) Key(_ context.Context, keyID, claimedSource string) (Key, error) {
	end, err := r.journal.End()
	if err != nil {
		// What changed cannot be known: refuse rather than trust a key
		// that may be revoked.
		return Key{}, fmt.Errorf("%w: key %.12s… (%v)", ErrUnknownSigner, keyID, err)
	}
	r.mu.RLock()
	k, ok := r.keys[keyID]
	gen, applied := r.gen, r.applied
	stale := time.Since(r.loadedAt) >= r.reloadEvery
	r.mu.RUnlock()
	if applied != end {
		if err := r.follow(); err != nil {
			return Key{}, fmt.Errorf("%w: key %.12s… (%v)", ErrUnknownSigner, keyID, err)
		}
		r.mu.RLock()
		k, ok = r.keys[keyID]
		gen = r.gen
		r.mu.RUnlock()
	}
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
		if p, err := r.identities.Principal(tenant, name); err == nil && slices.Contains(r.trusted(p), keyID) {
			k, err := NewKey(claimedSource, keyID)
			if err == nil {
				r.remember(k, gen)
				return k, nil
			}
		}
	}
	return Key{}, fmt.Errorf("%w: key %.12s…", ErrUnknownSigner, keyID)
}

// remember caches a key read from its principal record, unless a change
// was applied since the lookup began: the record it came from may predate
// a revocation. (A change journalled but not applied yet is applied after
// this, and drops the key again.)
func (r *StoreKeys) remember(k Key, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen {
		return
	}
	if _, ok := r.keys[k.ID]; !ok {
		r.keys[k.ID] = k
		r.bySource[k.Source] = append(r.bySource[k.Source], k.ID)
	}
}

// follow applies whatever the key journal recorded since the cache's
// position, then moves the position.
func (r *StoreKeys) follow() error {
	r.catchUp.Lock()
	defer r.catchUp.Unlock()
	r.mu.RLock()
	from := r.applied
	r.mu.RUnlock()
	changes, next, err := r.journal.ReadFrom(from)
	if errors.Is(err, auth.ErrJournalReset) {
		return r.reloadLocked()
	}
	if err != nil {
		return err
	}
	for _, c := range changes {
		r.apply(c)
	}
	r.mu.Lock()
	r.applied = next
	r.mu.Unlock()
	return nil
}

// apply re-reads what one journal entry names: the principal's record,
// or for a whole tenant, every key of it is dropped and found again by
// lookup if the tenant still exists.
func (r *StoreKeys) apply(c auth.KeyChange) {
	if c.Name == "" {
		prefix := protocol.Source(c.Tenant, "")
		r.mu.Lock()
		for source, ids := range r.bySource {
			if strings.HasPrefix(source, prefix) {
				for _, id := range ids {
					delete(r.keys, id)
				}
				delete(r.bySource, source)
			}
		}
		r.gen++
		r.mu.Unlock()
		return
	}
	source := protocol.Source(c.Tenant, c.Name)
	var fresh []Key
	// A record that cannot be read trusts nothing until a lookup reads it.
	if p, err := r.identities.Principal(c.Tenant, c.Name); err == nil {
		for _, pub := range r.trusted(p) {
			if k, err := NewKey(source, pub); err == nil {
				fresh = append(fresh, k)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.bySource[source] {
		delete(r.keys, id)
	}
	delete(r.bySource, source)
	for _, k := range fresh {
		r.keys[k.ID] = k
		r.bySource[source] = append(r.bySource[source], k.ID)
	}
	r.gen++
}
