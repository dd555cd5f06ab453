package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// Publisher delivers account changes to NATS servers. The Store calls it
// before it records a change, so a refused update changes nothing on disk.
type Publisher interface {
	// UpdateAccount installs or replaces an account JWT.
	UpdateAccount(ctx context.Context, accountJWT string) error
	// DeleteAccount removes accounts; request is an operator-signed
	// generic claim listing them.
	DeleteAccount(ctx context.Context, request string) error
}

// System-account subjects of the NATS full resolver.
const (
	claimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE"
	claimsDeleteSubject = "$SYS.REQ.CLAIMS.DELETE"
)

// NATSPublisher pushes account changes to running servers through the
// system account. In a cluster one server answers; the full resolvers
// share the change among themselves.
type NATSPublisher struct {
	conn *nats.Conn
}

// NewNATSPublisher uses nc, which must be connected as a system account
// user (see Store.SystemCredsFile).
func NewNATSPublisher(nc *nats.Conn) *NATSPublisher { return &NATSPublisher{conn: nc} }

// UpdateAccount implements Publisher.
func (p *NATSPublisher) UpdateAccount(ctx context.Context, accountJWT string) error {
	return p.request(ctx, claimsUpdateSubject, accountJWT)
}

// DeleteAccount implements Publisher.
func (p *NATSPublisher) DeleteAccount(ctx context.Context, request string) error {
	return p.request(ctx, claimsDeleteSubject, request)
}

// claimsResponse mirrors the server's reply to claim updates and deletes.
type claimsResponse struct {
	Data *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"data"`
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

func (p *NATSPublisher) request(ctx context.Context, subject, body string) error {
	msg, err := p.conn.RequestWithContext(ctx, subject, []byte(body))
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("auth: no server answers %s: is the full resolver configured and is this a system account user?", subject)
		}
		return fmt.Errorf("auth: %s: %w", subject, err)
	}
	var resp claimsResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("auth: unreadable reply to %s: %w", subject, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("%w: %s (code %d)", ErrPushRefused, resp.Error.Description, resp.Error.Code)
	}
	if resp.Data == nil {
		return fmt.Errorf("auth: empty reply to %s", subject)
	}
	return nil
}

// ResolverDirPublisher writes account JWTs into a full resolver's directory
// while its server is stopped; the server loads them when it starts. Do not
// use it against a directory a running server owns.
type ResolverDirPublisher struct {
	dir string
}

// NewResolverDirPublisher writes into dir (Store.ResolverDir for the local
// server).
func NewResolverDirPublisher(dir string) *ResolverDirPublisher {
	return &ResolverDirPublisher{dir: dir}
}

// UpdateAccount implements Publisher.
func (p *ResolverDirPublisher) UpdateAccount(_ context.Context, accountJWT string) error {
	claims, err := jwt.DecodeAccountClaims(accountJWT)
	if err != nil {
		return fmt.Errorf("auth: account JWT: %w", err)
	}
	return writeFileAtomic(filepath.Join(p.dir, claims.Subject+".jwt"), []byte(accountJWT), secretPerm)
}

// DeleteAccount implements Publisher. Like the server's own delete it keeps
// the JWT as <key>.jwt.deleted.
func (p *ResolverDirPublisher) DeleteAccount(_ context.Context, request string) error {
	claims, err := jwt.DecodeGeneric(request)
	if err != nil {
		return fmt.Errorf("auth: delete request: %w", err)
	}
	list, _ := claims.Data["accounts"].([]any)
	for _, entry := range list {
		key, _ := entry.(string)
		path := filepath.Join(p.dir, key+".jwt")
		if err := os.Rename(path, path+".deleted"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("auth: delete account file: %w", err)
		}
	}
	return nil
}
