package bus

import (
	"context"
	"fmt"

	"github.com/equilateral-agents/equilateral/protocol"
)

// KeyOwners says which principal of a tenant holds a key now, kept fresh
// by its own means (auth.Remote follows the identities the operator
// published into each tenant's JetStream).
type KeyOwners interface {
	KeyOwner(tenant, keyID string) (name string, ok bool)
}

// OwnerKeys is a KeyRegistry over KeyOwners: a key is registered to the
// source of the principal that holds it in the claimed source's tenant.
type OwnerKeys struct{ owners KeyOwners }

// NewOwnerKeys returns the registry of owners.
func NewOwnerKeys(owners KeyOwners) *OwnerKeys { return &OwnerKeys{owners: owners} }

// Key implements KeyRegistry.
func (k *OwnerKeys) Key(_ context.Context, keyID, claimedSource string) (Key, error) {
	tenant, _, err := protocol.ParseSource(claimedSource)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrUnknownSigner, err)
	}
	name, ok := k.owners.KeyOwner(tenant, keyID)
	if !ok {
		return Key{}, fmt.Errorf("%w: key %.12s…", ErrUnknownSigner, keyID)
	}
	return NewKey(protocol.Source(tenant, name), keyID)
}
