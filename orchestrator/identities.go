package orchestrator

import (
	"github.com/equilateral-agents/equilateral/auth"
	"github.com/equilateral-agents/equilateral/bus"
)

// Identities is what the orchestrator reads from a data dir: the tenants
// to serve, their principals (who is an agent, which capabilities exist),
// where each tenant's orchestrator creds are, and, through
// bus.IdentitySource, the keys events are verified with.
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
	bus.IdentitySource
}

// Both the read-only view and the full store serve.
var (
	_ Identities = (*auth.Directory)(nil)
	_ Identities = (*auth.Store)(nil)
)
