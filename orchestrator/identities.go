package orchestrator

import (
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
)

// Identities is what the orchestrator reads of identities: the tenants to
// serve, their principals (who is an agent, which capabilities exist) and
// where each tenant's orchestrator creds are. The keys events are verified
// with come from WithKeys, or else from the identities themselves when
// they are a data dir (bus.IdentitySource, read by bus.StoreKeys).
//
// It has nothing that mints, signs or rotates, so the read-only view
// (*auth.Directory, from auth.OpenReadOnly) is enough and the orchestrator
// never needs the operator's or the tenants' signing seeds: the step that
// lets it run on a host without the admin keys. *auth.Store satisfies it
// too. The orchestrator calls its methods from several goroutines at once.
type Identities interface {
	// Tenants lists the tenants to serve; called at every discovery.
	Tenants() ([]auth.Tenant, error)
	// Principals lists a tenant's principals, revoked ones included.
	Principals(tenant string) ([]auth.Principal, error)
	// DefaultCredsFile is the path of a principal's creds; the
	// orchestrator connects each tenant with its own ("orchestrator").
	DefaultCredsFile(tenant, name string) string
}

// The read-only view and the full store serve, keys included; so do the
// identities published over NATS, with their keys given by WithKeys.
var (
	_ Identities         = (*auth.Directory)(nil)
	_ bus.IdentitySource = (*auth.Directory)(nil)
	_ Identities         = (*auth.Store)(nil)
	_ Identities         = (*auth.Remote)(nil)
	_ bus.KeyOwners      = (*auth.Remote)(nil)
)
