package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/equilateral-agents/equilateral/security"
)

// Credential maximum age (the advanced level's security.CredentialMaxAge):
// when the data dir's settings give a credential lifetime, every user JWT
// minted for a principal (agent and client create, rotate, the tenant's
// orchestrator user at tenant create) carries exp = issue time + lifetime,
// and the principal's record says when (Principal.ExpiresAt). The server
// refuses the creds from then on and closes connections made with them;
// `rotate` issues new ones with a new expiry. The system account's admin
// creds, which are no tenant's principal, never expire.

// ErrCredsExpired: a creds file's user JWT is past its expiry (see
// ExpiredError).
var ErrCredsExpired = errors.New("auth: creds expired")

// ExpiredError is a connection refused because its creds expired. It says
// whose creds they are and the command that renews them.
type ExpiredError struct {
	CredsFile string
	Name      string
	Tenant    string
	Role      Role
	ExpiredAt time.Time
	Cause     error // what the server or the client library said
}

func (e *ExpiredError) Error() string {
	who := e.Name
	if e.Role != "" {
		who = string(e.Role) + " " + e.Name
	}
	if e.Tenant != "" {
		who += " in tenant " + e.Tenant
	}
	msg := fmt.Sprintf("auth: the creds of %s (%s) expired at %s: run `%s` where the admin keys are, then use the new creds",
		who, e.CredsFile, e.ExpiredAt.UTC().Format(time.RFC3339), RenewCommand(e.Role, e.Name, e.Tenant))
	if e.Cause != nil {
		msg += " (" + e.Cause.Error() + ")"
	}
	return msg
}

// Is matches ErrCredsExpired.
func (e *ExpiredError) Is(target error) bool { return target == ErrCredsExpired }

// Unwrap returns the server's or the library's error.
func (e *ExpiredError) Unwrap() error { return e.Cause }

// RenewCommand is the command that issues a principal new creds with a new
// expiry: `equilateral agent rotate NAME --tenant T --data-dir DIR` (client
// rotate for a client). The tenant's orchestrator user is rotated with the
// agent command.
func RenewCommand(role Role, name, tenant string) string {
	noun := "agent"
	if role == RoleClient {
		noun = "client"
	}
	if tenant == "" {
		tenant = "T"
	}
	return fmt.Sprintf("equilateral %s rotate %s --tenant %s --data-dir DIR", noun, name, tenant)
}

// CredentialLifetime is how long creds the store mints now stay valid, as
// the data dir's security settings say (security.Settings.CredentialLifetime):
// 0, no expiry, below advanced. An unreadable settings file is an error,
// never a lifetime of 0: minting stops rather than minting creds that
// never expire.
func (s *Store) CredentialLifetime() (time.Duration, error) {
	settings, err := security.ReadSettings(s.Dir())
	if err != nil {
		return 0, fmt.Errorf("auth: security settings: %w", err)
	}
	return settings.CredentialLifetime(), nil
}

// expiryAfter is when creds issued at issued expire under lifetime, to the
// second as a JWT holds it; nil when lifetime is 0.
func expiryAfter(issued time.Time, lifetime time.Duration) *time.Time {
	if lifetime <= 0 {
		return nil
	}
	at := time.Unix(issued.Add(lifetime).Unix(), 0).UTC()
	return &at
}

// jwtExpiry is an expiry as newUserCreds takes it: zero for none.
func jwtExpiry(at *time.Time) time.Time {
	if at == nil {
		return time.Time{}
	}
	return *at
}

// CredsExpiry reads when the user JWT of a creds file expires; the zero
// time when it never does.
func CredsExpiry(credsFile string) (time.Time, error) {
	contents, err := os.ReadFile(credsFile)
	if err != nil {
		return time.Time{}, fmt.Errorf("auth: read creds: %w", err)
	}
	token, err := jwt.ParseDecoratedJWT(contents)
	if err != nil {
		return time.Time{}, fmt.Errorf("auth: %s is not a creds file", credsFile)
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return time.Time{}, fmt.Errorf("auth: %s holds no valid user JWT", credsFile)
	}
	if claims.Expires == 0 {
		return time.Time{}, nil
	}
	return time.Unix(claims.Expires, 0).UTC(), nil
}

// ExplainConnectError turns a failed connect (or a connection the server
// closed) made with credsFile into an ExpiredError when the creds have
// expired: the server only says "Authorization Violation" to a connect
// with expired creds, and "User Authentication Expired" to a connection
// whose creds expire while it is open. Any other error, or nil, is
// returned as it is.
func ExplainConnectError(credsFile string, err error) error {
	if err == nil || errors.Is(err, ErrCredsExpired) {
		return err
	}
	expires, rerr := CredsExpiry(credsFile)
	if rerr != nil || expires.IsZero() || time.Now().Before(expires) {
		return err
	}
	id, _ := ReadIdentity(credsFile) // read once already by CredsExpiry
	return &ExpiredError{CredsFile: credsFile, Name: id.Name, Tenant: id.Tenant, Role: id.Role, ExpiredAt: expires, Cause: err}
}

// PrincipalSource is what ObserveCredentialMaxAge reads: a data dir
// (Directory, Store) or the identities published over NATS (Remote).
type PrincipalSource interface {
	Tenants() ([]Tenant, error)
	Principals(tenant string) ([]Principal, error)
}

var (
	_ PrincipalSource = (*Directory)(nil)
	_ PrincipalSource = (*Remote)(nil)
)

// ObserveCredentialMaxAge is the start gate's observation of
// security.CredentialMaxAge: On when every tenant's principals whose keys
// are live hold creds that expire, and no later than now+maxAge (creds
// minted under a lifetime of maxAge or less). What it reads is each
// principal's record, which the command that minted the creds wrote with
// the JWT's exp: in the data dir, or as published over NATS, signed by the
// operator (PublishIdentities), so an orchestrator without a data dir sees
// the same. It covers creds minted by equilateral; creds someone signed
// with a tenant's role keys by other means are not on record. Revoked
// principals are skipped: the server refuses their key whatever its age.
func ObserveCredentialMaxAge(src PrincipalSource, maxAge time.Duration, now time.Time) security.Observation {
	if maxAge <= 0 {
		return security.Observation{Detail: "no credential maximum age is set"}
	}
	tenants, err := src.Tenants()
	if err != nil {
		return security.Observation{Detail: fmt.Sprintf("could not list tenants: %v", err)}
	}
	limit := now.Add(maxAge)
	var never, late []string
	checked := 0
	for _, t := range tenants {
		principals, err := src.Principals(t.Name)
		if err != nil {
			return security.Observation{Detail: fmt.Sprintf("could not read the principals of tenant %s: %v", t.Name, err)}
		}
		for _, p := range principals {
			if p.Revoked() {
				continue
			}
			checked++
			switch {
			case p.ExpiresAt == nil:
				never = append(never, t.Name+"/"+p.Name)
			case p.ExpiresAt.After(limit):
				late = append(late, fmt.Sprintf("%s/%s (%s)", t.Name, p.Name, p.ExpiresAt.UTC().Format(time.RFC3339)))
			}
		}
	}
	if len(never) == 0 && len(late) == 0 {
		return security.Observation{On: true,
			Detail: fmt.Sprintf("the creds of all %d live principals expire within %s", checked, maxAge)}
	}
	var parts []string
	if len(never) > 0 {
		parts = append(parts, "creds that never expire: "+strings.Join(never, ", "))
	}
	if len(late) > 0 {
		parts = append(parts, fmt.Sprintf("creds valid beyond %s: %s", maxAge, strings.Join(late, ", ")))
	}
	return security.Observation{Detail: strings.Join(parts, "; ") +
		" (rotate each with `equilateral agent rotate NAME` or `client rotate NAME` at this level)"}
}
