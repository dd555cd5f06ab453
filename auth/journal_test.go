package auth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/equilateral-agents/equilateral/auth"
)

// journalStore is a data dir with tenant acme and clients a and b; changes
// go to the resolver directory (no server needed to journal them).
func journalStore(t *testing.T) (*auth.Store, auth.Publisher, string) {
	t.Helper()
	ctx := context.Background()
	store, err := auth.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := auth.NewResolverDirPublisher(store.ResolverDir())
	if _, err := store.CreateTenant(ctx, "acme", auth.DefaultLimits(), pub); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := store.CreatePrincipal(ctx, auth.PrincipalSpec{Tenant: "acme", Name: name, Role: auth.RoleClient}); err != nil {
			t.Fatal(err)
		}
	}
	return store, pub, filepath.Join(store.Dir(), "keys.journal")
}

// Revoke, Rotate and DeleteTenant each journal what they changed, and a
// reader sees exactly those changes after its position.
func TestKeyJournalRecordsEveryChangeThatTakesTrustAway(t *testing.T) {
	ctx := context.Background()
	store, pub, _ := journalStore(t)
	j := store.KeyJournal()
	start, err := j.End()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rotate(ctx, "acme", "a", "", pub); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Revoke(ctx, "acme", "b", pub); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteTenant(ctx, "acme", pub); err != nil {
		t.Fatal(err)
	}
	end, err := j.End()
	if err != nil || end == start {
		t.Fatalf("the journal did not move: %v", err)
	}
	changes, next, err := j.ReadFrom(start)
	if err != nil {
		t.Fatal(err)
	}
	want := []auth.KeyChange{{Tenant: "acme", Name: "a"}, {Tenant: "acme", Name: "b"}, {Tenant: "acme"}}
	if !reflect.DeepEqual(changes, want) || next != end {
		t.Fatalf("changes %+v (at end %v), want %+v", changes, next == end, want)
	}
	if again, _, err := j.ReadFrom(next); err != nil || len(again) != 0 {
		t.Fatalf("read again from the end: %+v, %v", again, err)
	}
}

// A line still being written is left for later; a replaced, truncated or
// foreign journal asks the reader to reload everything.
func TestKeyJournalPartialAndForeignLines(t *testing.T) {
	store, _, path := journalStore(t)
	j := store.KeyJournal()
	start, err := j.End()
	if err != nil {
		t.Fatal(err)
	}
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	appendTo("acme/a\nacme/")
	changes, pos, err := j.ReadFrom(start)
	if err != nil || !reflect.DeepEqual(changes, []auth.KeyChange{{Tenant: "acme", Name: "a"}}) {
		t.Fatalf("complete line: %+v, %v", changes, err)
	}
	if end, _ := j.End(); end == pos {
		t.Fatal("a half-written line counted as read")
	}
	appendTo("b\n")
	if changes, pos, err = j.ReadFrom(pos); err != nil || !reflect.DeepEqual(changes, []auth.KeyChange{{Tenant: "acme", Name: "b"}}) {
		t.Fatalf("the line once complete: %+v, %v", changes, err)
	}

	appendTo("ACME/../x\n")
	if _, _, err := j.ReadFrom(pos); !errors.Is(err, auth.ErrJournalReset) {
		t.Fatalf("foreign line: %v, want ErrJournalReset", err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.ReadFrom(pos); !errors.Is(err, auth.ErrJournalReset) {
		t.Fatalf("truncated journal: %v, want ErrJournalReset", err)
	}
	fresh, err := j.End()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("acme/a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.ReadFrom(fresh); !errors.Is(err, auth.ErrJournalReset) {
		t.Fatalf("replaced journal: %v, want ErrJournalReset", err)
	}
}

// A data dir from before the journal: the reader starts without one, and
// every line of a journal that appears later is news.
func TestKeyJournalAppearsLater(t *testing.T) {
	ctx := context.Background()
	store, pub, path := journalStore(t)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(store.Dir(), 0o500); err != nil { // the reader may not create it
		t.Fatal(err)
	}
	j := store.KeyJournal()
	start, err := j.End()
	os.Chmod(store.Dir(), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// root creates it regardless; the rest of the test still holds.
		t.Log("running as root: the reader created the journal")
	}
	if _, err := store.Revoke(ctx, "acme", "a", pub); err != nil {
		t.Fatal(err)
	}
	changes, _, err := j.ReadFrom(start)
	if err != nil || !reflect.DeepEqual(changes, []auth.KeyChange{{Tenant: "acme", Name: "a"}}) {
		t.Fatalf("journal that appeared later: %+v, %v", changes, err)
	}
}
