package auth_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/equilateral-agents/equilateral/auth"
)

// directoryStore is a data dir with tenants acme and globex, an agent and
// a revoked client in acme and a client in globex. Changes go to the
// resolver directory: no server is needed.
func directoryStore(t *testing.T) (*auth.Store, auth.Publisher) {
	t.Helper()
	ctx := context.Background()
	store, err := auth.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := auth.NewResolverDirPublisher(store.ResolverDir())
	for _, tenant := range []string{"acme", "globex"} {
		if _, err := store.CreateTenant(ctx, tenant, auth.DefaultLimits(), pub); err != nil {
			t.Fatal(err)
		}
	}
	_, err = store.CreatePrincipals(ctx, []auth.PrincipalSpec{
		{Tenant: "acme", Name: "coder", Role: auth.RoleAgent, Capabilities: []string{"code"}},
		{Tenant: "acme", Name: "web", Role: auth.RoleClient},
		{Tenant: "globex", Name: "web", Role: auth.RoleClient},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Revoke(ctx, "acme", "web", pub); err != nil {
		t.Fatal(err)
	}
	return store, pub
}

// seedFiles lists every seed of the data dir (the .nk files: the
// operator's two, the system account's signing key, each tenant's role
// keys) and checks that the count is what the layout says.
func seedFiles(t *testing.T, dir string, tenants int) []string {
	t.Helper()
	var seeds []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".nk") {
			seeds = append(seeds, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 + tenants*len(auth.Roles); len(seeds) != want {
		t.Fatalf("found %d seed files, want %d: is the layout what this test thinks? %v", len(seeds), want, seeds)
	}
	return seeds
}

// lockAwaySeeds makes every seed of the data dir unreadable: mode 000, and
// removed as well where that does not stop reads (as root).
func lockAwaySeeds(t *testing.T, dir string, tenants int) {
	t.Helper()
	for _, seed := range seedFiles(t, dir, tenants) {
		if err := os.Chmod(seed, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile(seed); err == nil {
			if err := os.Remove(seed); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.ReadFile(seed); err == nil {
			t.Fatalf("%s is still readable", seed)
		}
	}
}

// With every seed of the data dir unreadable, Open fails and OpenReadOnly
// sees the same tenants, principals (revoked ones too), creds paths and
// operator as the full Store did.
func TestOpenReadOnlyWithoutSeeds(t *testing.T) {
	store, _ := directoryStore(t)
	dir := store.Dir()
	wantTenants, err := store.Tenants()
	if err != nil {
		t.Fatal(err)
	}
	wantPrincipals := map[string][]auth.Principal{}
	for _, tenant := range wantTenants {
		if wantPrincipals[tenant.Name], err = store.Principals(tenant.Name); err != nil {
			t.Fatal(err)
		}
	}
	lockAwaySeeds(t, dir, len(wantTenants))

	if _, err := auth.Open(dir); !errors.Is(err, auth.ErrNoSigningKey) {
		t.Fatalf("Open without seeds: %v, want ErrNoSigningKey", err)
	}
	d, err := auth.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("OpenReadOnly without seeds: %v", err)
	}
	tenants, err := d.Tenants()
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 2 || !reflect.DeepEqual(tenants, wantTenants) {
		t.Fatalf("tenants: %+v, want %+v", tenants, wantTenants)
	}
	for _, tenant := range tenants {
		principals, err := d.Principals(tenant.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(principals, wantPrincipals[tenant.Name]) {
			t.Errorf("principals of %s: %+v, want %+v", tenant.Name, principals, wantPrincipals[tenant.Name])
		}
	}
	if p, err := d.Principal("acme", "web"); err != nil || !p.Revoked() {
		t.Errorf("revoked client: revoked=%v, %v", p.Revoked(), err)
	}
	creds := d.DefaultCredsFile("acme", auth.OrchestratorName)
	if creds != store.DefaultCredsFile("acme", auth.OrchestratorName) {
		t.Errorf("orchestrator creds: %s, the Store says %s", creds, store.DefaultCredsFile("acme", auth.OrchestratorName))
	}
	if id, err := auth.ReadIdentity(creds); err != nil || id.Tenant != "acme" || id.Role != auth.RoleOrchestrator {
		t.Errorf("orchestrator creds at %s: %+v, %v", creds, id, err)
	}
	if d.OperatorPublicKey() != store.OperatorPublicKey() || d.Dir() != dir {
		t.Errorf("operator %s in %s, want %s in %s", d.OperatorPublicKey(), d.Dir(), store.OperatorPublicKey(), dir)
	}
	if _, err := d.KeyJournal().End(); err != nil {
		t.Errorf("key journal: %v", err)
	}
}

// A Directory opened before a change sees it on its next call: a tenant
// and a principal created, the principal revoked (and journalled), the
// tenant deleted.
func TestDirectorySeesChangesAtOnce(t *testing.T) {
	ctx := context.Background()
	store, err := auth.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := auth.NewResolverDirPublisher(store.ResolverDir())
	d, err := auth.OpenReadOnly(store.Dir())
	if err != nil {
		t.Fatal(err)
	}
	journal := d.KeyJournal()
	from, err := journal.End()
	if err != nil {
		t.Fatal(err)
	}
	if tenants, err := d.Tenants(); err != nil || len(tenants) != 0 {
		t.Fatalf("tenants of a fresh data dir: %+v, %v", tenants, err)
	}

	if _, err := store.CreateTenant(ctx, "acme", auth.DefaultLimits(), pub); err != nil {
		t.Fatal(err)
	}
	created, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: "coder", Role: auth.RoleAgent, Capabilities: []string{"code"}})
	if err != nil {
		t.Fatal(err)
	}
	if tenants, err := d.Tenants(); err != nil || len(tenants) != 1 || tenants[0].Name != "acme" {
		t.Fatalf("tenants after a create: %+v, %v", tenants, err)
	}
	p, err := d.Principal("acme", "coder")
	if err != nil || p.PublicKey != created.PublicKey || p.Revoked() {
		t.Fatalf("principal after its create: %+v, %v", p, err)
	}

	if _, err := store.Revoke(ctx, "acme", "coder", pub); err != nil {
		t.Fatal(err)
	}
	if p, err := d.Principal("acme", "coder"); err != nil || !p.Revoked() {
		t.Fatalf("principal after its revocation: revoked=%v, %v", p.Revoked(), err)
	}
	changes, _, err := journal.ReadFrom(from)
	if err != nil || !reflect.DeepEqual(changes, []auth.KeyChange{{Tenant: "acme", Name: "coder"}}) {
		t.Fatalf("journal after the revocation: %+v, %v", changes, err)
	}

	if err := store.DeleteTenant(ctx, "acme", pub); err != nil {
		t.Fatal(err)
	}
	if tenants, err := d.Tenants(); err != nil || len(tenants) != 0 {
		t.Fatalf("tenants after the delete: %+v, %v", tenants, err)
	}
	if _, err := d.Principals("acme"); !errors.Is(err, auth.ErrUnknownTenant) {
		t.Fatalf("principals of a deleted tenant: %v, want ErrUnknownTenant", err)
	}
}

// Even where the seeds are readable, OpenReadOnly and every method of a
// Directory leave them unopened (inotify would see an open); Open, the
// control, opens the signing key.
func TestDirectoryNeverOpensASeed(t *testing.T) {
	store, _ := directoryStore(t)
	dir := store.Dir()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("no inotify here: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	watched := map[int32]string{}
	for _, seed := range seedFiles(t, dir, 2) {
		wd, err := unix.InotifyAddWatch(fd, seed, unix.IN_OPEN|unix.IN_ACCESS)
		if err != nil {
			t.Fatal(err)
		}
		watched[int32(wd)] = seed
	}

	d, err := auth.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Dir":               func() error { d.Dir(); return nil },
		"OperatorPublicKey": func() error { d.OperatorPublicKey(); return nil },
		"DefaultCredsFile":  func() error { d.DefaultCredsFile("acme", "coder"); return nil },
		"Tenant":            func() error { _, err := d.Tenant("acme"); return err },
		"Tenants":           func() error { _, err := d.Tenants(); return err },
		"Principal":         func() error { _, err := d.Principal("acme", "coder"); return err },
		"Principals":        func() error { _, err := d.Principals("acme"); return err },
		"SecurityRecord":    func() error { _, err := d.SecurityRecord(); return err },
		"ServerConfigFiles": func() error { d.ServerConfigFiles(); return nil },
		"KeyJournal": func() error {
			j := d.KeyJournal()
			_, _, err := j.ReadFrom(auth.JournalPosition{})
			return err
		},
	}
	// Every method is called, so one added later is watched too.
	typ := reflect.TypeFor[*auth.Directory]()
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		call, ok := calls[name]
		if !ok {
			t.Errorf("Directory.%s is not called under the watch: add it to this test", name)
			continue
		}
		if err := call(); err != nil {
			t.Errorf("Directory.%s: %v", name, err)
		}
	}
	if opened := seedEvents(t, fd, watched); len(opened) > 0 {
		t.Fatalf("the read-only view opened seeds: %v", opened)
	}

	if _, err := auth.Open(dir); err != nil {
		t.Fatal(err)
	}
	signing := filepath.Join(dir, "operator", "signing.nk")
	if opened := seedEvents(t, fd, watched); !strings.Contains(strings.Join(opened, " "), signing) {
		t.Fatalf("control: Open's read of %s was not seen (events: %v)", signing, opened)
	}
}

// seedEvents drains the inotify queue: the watched files opened or read
// since the last call.
func seedEvents(t *testing.T, fd int, watched map[int32]string) []string {
	t.Helper()
	var opened []string
	buf := make([]byte, 64*1024)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return opened
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			if mask&(unix.IN_OPEN|unix.IN_ACCESS) != 0 {
				opened = append(opened, watched[wd])
			}
			off += unix.SizeofInotifyEvent + nameLen
		}
	}
}

// Open without the operator signing key fails and says so; OpenReadOnly
// still works. Neither mistakes an empty directory for a data dir.
func TestOpenWithoutSigningKey(t *testing.T) {
	store, err := auth.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	signing := filepath.Join(store.Dir(), "operator", "signing.nk")
	if err := os.Remove(signing); err != nil {
		t.Fatal(err)
	}
	_, err = auth.Open(store.Dir())
	if !errors.Is(err, auth.ErrNoSigningKey) || !strings.Contains(err.Error(), signing) {
		t.Fatalf("Open without the signing key: %v, want ErrNoSigningKey naming %s", err, signing)
	}
	if _, err := auth.OpenReadOnly(store.Dir()); err != nil {
		t.Fatalf("OpenReadOnly without the signing key: %v", err)
	}
	if _, err := auth.OpenReadOnly(t.TempDir()); !errors.Is(err, auth.ErrNoDataDir) {
		t.Fatalf("OpenReadOnly of an empty dir: %v, want ErrNoDataDir", err)
	}
}
