package orchestrator

import (
	"sync"
	"time"

	"github.com/equilateral-agents/equilateral/auth"
)

// directory caches a tenant's principals from the data dir: who is an
// agent, which capabilities exist. It reloads at most once a second, so
// agents created while the orchestrator runs are known at once.
type directory struct {
	store  Identities
	tenant string

	mu           sync.Mutex
	loadedAt     time.Time
	roles        map[string]auth.Role
	capabilities map[string]bool
	serving      map[string]bool // "<agent>/<capability>"
}

func newDirectory(store Identities, tenant string) *directory {
	return &directory{store: store, tenant: tenant}
}

func (d *directory) refresh(force bool) {
	if !force && time.Since(d.loadedAt) < time.Second {
		return
	}
	principals, err := d.store.Principals(d.tenant)
	if err != nil {
		return // keep what we had; the tenant may be going away
	}
	roles := map[string]auth.Role{}
	caps := map[string]bool{}
	serving := map[string]bool{}
	for _, p := range principals {
		if p.Revoked() {
			continue
		}
		roles[p.Name] = p.Role
		for _, c := range p.Capabilities {
			caps[c] = true
			serving[p.Name+"/"+c] = true
		}
	}
	d.roles, d.capabilities, d.serving, d.loadedAt = roles, caps, serving, time.Now()
}

// role returns a principal's role.
func (d *directory) role(name string) (auth.Role, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refresh(false)
	r, ok := d.roles[name]
	if !ok {
		d.refresh(true)
		r, ok = d.roles[name]
	}
	return r, ok
}

// hasCapability reports whether some active agent of the tenant serves c.
func (d *directory) hasCapability(c string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refresh(false)
	if !d.capabilities[c] {
		d.refresh(true)
	}
	return d.capabilities[c]
}

// serves reports whether agent holds capability c.
func (d *directory) serves(agent, c string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refresh(false)
	return d.serving[agent+"/"+c]
}
