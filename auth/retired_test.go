package auth_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/equilateral-agents/equilateral/internal/natstest"
)

// Rotation keeps every replaced key in the record, oldest first, so old
// signatures can be checked; a key revoked before the rotation retired
// when it was revoked.
func TestRotationKeepsRetiredKeys(t *testing.T) {
	ctx := context.Background()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	env.Agent(t, "acme", "coder", "code")

	created, err := env.Store.Principal("acme", "coder")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(created)
	if strings.Contains(string(raw), "retired_keys") {
		t.Fatalf("a principal never rotated has retired keys in JSON: %s", raw)
	}

	first, err := env.Store.Rotate(ctx, "acme", "coder", "", env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := env.Store.Revoke(ctx, "acme", "coder", env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	second, err := env.Store.Rotate(ctx, "acme", "coder", "", env.Publisher)
	if err != nil {
		t.Fatal(err)
	}
	if second.Revoked() {
		t.Fatal("a rotated principal is still revoked")
	}
	stored, err := env.Store.Principal("acme", "coder")
	if err != nil {
		t.Fatal(err)
	}
	retired := stored.RetiredKeys
	if len(retired) != 2 || retired[0].PublicKey != created.PublicKey || retired[1].PublicKey != first.PublicKey {
		t.Fatalf("retired keys %+v; want %s then %s", retired, created.PublicKey, first.PublicKey)
	}
	if retired[0].RetiredAt.Before(created.CreatedAt) || retired[1].RetiredAt.Before(retired[0].RetiredAt) {
		t.Fatalf("retirement times out of order: %+v", retired)
	}
	if !retired[1].RetiredAt.Equal(*revoked.RevokedAt) {
		t.Fatalf("a revoked key retired at %v, want its revocation %v", retired[1].RetiredAt, *revoked.RevokedAt)
	}
	for _, k := range retired {
		if k.PublicKey == stored.PublicKey {
			t.Fatal("the current key is listed as retired")
		}
	}
}
