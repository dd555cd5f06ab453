package auth

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/jwt/v2"
)

// Directory is the read-only view of a data dir: the operator's public
// key, the tenants, their principals, where their creds go, and the key
// journal. It never opens a seed (the operator's identity and signing
// keys, the system account's signing key, the tenants' role keys), so a
// process that only needs to know who exists and which keys to trust,
// such as the orchestrator, can run where those files are absent or
// unreadable. Store is a Directory plus the operator signing key, and
// holds every method that mints, signs or rotates.
//
// A Directory caches nothing: each call reads the files again, so it sees
// a change made through any Store over the same data dir at once. It is
// safe for concurrent use.
type Directory struct {
	layout      layout
	operatorPub string
	systemPub   string
}

// OpenReadOnly opens an existing data dir made by Init, reading only its
// operator JWT.
func OpenReadOnly(dir string) (*Directory, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("auth: data dir %s: %w", dir, err)
	}
	l := layout{root: abs}
	if _, err := os.Stat(l.operatorJWT()); err != nil {
		return nil, fmt.Errorf("%w: %s has no operator (run `equilateral init --data-dir %s` first)", ErrNoDataDir, abs, dir)
	}
	opJWT, err := os.ReadFile(l.operatorJWT())
	if err != nil {
		return nil, fmt.Errorf("auth: read operator: %w", err)
	}
	opClaims, err := jwt.DecodeOperatorClaims(string(opJWT))
	if err != nil {
		return nil, fmt.Errorf("auth: operator JWT in %s is invalid: %w", abs, err)
	}
	return &Directory{layout: l, operatorPub: opClaims.Subject, systemPub: opClaims.SystemAccount}, nil
}

// Dir is the absolute path of the data dir.
func (d *Directory) Dir() string { return d.layout.root }

// OperatorPublicKey is the operator's identity key.
func (d *Directory) OperatorPublicKey() string { return d.operatorPub }

// DefaultCredsFile is where a principal's creds go when no path is given:
// DIR/creds/<tenant>/<name>.creds.
func (d *Directory) DefaultCredsFile(tenant, name string) string {
	return filepath.Join(d.layout.tenantCredsDir(tenant), name+".creds")
}
