package bus

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nkeys"
)

type testPrincipal struct {
	source string
	signer *Signer
}

func newTestPrincipal(t testing.TB, reg *StaticKeys, source string) testPrincipal {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	s, err := NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	if reg != nil {
		if err := reg.Add(source, s.KeyID()); err != nil {
			t.Fatal(err)
		}
	}
	return testPrincipal{source: source, signer: s}
}

func testEvent(source, id string, now time.Time) *event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType("io.equilateral.test.sent.v1")
	e.SetTime(now)
	e.SetSubject("task 1")
	e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	e.SetExtension("causationid", "parent-1")
	if err := e.SetData("application/json", map[string]string{"hello": "wörld"}); err != nil {
		panic(err)
	}
	return &e
}

func TestSignVerifyAndAttacks(t *testing.T) {
	ctx := context.Background()
	reg := NewStaticKeys()
	alice := newTestPrincipal(t, reg, "eq://acme/alice")
	mallory := newTestPrincipal(t, reg, "eq://acme/mallory")
	now := time.Now()
	newVerifier := func() *Verifier { return NewVerifier(reg, WithTenant("acme")) }

	signed := func(p testPrincipal, id string) *event.Event {
		e := testEvent(p.source, id, now)
		if err := p.signer.Sign(e); err != nil {
			t.Fatal(err)
		}
		return e
	}

	// The valid event passes, and only signed extensions come out.
	e := signed(alice, "1")
	e.SetExtension("unsignedextra", "x") // added after signing: not verified
	got, err := newVerifier().Verify(ctx, e)
	if err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	if _, ok := got.Extensions()["unsignedextra"]; ok {
		t.Fatal("an unsigned extension was handed on as verified")
	}
	if got.Extensions()["causationid"] != "parent-1" || got.Extensions()["traceparent"] == nil {
		t.Fatalf("signed extensions missing: %v", got.Extensions())
	}
	if string(got.Data()) != string(e.Data()) {
		t.Fatal("data changed")
	}

	cases := []struct {
		name   string
		event  func() *event.Event
		verify func() *Verifier
		want   error
	}{
		{"tampered data", func() *event.Event {
			e := signed(alice, "2")
			e.DataEncoded = []byte(`{"hello":"mallory"}`)
			return e
		}, newVerifier, ErrBadSignature},
		{"tampered attribute", func() *event.Event {
			e := signed(alice, "3")
			e.SetType("io.equilateral.admin.granted.v1")
			return e
		}, newVerifier, ErrBadSignature},
		{"tampered signed extension", func() *event.Event {
			e := signed(alice, "4")
			e.SetExtension("causationid", "other")
			return e
		}, newVerifier, ErrBadSignature},
		{"dropped signed extension", func() *event.Event {
			e := signed(alice, "5")
			e.SetExtension("causationid", nil)
			return e
		}, newVerifier, ErrMalformed},
		{"swapped signer", func() *event.Event {
			// Mallory signs an event claiming to come from alice.
			e := testEvent(alice.source, "6", now)
			if err := mallory.signer.Sign(e); err != nil {
				t.Fatal(err)
			}
			return e
		}, newVerifier, ErrSignerMismatch},
		{"unknown signer", func() *event.Event {
			stranger := newTestPrincipal(t, nil, alice.source)
			e := testEvent(alice.source, "7", now)
			stranger.signer.Sign(e)
			return e
		}, newVerifier, ErrUnknownSigner},
		{"unsigned", func() *event.Event { return testEvent(alice.source, "8", now) }, newVerifier, ErrUnsigned},
		{"stale", func() *event.Event {
			e := testEvent(alice.source, "9", now.Add(-time.Hour))
			alice.signer.Sign(e)
			return e
		}, newVerifier, ErrStale},
		{"future", func() *event.Event {
			e := testEvent(alice.source, "10", now.Add(time.Hour))
			alice.signer.Sign(e)
			return e
		}, newVerifier, ErrStale},
		{"other tenant", func() *event.Event {
			reg.Add("eq://globex/bob", mallory.signer.KeyID())
			e := testEvent("eq://globex/bob", "11", now)
			mallory.signer.Sign(e)
			return e
		}, newVerifier, ErrSignerMismatch},
		{"garbage material", func() *event.Event {
			e := signed(alice, "12")
			e.SetExtension(ExtDSSEMaterial, base64.StdEncoding.EncodeToString([]byte("{nope")))
			return e
		}, newVerifier, ErrMalformed},
		{"signedextattrs naming a core attribute", func() *event.Event {
			e := signed(alice, "13")
			e.SetExtension(ExtSignedExtAttrs, "causationid,id")
			return e
		}, newVerifier, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.verify().Verify(ctx, tc.event())
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Replay: the same signed event twice through one verifier.
	v := newVerifier()
	again := signed(alice, "replay-1")
	if _, err := v.Verify(ctx, again); err != nil {
		t.Fatalf("first delivery refused: %v", err)
	}
	if _, err := v.Verify(ctx, again); !errors.Is(err, ErrReplay) || errors.Is(err, ErrStale) {
		t.Fatalf("replay: got %v, want ErrReplay", err)
	}
	// A forged copy of a fresh event must not burn its id.
	fresh := signed(alice, "fresh-1")
	forged := fresh.Clone()
	forged.DataEncoded = []byte("{}")
	if _, err := v.Verify(ctx, &forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged copy: %v", err)
	}
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatalf("real event refused after a forged copy: %v", err)
	}
}
