package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Principal is a NATS user inside a tenant: an agent, a client or the
// tenant's orchestrator. The data dir keeps its public key, never its seed;
// the seed lives only in the creds file handed to its owner.
type Principal struct {
	Tenant       string     `json:"tenant"`
	Name         string     `json:"name"`
	Role         Role       `json:"role"`
	Capabilities []string   `json:"capabilities,omitempty"`
	PublicKey    string     `json:"public_key"`
	CreatedAt    time.Time  `json:"created_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	// ExpiresAt is when the current creds expire: their JWT's exp, set
	// when the data dir's security level has a credential maximum age
	// (credage.go). Nil means they never expire. Rotation renews it.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// RetiredKeys are the keys rotation replaced, oldest first. They are
	// revoked; they are kept so that events they signed before they retired
	// (audit records) can still be verified offline.
	RetiredKeys []RetiredKey `json:"retired_keys,omitempty"`
}

// RetiredKey is a public key a principal no longer uses, and since when.
type RetiredKey struct {
	PublicKey string    `json:"public_key"`
	RetiredAt time.Time `json:"retired_at"`
}

// Revoked reports whether the principal's current key is revoked.
func (p Principal) Revoked() bool { return p.RevokedAt != nil }

// tags are the user JWT tags; the agent template expands cap:<c> into
// subscribe permissions for eq.cap.<c>.
func (p Principal) tags() []string {
	tags := []string{"role:" + string(p.Role), "tenant:" + p.Tenant}
	for _, c := range p.Capabilities {
		tags = append(tags, capabilityTag+":"+c)
	}
	return tags
}

// PrincipalSpec describes a principal to create.
type PrincipalSpec struct {
	Tenant       string
	Name         string
	Role         Role     // RoleAgent or RoleClient
	Capabilities []string // agents only; at least one
	// CredsFile is where the creds go; empty means DefaultCredsFile. An
	// existing file is never overwritten by a create.
	CredsFile string
}

func (spec PrincipalSpec) validate() error {
	if err := protocol.ValidateName("tenant", spec.Tenant); err != nil {
		return err
	}
	if err := protocol.ValidateName(string(spec.Role), spec.Name); err != nil {
		return err
	}
	if spec.Name == OrchestratorName {
		return fmt.Errorf("%w: %q is the tenant's orchestrator", ErrReservedName, spec.Name)
	}
	switch spec.Role {
	case RoleAgent:
		if len(spec.Capabilities) == 0 {
			return ErrNoCapability
		}
		seen := map[string]bool{}
		for _, c := range spec.Capabilities {
			if err := protocol.ValidateName("capability", c); err != nil {
				return err
			}
			if seen[c] {
				return fmt.Errorf("%w: capability %q given twice", protocol.ErrInvalidName, c)
			}
			seen[c] = true
		}
	case RoleClient:
		if len(spec.Capabilities) > 0 {
			return fmt.Errorf("auth: a client has no capabilities")
		}
	default:
		return fmt.Errorf("%w: cannot create a %q principal", ErrWrongRole, spec.Role)
	}
	return nil
}

// CreatePrincipal issues an agent or client: a fresh user key whose JWT is
// signed by the tenant's scoped key for the role, so the server applies the
// role's ACL. Nothing is published: the account already trusts the key.
func (s *Store) CreatePrincipal(ctx context.Context, spec PrincipalSpec) (Principal, error) {
	created, err := s.CreatePrincipals(ctx, []PrincipalSpec{spec})
	if err != nil {
		return Principal{}, err
	}
	return created[0], nil
}

// CreatePrincipals issues several principals under one lock and one flush
// to disk: the way to provision many agents at once. Each principal is
// created whole or not at all; on an error the ones before it stay and are
// returned with it.
func (s *Store) CreatePrincipals(ctx context.Context, specs []PrincipalSpec) ([]Principal, error) {
	for _, spec := range specs {
		if err := spec.validate(); err != nil {
			return nil, err
		}
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	lifetime, err := s.CredentialLifetime()
	if err != nil {
		return nil, err
	}
	issuers := map[string]issuer{}
	var created []Principal
	syncPaths := []string{s.layout.root}
	for _, spec := range specs {
		p, credsFile, err := s.createPrincipalLocked(spec, issuers, lifetime)
		if err != nil {
			return created, errors.Join(err, syncAll(syncPaths...))
		}
		created = append(created, p)
		syncPaths = append(syncPaths, filepath.Dir(credsFile))
	}
	return created, syncAll(syncPaths...)
}

// issuer is what signs a tenant's users of one role, loaded once per batch.
type issuer struct {
	accountKey string
	signer     nkeys.KeyPair
}

func (s *Store) createPrincipalLocked(spec PrincipalSpec, issuers map[string]issuer, lifetime time.Duration) (Principal, string, error) {
	cacheKey := spec.Tenant + "/" + string(spec.Role)
	iss, ok := issuers[cacheKey]
	if !ok {
		tenant, err := s.Tenant(spec.Tenant)
		if err != nil {
			return Principal{}, "", err
		}
		signer, err := loadKey(filepath.Join(s.layout.tenantDir(spec.Tenant), roleKeyFile(spec.Role)))
		if err != nil {
			return Principal{}, "", err
		}
		iss = issuer{accountKey: tenant.AccountKey, signer: signer}
		issuers[cacheKey] = iss
	}

	var existing Principal
	if err := readJSON(filepath.Join(s.layout.tenantDir(spec.Tenant), principalFile(spec.Name)), &existing); err == nil {
		hint := ""
		if existing.Revoked() {
			hint = " (revoked; `rotate` issues new creds)"
		}
		return Principal{}, "", fmt.Errorf("%w: %s %s in tenant %s%s", ErrPrincipalExists, existing.Role, spec.Name, spec.Tenant, hint)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Principal{}, "", err
	}
	credsFile := spec.CredsFile
	if credsFile == "" {
		credsFile = s.DefaultCredsFile(spec.Tenant, spec.Name)
	}
	if _, err := os.Stat(credsFile); err == nil {
		return Principal{}, "", fmt.Errorf("auth: %s exists; not overwriting creds", credsFile)
	}

	now := time.Now().UTC()
	p := Principal{
		Tenant:       spec.Tenant,
		Name:         spec.Name,
		Role:         spec.Role,
		Capabilities: append([]string(nil), spec.Capabilities...),
		CreatedAt:    now,
		ExpiresAt:    expiryAfter(now, lifetime),
	}
	creds, userPub, err := newUserCreds(p.Name, iss.accountKey, iss.signer, p.tags(), jwt.UserPermissionLimits{}, jwtExpiry(p.ExpiresAt))
	if err != nil {
		return Principal{}, "", err
	}
	p.PublicKey = userPub
	// The record first: creds whose key is on record can always be revoked
	// by name, even after a crash between the two writes.
	if err := s.savePrincipal(p); err != nil {
		return Principal{}, "", err
	}
	if err := writeFileAtomic(credsFile, creds, secretPerm); err != nil {
		os.Remove(filepath.Join(s.layout.tenantDir(p.Tenant), principalFile(p.Name)))
		return Principal{}, "", fmt.Errorf("auth: write creds: %w", err)
	}
	return p, credsFile, nil
}

// Principal returns one principal of a tenant.
func (d *Directory) Principal(tenant, name string) (Principal, error) {
	if err := protocol.ValidateName("tenant", tenant); err != nil {
		return Principal{}, err
	}
	if err := protocol.ValidateName("principal", name); err != nil {
		return Principal{}, err
	}
	var p Principal
	err := readJSON(filepath.Join(d.layout.tenantDir(tenant), principalFile(name)), &p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, terr := d.Tenant(tenant); terr != nil {
			return Principal{}, terr
		}
		return Principal{}, fmt.Errorf("%w: %s in tenant %s", ErrUnknownAgent, name, tenant)
	}
	return p, err
}

// Principals lists a tenant's principals by name.
func (d *Directory) Principals(tenant string) ([]Principal, error) {
	if _, err := d.Tenant(tenant); err != nil {
		return nil, err
	}
	dir := filepath.Join(d.layout.tenantDir(tenant), principalsSubdir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("auth: list principals of %s: %w", tenant, err)
	}
	var out []Principal
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || protocol.ValidateName("principal", name) != nil {
			continue
		}
		p, err := d.Principal(tenant, name)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Revoke revokes a principal's key in its tenant account and publishes the
// account: the server closes the principal's live connections at once and
// refuses its creds from then on.
func (s *Store) Revoke(ctx context.Context, tenant, name string, pub Publisher) (Principal, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return Principal{}, err
	}
	defer unlock()
	// Read under the lock: a concurrent Rotate must not leave us revoking
	// a key that is already dead.
	p, err := s.Principal(tenant, name)
	if err != nil {
		return Principal{}, err
	}
	now := time.Now().UTC()
	if err := s.publishRevocation(ctx, tenant, p.PublicKey, now, pub); err != nil {
		return Principal{}, err
	}
	p.RevokedAt = &now
	if err := s.savePrincipal(p); err != nil {
		return Principal{}, err
	}
	if err := s.journalKeyChange(KeyChange{Tenant: tenant, Name: name}); err != nil {
		return Principal{}, fmt.Errorf("auth: %s is revoked on the servers and in the data dir, but running verifiers may not have seen it yet: %w", name, err)
	}
	return p, syncFS(s.layout.root)
}

// Rotate issues the principal a new key and creds (same name, role and
// capabilities) and revokes the old key. credsFile empty means
// DefaultCredsFile; it is overwritten. The new creds expire after the
// data dir's credential maximum age counted from now, so rotation is how
// creds that expired, or are about to, are renewed.
func (s *Store) Rotate(ctx context.Context, tenant, name, credsFile string, pub Publisher) (Principal, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return Principal{}, err
	}
	defer unlock()
	p, err := s.Principal(tenant, name)
	if err != nil {
		return Principal{}, err
	}
	t, err := s.Tenant(tenant)
	if err != nil {
		return Principal{}, err
	}
	if credsFile == "" {
		credsFile = s.DefaultCredsFile(tenant, name)
	}
	signer, err := loadKey(filepath.Join(s.layout.tenantDir(tenant), roleKeyFile(p.Role)))
	if err != nil {
		return Principal{}, err
	}
	lifetime, err := s.CredentialLifetime()
	if err != nil {
		return Principal{}, err
	}
	expires := expiryAfter(time.Now(), lifetime)
	creds, userPub, err := newUserCreds(p.Name, t.AccountKey, signer, p.tags(), jwt.UserPermissionLimits{}, jwtExpiry(expires))
	if err != nil {
		return Principal{}, err
	}
	// The new creds are written before the old key dies, so the owner is
	// never without working creds. The new key works the moment it exists
	// (users need no publish), so if the revocation is refused the new seed
	// is destroyed again and the old creds put back.
	previous, readErr := os.ReadFile(credsFile)
	if err := writeFileAtomic(credsFile, creds, secretPerm); err != nil {
		return Principal{}, fmt.Errorf("auth: write creds: %w", err)
	}
	now := time.Now().UTC()
	if err := s.publishRevocation(ctx, tenant, p.PublicKey, now, pub); err != nil {
		undo := os.Remove(credsFile)
		if readErr == nil {
			undo = writeFileAtomic(credsFile, previous, secretPerm)
		}
		return Principal{}, errors.Join(err, undo)
	}
	// A key revoked earlier retired then, not now.
	retiredAt := now
	if p.RevokedAt != nil {
		retiredAt = *p.RevokedAt
	}
	p.RetiredKeys = append(p.RetiredKeys, RetiredKey{PublicKey: p.PublicKey, RetiredAt: retiredAt})
	p.PublicKey = userPub
	p.RevokedAt = nil
	p.ExpiresAt = expires
	if err := s.savePrincipal(p); err != nil {
		return Principal{}, err
	}
	if err := s.journalKeyChange(KeyChange{Tenant: tenant, Name: name}); err != nil {
		return Principal{}, fmt.Errorf("auth: %s is rotated on the servers and in the data dir, but running verifiers may not have seen it yet: %w", name, err)
	}
	return p, syncAll(s.layout.root, filepath.Dir(credsFile))
}

// publishRevocation adds a revocation to the tenant's account, publishes
// it, and only then records the new account JWT.
func (s *Store) publishRevocation(ctx context.Context, tenant, userPub string, at time.Time, pub Publisher) error {
	claims, err := s.accountClaims(tenant)
	if err != nil {
		return err
	}
	claims.RevokeAt(userPub, at)
	token, err := claims.Encode(s.operatorSigner)
	if err != nil {
		return fmt.Errorf("auth: sign account %s: %w", tenant, err)
	}
	if err := pub.UpdateAccount(ctx, token); err != nil {
		return fmt.Errorf("auth: publish revocation in %s: %w", tenant, err)
	}
	path := filepath.Join(s.layout.tenantDir(tenant), tenantJWTFile)
	if err := writeFileAtomic(path, []byte(token), secretPerm); err != nil {
		return fmt.Errorf("auth: the server has the revocation but recording it failed (publish again): %w", err)
	}
	return nil
}

func (s *Store) savePrincipal(p Principal) error {
	return writeJSON(filepath.Join(s.layout.tenantDir(p.Tenant), principalFile(p.Name)), p)
}
