package auth

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
)

// Identity is who a creds file speaks for, as its user JWT says: the
// name, and the tags this package puts on every principal.
type Identity struct {
	Name         string
	Tenant       string // empty for creds issued elsewhere
	Role         Role
	Capabilities []string
	// UserKey is the public nkey of the user, the signer of its events.
	UserKey string
	// AccountKey is the public key of the issuing account.
	AccountKey string
}

// ReadIdentity reads the user JWT of a creds file. It checks the shape of
// the JWT, not its trust: the server does that at connect time.
func ReadIdentity(credsFile string) (Identity, error) {
	contents, err := os.ReadFile(credsFile)
	if err != nil {
		return Identity{}, fmt.Errorf("auth: read creds: %w", err)
	}
	token, err := jwt.ParseDecoratedJWT(contents)
	if err != nil {
		return Identity{}, fmt.Errorf("auth: %s is not a creds file", credsFile)
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return Identity{}, fmt.Errorf("auth: %s holds no valid user JWT", credsFile)
	}
	id := Identity{Name: claims.Name, UserKey: claims.Subject, AccountKey: claims.IssuerAccount}
	if id.AccountKey == "" {
		id.AccountKey = claims.Issuer
	}
	for _, tag := range claims.Tags {
		key, value, ok := strings.Cut(tag, ":")
		if !ok {
			continue
		}
		switch key {
		case "tenant":
			id.Tenant = value
		case "role":
			id.Role = Role(value)
		case capabilityTag:
			id.Capabilities = append(id.Capabilities, value)
		}
	}
	return id, nil
}
