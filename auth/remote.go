package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
)

// Remote is what an orchestrator on another host than the admin keys knows
// of identities: the tenants are the creds files in a directory
// (<dir>/<tenant>.creds, or <dir>/<tenant>/orchestrator.creds as in a data
// dir's creds/, each that tenant's orchestrator user's), and each
// tenant's principals are the records published into its IdentitiesBucket,
// trusted by the operator's keys alone (PublishIdentities,
// ReadIdentityRecord). It watches each tenant's bucket, so a principal
// added, rotated or revoked is seen as soon as it is published; a tenant
// whose creds file appears is served at the next discovery.
type Remote struct {
	url          string
	credsDir     string
	operatorKeys []string
	opts         []nats.Option

	mu      sync.Mutex
	tenants map[string]*remoteTenant
}

// remoteTenant is one tenant's watched records.
type remoteTenant struct {
	nc    *nats.Conn
	stop  context.CancelFunc
	ready chan struct{} // closed once the initial records are read

	mu         sync.RWMutex
	principals map[string]Principal
	security   *SecurityRecord // nil until a signed one is read
}

// remoteReadyWait bounds the wait for a bucket's initial records.
const remoteReadyWait = 10 * time.Second

// OpenRemote prepares the view for the NATS servers at url (a list
// separated by commas), the tenants' orchestrator creds in credsDir and
// the operator JWT (public). opts are added to every connection (a TLS
// CA). Close ends its watches.
func OpenRemote(url, credsDir string, operatorJWT []byte, opts ...nats.Option) (*Remote, error) {
	keys, err := OperatorKeys(operatorJWT)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(credsDir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("auth: creds dir %s: not a directory", credsDir)
	}
	return &Remote{url: url, credsDir: credsDir, operatorKeys: keys, opts: opts, tenants: map[string]*remoteTenant{}}, nil
}

// DefaultCredsFile is the creds of a tenant's orchestrator user: the only
// creds the view holds, whatever name is asked for.
func (r *Remote) DefaultCredsFile(tenant, _ string) string {
	flat := filepath.Join(r.credsDir, tenant+".creds")
	if _, err := os.Stat(flat); err == nil {
		return flat
	}
	return filepath.Join(r.credsDir, tenant, OrchestratorName+".creds")
}

// Tenants lists the tenants whose orchestrator creds are in the creds
// dir; watches of tenants whose creds are gone end.
func (r *Remote) Tenants() ([]Tenant, error) {
	entries, err := os.ReadDir(r.credsDir)
	if err != nil {
		return nil, fmt.Errorf("auth: creds dir: %w", err)
	}
	var out []Tenant
	seen := map[string]bool{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".creds")
		if e.IsDir() {
			name, ok = e.Name(), true
		}
		if !ok || seen[name] || protocol.ValidateName("tenant", name) != nil {
			continue
		}
		id, err := ReadIdentity(r.DefaultCredsFile(name, OrchestratorName))
		if err != nil || id.Role != RoleOrchestrator || (id.Tenant != "" && id.Tenant != name) {
			continue // not a tenant's orchestrator creds
		}
		seen[name] = true
		out = append(out, Tenant{Name: name, AccountKey: id.AccountKey, Limits: Limits{JetStream: true}})
	}
	r.mu.Lock()
	for name, t := range r.tenants {
		if !seen[name] {
			t.close()
			delete(r.tenants, name)
		}
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Principals lists a tenant's principals as published, revoked ones
// included.
func (r *Remote) Principals(tenant string) ([]Principal, error) {
	t, err := r.tenant(tenant)
	if err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Principal, 0, len(t.principals))
	for _, p := range t.principals {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Principal returns one principal of a tenant as published.
func (r *Remote) Principal(tenant, name string) (Principal, error) {
	t, err := r.tenant(tenant)
	if err != nil {
		return Principal{}, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok := t.principals[name]
	if !ok {
		return Principal{}, fmt.Errorf("%w: %s in tenant %s", ErrUnknownAgent, name, tenant)
	}
	return p, nil
}

// KeyOwner names the principal of tenant whose current, unrevoked key is
// keyID.
func (r *Remote) KeyOwner(tenant, keyID string) (string, bool) {
	t, err := r.tenant(tenant)
	if err != nil {
		return "", false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, p := range t.principals {
		if p.PublicKey == keyID && !p.Revoked() {
			return p.Name, true
		}
	}
	return "", false
}

// Close ends every watch.
func (r *Remote) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, t := range r.tenants {
		t.close()
		delete(r.tenants, name)
	}
}

// tenant returns a tenant's watched records, starting the watch the first
// time.
func (r *Remote) tenant(name string) (*remoteTenant, error) {
	r.mu.Lock()
	t, ok := r.tenants[name]
	if !ok {
		var err error
		if t, err = r.watch(name); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		r.tenants[name] = t
	}
	r.mu.Unlock()
	select {
	case <-t.ready:
		return t, nil
	case <-time.After(remoteReadyWait):
		return nil, fmt.Errorf("auth: the identities of tenant %s were not read in %s", name, remoteReadyWait)
	}
}

func (r *Remote) watch(tenant string) (*remoteTenant, error) {
	opts := append([]nats.Option{
		nats.UserCredentials(r.DefaultCredsFile(tenant, OrchestratorName)),
		nats.Name("equilateral-identities/" + tenant),
		nats.CustomInboxPrefix(protocol.InboxPrefix(OrchestratorName)),
		nats.MaxReconnects(-1),
	}, r.opts...)
	nc, err := nats.Connect(r.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("auth: connect as tenant %s's orchestrator: %w", tenant, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fail := func(err error) (*remoteTenant, error) { cancel(); nc.Close(); return nil, err }
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	kv, err := js.KeyValue(ctx, IdentitiesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fail(fmt.Errorf("auth: the identities of tenant %s are not published (run `equilateral tenant publish %s`)", tenant, tenant))
	}
	if err != nil {
		return fail(fmt.Errorf("auth: identities of tenant %s: %w", tenant, err))
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fail(err)
	}
	t := &remoteTenant{nc: nc, stop: cancel, ready: make(chan struct{}), principals: map[string]Principal{}}
	go t.follow(ctx, w, tenant, r.operatorKeys)
	return t, nil
}

// follow applies the bucket's records as they come: a record that does
// not verify is ignored, so nobody but the operator can add a principal.
func (t *remoteTenant) follow(ctx context.Context, w jetstream.KeyWatcher, tenant string, operatorKeys []string) {
	defer w.Stop()
	readyOnce := sync.OnceFunc(func() { close(t.ready) })
	for {
		select {
		case <-ctx.Done():
			return
		case entry, ok := <-w.Updates():
			if !ok {
				return
			}
			if entry == nil {
				readyOnce() // the initial records are all in
				continue
			}
			if entry.Key() == identitySecurityKey {
				t.mu.Lock()
				if rec, err := ReadSecurityRecord(entry.Value(), operatorKeys, tenant); err == nil && entry.Operation() == jetstream.KeyValuePut {
					t.security = &rec
				} else {
					t.security = nil
				}
				t.mu.Unlock()
				continue
			}
			name := IdentityRecordName(entry.Key())
			if name == "" {
				continue
			}
			t.mu.Lock()
			if entry.Operation() != jetstream.KeyValuePut {
				delete(t.principals, name)
			} else if p, err := ReadIdentityRecord(entry.Value(), operatorKeys, tenant); err == nil && p.Name == name {
				t.principals[name] = p
			}
			t.mu.Unlock()
		}
	}
}

func (t *remoteTenant) close() {
	t.stop()
	t.nc.Close()
}
