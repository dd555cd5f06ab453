package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Tenant is a customer: one NATS account. Nothing crosses accounts.
type Tenant struct {
	Name       string    `json:"name"`
	AccountKey string    `json:"account_key"`
	Limits     Limits    `json:"limits"`
	CreatedAt  time.Time `json:"created_at"`
}

// CreateTenant makes the tenant's account with one scoped signing key per
// role and an orchestrator user, and publishes the account before anything
// is recorded: if the server refuses, nothing stays on disk. The
// orchestrator's creds go to DefaultCredsFile(name, "orchestrator").
//
// With JetStream on and a publisher that is a JetStreamChecker (one that
// reaches running servers), the limits are first checked against what
// the server has left (a CapacityError if they do not fit), and after the
// account is published JetStream is confirmed to work for it as its
// orchestrator: if it does not, the account is deleted again and the
// error wraps ErrJetStreamUnavailable.
func (s *Store) CreateTenant(ctx context.Context, name string, limits Limits, pub Publisher) (Tenant, error) {
	if err := protocol.ValidateName("tenant", name); err != nil {
		return Tenant{}, err
	}
	if err := limits.Validate(); err != nil {
		return Tenant{}, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return Tenant{}, err
	}
	defer unlock()

	final := s.layout.tenantDir(name)
	if _, err := os.Stat(final); err == nil {
		return Tenant{}, fmt.Errorf("%w: %s", ErrTenantExists, name)
	}
	checker, _ := pub.(JetStreamChecker)
	if !limits.JetStream {
		checker = nil
	}
	if checker != nil {
		// A server that cannot report its capacity still gets the check
		// after the publish, which is the one that decides.
		if c, err := checker.JetStreamCapacity(ctx); err == nil {
			if err := s.fitJetStream(name, limits, c); err != nil {
				return Tenant{}, err
			}
		}
	}

	accountKP, _, err := newKey(nkeys.CreateAccount)
	if err != nil {
		return Tenant{}, err
	}
	lifetime, err := s.CredentialLifetime()
	if err != nil {
		return Tenant{}, err
	}
	tenant := Tenant{Name: name, AccountKey: publicKey(accountKP), Limits: limits, CreatedAt: time.Now().UTC()}
	claims := jwt.NewAccountClaims(tenant.AccountKey)
	claims.Name = name
	claims.Tags.Add("equilateral:tenant")
	limits.apply(claims)

	tmp, err := os.MkdirTemp(s.layout.tenantsDir(), ".new-"+name+"-*")
	if err != nil {
		return Tenant{}, fmt.Errorf("auth: create tenant dir: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up any failure

	signers := make(map[Role]nkeys.KeyPair, len(Roles))
	for _, role := range Roles {
		kp, seed, err := newKey(nkeys.CreateAccount)
		if err != nil {
			return Tenant{}, err
		}
		signers[role] = kp
		claims.SigningKeys.AddScopedSigner(roleScope(role, publicKey(kp)))
		if err := writeFileAtomic(filepath.Join(tmp, roleKeyFile(role)), seed, secretPerm); err != nil {
			return Tenant{}, fmt.Errorf("auth: write %s key: %w", role, err)
		}
	}
	accountJWT, err := claims.Encode(s.operatorSigner)
	if err != nil {
		return Tenant{}, fmt.Errorf("auth: sign account %s: %w", name, err)
	}
	if err := writeJSON(filepath.Join(tmp, tenantMetaFile), tenant); err != nil {
		return Tenant{}, err
	}
	if err := writeFileAtomic(filepath.Join(tmp, tenantJWTFile), []byte(accountJWT), secretPerm); err != nil {
		return Tenant{}, err
	}

	// The orchestrator user is a principal like any other: at a level with
	// a credential maximum age its creds expire too, and `rotate` renews them.
	orch := Principal{Tenant: name, Name: OrchestratorName, Role: RoleOrchestrator, CreatedAt: tenant.CreatedAt,
		ExpiresAt: expiryAfter(tenant.CreatedAt, lifetime)}
	creds, userPub, err := newUserCreds(orch.Name, tenant.AccountKey, signers[RoleOrchestrator], orch.tags(), jwt.UserPermissionLimits{}, jwtExpiry(orch.ExpiresAt))
	if err != nil {
		return Tenant{}, err
	}
	orch.PublicKey = userPub
	if err := writeJSON(filepath.Join(tmp, principalFile(orch.Name)), orch); err != nil {
		return Tenant{}, err
	}

	// The keys must be on disk before any server trusts the account.
	if err := syncFS(tmp); err != nil {
		return Tenant{}, err
	}
	if err := pub.UpdateAccount(ctx, accountJWT); err != nil {
		return Tenant{}, fmt.Errorf("auth: publish tenant %s: %w", name, err)
	}
	if checker != nil {
		if err := checker.CheckJetStream(ctx, creds, protocol.InboxPrefix(orch.Name)); err != nil {
			return Tenant{}, s.undoTenant(ctx, name, tenant.AccountKey, limits, pub, checker, err)
		}
	}
	// Creds from an earlier tenant of the same name are dead: replace them.
	credsDir := s.layout.tenantCredsDir(name)
	if err := os.RemoveAll(credsDir); err != nil {
		return Tenant{}, err
	}
	if err := writeFileAtomic(s.DefaultCredsFile(name, orch.Name), creds, secretPerm); err != nil {
		return Tenant{}, fmt.Errorf("auth: write orchestrator creds: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(credsDir)
		return Tenant{}, fmt.Errorf("auth: record tenant %s: %w", name, err)
	}
	s.noteReservation(name, &limits)
	return tenant, syncFS(final)
}

// undoTenant deletes an account the server would not enable JetStream
// for, and says why it was refused: the limit that does not fit and what
// the server has left, when that is the reason.
func (s *Store) undoTenant(ctx context.Context, name, accountKey string, limits Limits, pub Publisher, checker JetStreamChecker, cause error) error {
	err := fmt.Errorf("%w: %s: %w; the tenant was not created", ErrJetStreamUnavailable, name, cause)
	if c, cerr := checker.JetStreamCapacity(ctx); cerr == nil {
		if fit := s.fitJetStream(name, limits, c); fit != nil {
			err = fmt.Errorf("%w: %s: %w (server: %v); the tenant was not created", ErrJetStreamUnavailable, name, fit, cause)
		} else {
			err = fmt.Errorf("%w (the server has %s of JetStream storage and %s of memory, accounts outside this data dir may hold the rest)",
				err, FormatSize(c.MaxStore), FormatSize(c.MaxMemory))
		}
	}
	request, rerr := s.deleteRequest(accountKey)
	if rerr == nil {
		rerr = pub.DeleteAccount(ctx, request)
	}
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("auth: delete the unusable account %s again: %w", accountKey, rerr))
	}
	return err
}

// Tenant returns one tenant.
func (d *Directory) Tenant(name string) (Tenant, error) {
	if err := protocol.ValidateName("tenant", name); err != nil {
		return Tenant{}, err
	}
	var t Tenant
	err := readJSON(filepath.Join(d.layout.tenantDir(name), tenantMetaFile), &t)
	if errors.Is(err, fs.ErrNotExist) {
		return Tenant{}, fmt.Errorf("%w: %s", ErrUnknownTenant, name)
	}
	return t, err
}

// Tenants lists all tenants by name.
func (d *Directory) Tenants() ([]Tenant, error) {
	entries, err := os.ReadDir(d.layout.tenantsDir())
	if err != nil {
		return nil, fmt.Errorf("auth: list tenants: %w", err)
	}
	var out []Tenant
	for _, e := range entries {
		if !e.IsDir() || protocol.ValidateName("tenant", e.Name()) != nil {
			continue // temporary or foreign entries
		}
		t, err := d.Tenant(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteTenant revokes every user of the tenant (their connections close at
// once), deletes the account from the servers, and removes its keys and
// creds from the data dir.
func (s *Store) DeleteTenant(ctx context.Context, name string, pub Publisher) error {
	if _, err := s.Tenant(name); err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	claims, err := s.accountClaims(name)
	if err != nil {
		return err
	}
	claims.RevokeAt(jwt.All, time.Now())
	revoked, err := claims.Encode(s.operatorSigner)
	if err != nil {
		return fmt.Errorf("auth: sign account %s: %w", name, err)
	}
	if err := pub.UpdateAccount(ctx, revoked); err != nil {
		return fmt.Errorf("auth: revoke users of %s: %w", name, err)
	}
	request, err := s.deleteRequest(claims.Subject)
	if err != nil {
		return err
	}
	if err := pub.DeleteAccount(ctx, request); err != nil {
		return fmt.Errorf("auth: delete account of %s: %w", name, err)
	}
	// Rename first so readers never see a half-removed tenant.
	dir := s.layout.tenantDir(name)
	trash, err := os.MkdirTemp(s.layout.tenantsDir(), ".deleted-"+name+"-*")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(trash, name)); err != nil {
		return fmt.Errorf("auth: remove tenant %s: %w", name, err)
	}
	s.noteReservation(name, nil)
	return errors.Join(s.journalKeyChange(KeyChange{Tenant: name}),
		os.RemoveAll(trash), os.RemoveAll(s.layout.tenantCredsDir(name)), syncFS(s.layout.root))
}

// deleteRequest is the operator-signed claim the full resolver wants for
// $SYS.REQ.CLAIMS.DELETE: self-signed by an operator key, listing accounts.
func (s *Store) deleteRequest(accounts ...string) (string, error) {
	signerPub := publicKey(s.operatorSigner)
	claims := jwt.NewGenericClaims(signerPub)
	claims.Data["accounts"] = accounts
	token, err := claims.Encode(s.operatorSigner)
	if err != nil {
		return "", fmt.Errorf("auth: sign delete request: %w", err)
	}
	return token, nil
}

// accountClaims reads the tenant's current account JWT.
func (s *Store) accountClaims(tenant string) (*jwt.AccountClaims, error) {
	token, err := os.ReadFile(filepath.Join(s.layout.tenantDir(tenant), tenantJWTFile))
	if err != nil {
		return nil, fmt.Errorf("auth: read account of %s: %w", tenant, err)
	}
	claims, err := jwt.DecodeAccountClaims(string(token))
	if err != nil {
		return nil, fmt.Errorf("auth: account JWT of %s is invalid: %w", tenant, err)
	}
	return claims, nil
}

// AccountJWT returns the tenant's current account JWT, for publishing it
// again (for example to a server that was down).
func (s *Store) AccountJWT(tenant string) (string, error) {
	if _, err := s.Tenant(tenant); err != nil {
		return "", err
	}
	token, err := os.ReadFile(filepath.Join(s.layout.tenantDir(tenant), tenantJWTFile))
	return string(token), err
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'), secretPerm)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("auth: %s is corrupt: %w", path, err)
	}
	return nil
}
