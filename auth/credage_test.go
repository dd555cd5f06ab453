package auth_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/security"
)

// writeSettings writes the data dir's security settings: the level, and
// the credential maximum age (0: the default) that applies from advanced.
func writeSettings(t *testing.T, env *natstest.Env, level security.Level, maxAge time.Duration) {
	t.Helper()
	settings := security.Settings{Level: level, Environment: security.Development, MaxCredentialAge: security.Duration(maxAge)}
	if err := security.WriteSettings(env.Store.Dir(), settings); err != nil {
		t.Fatal(err)
	}
}

// userClaims reads the user JWT of a creds file.
func userClaims(t *testing.T, credsFile string) *jwt.UserClaims {
	t.Helper()
	raw, err := os.ReadFile(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.ParseDecoratedJWT(raw)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestCredentialExpiry: creds minted at a level with a credential maximum
// age are refused by the server once it has passed (the connection open
// with them is closed, a new connect refused), the error we show says so
// and names the command that renews them, another principal of the tenant
// whose creds are still valid connects, and rotate brings the expired one
// back.
func TestCredentialExpiry(t *testing.T) {
	env := natstest.Start(t)
	env.Tenant(t, "acme") // at the default level: the orchestrator's creds never expire
	writeSettings(t, env, security.Advanced, 2*time.Second)
	shortLived := env.Agent(t, "acme", planner, "plan")
	writeSettings(t, env, security.Advanced, time.Hour)
	longLived := env.Client(t, "acme", client)

	claims := userClaims(t, shortLived)
	if claims.Expires == 0 || claims.Expires-claims.IssuedAt > 2 {
		t.Fatalf("planner's JWT: exp %d, iat %d; want at most 2s after issue", claims.Expires, claims.IssuedAt)
	}
	expiredConn := make(chan error, 1)
	live := env.Connect(t, shortLived, planner, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case expiredConn <- err:
		default:
		}
	}))
	flush(t, live)

	// The server closes the open connection at expiry, with its own error.
	select {
	case err := <-expiredConn:
		if !errors.Is(err, nats.ErrAuthExpired) {
			t.Fatalf("the open connection got %v, want %v", err, nats.ErrAuthExpired)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection with expired creds is still open after 10s")
	}

	// A new connect is refused: in the second of the expiry the server
	// accepts the JWT and expires the connection at once ("User
	// Authentication Expired"), after it says only "Authorization
	// Violation"; the explanation adds why and what to do to either.
	var refused error
	natstest.Eventually(t, 5*time.Second, func() bool {
		nc, err := env.Dial(shortLived, planner)
		if err == nil {
			nc.Close()
			return false
		}
		refused = err
		return true
	}, "expired creds still connect")
	// (nats.go makes the second a protocol error that is not ErrAuthExpired.)
	if !errors.Is(refused, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(refused.Error()), "authentication expired") {
		t.Fatalf("connect with expired creds: %v, want an authorization violation or authentication expired", refused)
	}
	for _, serverSaid := range []error{refused, nats.ErrAuthorization, nats.ErrAuthExpired} {
		explained := auth.ExplainConnectError(shortLived, serverSaid)
		var expired *auth.ExpiredError
		if !errors.As(explained, &expired) || !errors.Is(explained, auth.ErrCredsExpired) || !errors.Is(explained, serverSaid) {
			t.Fatalf("explained %v: %v", serverSaid, explained)
		}
		for _, want := range []string{"agent planner in tenant acme", "expired at", "equilateral agent rotate planner --tenant acme", serverSaid.Error()} {
			if !strings.Contains(explained.Error(), want) {
				t.Errorf("the message %q does not say %q", explained, want)
			}
		}
	}

	// Valid creds of the same tenant still connect, and their refusals for
	// other reasons are not called an expiry.
	other := env.Connect(t, longLived, client)
	flush(t, other)
	if err := auth.ExplainConnectError(longLived, nats.ErrAuthorization); errors.Is(err, auth.ErrCredsExpired) {
		t.Errorf("valid creds explained as expired: %v", err)
	}

	// Rotation renews: new creds, a new expiry, and they connect.
	p, err := env.Store.Rotate(context.Background(), "acme", planner, "", env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	renewed := userClaims(t, shortLived)
	if p.ExpiresAt == nil || renewed.Expires != p.ExpiresAt.Unix() || renewed.Expires <= time.Now().Add(59*time.Minute).Unix() {
		t.Fatalf("after rotate: record expires %v, JWT exp %d; want about an hour from now", p.ExpiresAt, renewed.Expires)
	}
	flush(t, env.Connect(t, shortLived, planner))
}

// TestCredentialExpiryFollowsLevel: below advanced no user JWT expires;
// at advanced every principal's does (the tenant's orchestrator user
// included), at the settings' maximum age or the default 30 days, and the
// principal's record (in the data dir and as published) holds the same
// expiry. Rotate gives a new expiry counted from the rotation.
func TestCredentialExpiryFollowsLevel(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()

	writeSettings(t, env, security.Enhanced, time.Hour) // the age is ignored below advanced
	env.Tenant(t, "plain")
	for name, creds := range map[string]string{
		planner:      env.Agent(t, "plain", planner, "plan"),
		client:       env.Client(t, "plain", client),
		orchestrator: env.OrchestratorCreds("plain"),
	} {
		if exp := userClaims(t, creds).Expires; exp != 0 {
			t.Errorf("enhanced: %s's JWT expires (%d)", name, exp)
		}
		if p, err := env.Store.Principal("plain", name); err != nil || p.ExpiresAt != nil {
			t.Errorf("enhanced: %s's record expires at %v (%v)", name, p.ExpiresAt, err)
		}
	}

	writeSettings(t, env, security.Advanced, 0) // the default maximum age
	env.Tenant(t, "acme")
	creds := map[string]string{
		planner:      env.Agent(t, "acme", planner, "plan"),
		client:       env.Client(t, "acme", client),
		orchestrator: env.OrchestratorCreds("acme"),
	}
	for name, file := range creds {
		c := userClaims(t, file)
		if life := time.Duration(c.Expires-c.IssuedAt) * time.Second; life < security.DefaultMaxCredentialAge-time.Second || life > security.DefaultMaxCredentialAge {
			t.Errorf("advanced: %s's JWT lives %v, want %v", name, life, security.DefaultMaxCredentialAge)
		}
		p, err := env.Store.Principal("acme", name)
		if err != nil || p.ExpiresAt == nil || p.ExpiresAt.Unix() != c.Expires {
			t.Errorf("advanced: %s's record expires at %v, the JWT at %d (%v)", name, p.ExpiresAt, c.Expires, err)
		}
	}

	// The published record carries the expiry too.
	records, err := env.Store.IdentityRecords("acme")
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := auth.OperatorKeys(env.OperatorJWT(t))
	if err != nil {
		t.Fatal(err)
	}
	published, err := auth.ReadIdentityRecord(records["principal."+planner], trusted, "acme")
	if err != nil || published.ExpiresAt == nil || published.ExpiresAt.Unix() != userClaims(t, creds[planner]).Expires {
		t.Fatalf("published record of planner expires at %v (%v)", published.ExpiresAt, err)
	}

	// Rotate counts from now, under the settings of now.
	before := userClaims(t, creds[planner]).Expires
	writeSettings(t, env, security.Advanced, 90*24*time.Hour)
	p, err := env.Store.Rotate(ctx, "acme", planner, "", env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	after := userClaims(t, creds[planner])
	if after.Expires <= before || after.Expires-after.IssuedAt > int64((90*24*time.Hour).Seconds()) ||
		after.Expires-after.IssuedAt < int64((90*24*time.Hour).Seconds())-1 || p.ExpiresAt == nil || p.ExpiresAt.Unix() != after.Expires {
		t.Fatalf("rotated: exp %d (was %d), iat %d, record %v", after.Expires, before, after.IssuedAt, p.ExpiresAt)
	}
	flush(t, env.Connect(t, creds[planner], planner))

	// A corrupt settings file stops minting rather than minting creds that never expire.
	if err := os.WriteFile(security.SettingsFile(env.Store.Dir()), []byte(`{"level":"advanced","environment":"production","max_age":"1h"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: "late", Role: auth.RoleClient}); err == nil || !strings.Contains(err.Error(), "security settings") {
		t.Fatalf("create with corrupt settings: %v", err)
	}
	if _, err := os.Stat(env.Store.DefaultCredsFile("acme", "late")); err == nil {
		t.Error("creds minted despite unreadable settings")
	}
}

// TestObserveCredentialMaxAge: the start gate's observation is on only
// when every live principal's creds expire within the maximum age, names
// those that do not, skips revoked ones, and reads the same from the data
// dir and from the identities published over NATS.
func TestObserveCredentialMaxAge(t *testing.T) {
	env := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writeSettings(t, env, security.Advanced, 24*time.Hour)
	env.Tenant(t, "acme")
	env.Agent(t, "acme", planner, "plan")
	env.Client(t, "acme", client)

	if o := auth.ObserveCredentialMaxAge(env.Store, 24*time.Hour, time.Now()); !o.On || !strings.Contains(o.Detail, "all 3 live principals") {
		t.Fatalf("all within a day: %+v", o)
	}
	// A maximum age below the lifetime they were minted with: too long-lived.
	if o := auth.ObserveCredentialMaxAge(env.Store, time.Hour, time.Now()); o.On || !strings.Contains(o.Detail, "acme/planner") || !strings.Contains(o.Detail, "beyond 1h0m0s") {
		t.Fatalf("max age 1h: %+v", o)
	}
	if o := auth.ObserveCredentialMaxAge(env.Store, 0, time.Now()); o.On {
		t.Fatalf("no max age: %+v", o)
	}

	// A principal minted before the level rose never expires: named.
	writeSettings(t, env, security.Enhanced, 0)
	env.Agent(t, "acme", coder, "code")
	o := auth.ObserveCredentialMaxAge(env.Store, 24*time.Hour, time.Now())
	if o.On || !strings.Contains(o.Detail, "never expire: acme/coder") || strings.Contains(o.Detail, "acme/planner") || !strings.Contains(o.Detail, "rotate") {
		t.Fatalf("coder without expiry: %+v", o)
	}

	// Over NATS, from the records the operator signed: the same answer.
	js, err := jetstream.New(env.Connect(t, env.OrchestratorCreds("acme"), orchestrator))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Store.PublishIdentities(ctx, js, "acme", 1); err != nil {
		t.Fatal(err)
	}
	remote := env.OpenRemote(t, "acme")
	if o := auth.ObserveCredentialMaxAge(remote, 24*time.Hour, time.Now()); o.On || !strings.Contains(o.Detail, "never expire: acme/coder") {
		t.Fatalf("remote, coder without expiry: %+v", o)
	}

	// Revoking coder (or rotating it at advanced) turns the control on.
	if _, err := env.Store.Revoke(ctx, "acme", coder, env.Publisher); err != nil {
		t.Fatal(err)
	}
	if o := auth.ObserveCredentialMaxAge(env.Store, 24*time.Hour, time.Now()); !o.On {
		t.Fatalf("coder revoked: %+v", o)
	}
	if err := env.Store.PublishIdentities(ctx, js, "acme", 1); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool {
		return auth.ObserveCredentialMaxAge(remote, 24*time.Hour, time.Now()).On
	}, "the remote view never saw coder revoked: %+v", auth.ObserveCredentialMaxAge(remote, 24*time.Hour, time.Now()))
}
