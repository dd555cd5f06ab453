package auth

import (
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// newUserCreds makes a user key, signs its JWT with signer on behalf of the
// account, and returns a creds file (JWT and seed) as the nats CLI reads it.
// A non-zero expires becomes the JWT's exp: the server refuses the creds
// from then on and closes connections made with them (credage.go).
func newUserCreds(name, accountPub string, signer nkeys.KeyPair, tags []string, perms jwt.UserPermissionLimits, expires time.Time) (creds []byte, userPub string, err error) {
	userKP, seed, err := newKey(nkeys.CreateUser)
	if err != nil {
		return nil, "", err
	}
	userPub = publicKey(userKP)
	uc := jwt.NewUserClaims(userPub)
	uc.Name = name
	uc.IssuerAccount = accountPub
	uc.Tags.Add(tags...)
	// Users signed by a scoped key must carry no permissions or limits of
	// their own (NewUserClaims fills limits with -1): the scope's template
	// is the whole ACL.
	uc.UserPermissionLimits = perms
	if !expires.IsZero() {
		uc.Expires = expires.Unix()
	}
	token, err := uc.Encode(signer)
	if err != nil {
		return nil, "", fmt.Errorf("auth: sign user %s: %w", name, err)
	}
	creds, err = jwt.FormatUserConfig(token, seed)
	if err != nil {
		return nil, "", fmt.Errorf("auth: format creds for %s: %w", name, err)
	}
	return creds, userPub, nil
}
