package bus

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestTimeOnTheWire: both modes send time in the one form the material
// hashes, with every digit of the fraction the time has.
func TestTimeOnTheWire(t *testing.T) {
	base := time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{base.Add(123 * time.Millisecond), "2026-11-24T21:00:00.123Z"},
		{base.Add(123456789 * time.Nanosecond), "2026-11-24T21:00:00.123456789Z"},
		{base, "2026-11-24T21:00:00Z"},
		{base.Add(120 * time.Millisecond), "2026-11-24T21:00:00.12Z"},
		{base.Add(500 * time.Millisecond).In(time.FixedZone("x", 90*60)), "2026-11-24T21:00:00.5Z"},
	} {
		if got := canonicalTime(c.t); got != c.want {
			t.Errorf("canonicalTime(%v) = %q, want %q", c.t, got, c.want)
		}
		e := testEvent("eq://acme/alice", "1", c.t)
		bin, err := EncodeBinary("eq.x", e)
		if err != nil {
			t.Fatal(err)
		}
		if got := bin.Header.Get("ce-time"); got != c.want {
			t.Errorf("binary mode: ce-time %q, want %q", got, c.want)
		}
		st, err := EncodeStructured("eq.x", e)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Time string `json:"time"`
		}
		if err := json.Unmarshal(st.Data, &body); err != nil || body.Time != c.want {
			t.Errorf("structured mode: time %q (%v), want %q", body.Time, err, c.want)
		}
		if h, _ := hashedTime(e); h != c.want {
			t.Errorf("hashed time %q, want %q", h, c.want)
		}
	}
}

// TestTimeSignedToThePrecisionSent: a signed time cannot be moved by any
// amount, down to a nanosecond; other spellings of the same instant still
// verify and hand on that instant.
func TestTimeSignedToThePrecisionSent(t *testing.T) {
	ctx := context.Background()
	reg := NewStaticKeys()
	alice := newTestPrincipal(t, reg, "eq://acme/alice")
	now := time.Now().UTC().Truncate(time.Second).Add(123456789 * time.Nanosecond)
	signedMsg := func(t *testing.T, id string) (string, func(ceTime string) error) {
		e := testEvent(alice.source, id, now)
		if err := alice.signer.Sign(e); err != nil {
			t.Fatal(err)
		}
		msg, err := EncodeBinary("eq.x", e)
		if err != nil {
			t.Fatal(err)
		}
		sent := msg.Header.Get("ce-time")
		return sent, func(ceTime string) error {
			msg.Header.Set("ce-time", ceTime)
			in, err := Decode(msg, DefaultMaxEventSize)
			if err != nil {
				return err
			}
			got, err := NewVerifier(reg, WithClock(func() time.Time { return now })).Verify(ctx, in)
			if err == nil && !got.Time().Equal(now) {
				t.Fatalf("ce-time %q verified as %v, signed %v", ceTime, got.Time(), now)
			}
			return err
		}
	}
	sent, _ := signedMsg(t, "probe")
	if want := now.Format("2006-01-02T15:04:05") + ".123456789Z"; sent != want {
		t.Fatalf("sent ce-time %q, want %q", sent, want)
	}
	day := now.Format("2006-01-02T15:04:05")
	for i, c := range []struct {
		ceTime string
		want   error // nil: verifies
	}{
		{sent, nil},
		{day + ".1234567890Z", nil}, // trailing zero
		{now.In(time.FixedZone("x", -150*60)).Format("2006-01-02T15:04:05.999999999-07:00"), nil}, // offset
		{day + ".1234567891Z", nil},                 // digits past the ninth are not part of the time
		{day + ".123456788Z", ErrBadSignature},      // one nanosecond earlier
		{day + ".999Z", ErrBadSignature},            // another sub-second part
		{day + ".123Z", ErrBadSignature},            // truncated to milliseconds
		{day + "Z", ErrBadSignature},                // truncated to the second
		{day + ".123456789+00:01", ErrBadSignature}, // a minute away
	} {
		_, verify := signedMsg(t, "e"+string(rune('a'+i)))
		err := verify(c.ceTime)
		if c.want == nil && err != nil {
			t.Errorf("ce-time %q refused: %v", c.ceTime, err)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("ce-time %q: %v, want %v", c.ceTime, err, c.want)
		}
	}
}

// TestTimeOutsideRFC3339Years: a time that has no RFC 3339 form in UTC is
// refused when read and cannot be signed.
func TestTimeOutsideRFC3339Years(t *testing.T) {
	for _, s := range []string{"9999-12-31T23:30:00-01:00", "0000-01-01T00:00:00+01:00"} {
		msg := fuzzMsg("ce-specversion:1.0\nce-id:1\nce-source:eq://acme/a\nce-type:t\nce-time:"+s+"\n", nil, false)
		if _, err := Decode(msg, DefaultMaxEventSize); !errors.Is(err, ErrMalformed) {
			t.Errorf("ce-time %q: %v, want malformed", s, err)
		}
		st := fuzzMsg("", []byte(`{"specversion":"1.0","id":"1","source":"eq://acme/a","type":"t","time":"`+s+`"}`), true)
		if _, err := Decode(st, DefaultMaxEventSize); !errors.Is(err, ErrMalformed) {
			t.Errorf("structured time %q: %v, want malformed", s, err)
		}
	}
	alice := newTestPrincipal(t, nil, "eq://acme/alice")
	e := testEvent(alice.source, "1", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := alice.signer.Sign(e); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signing a time in year 10000: %v", err)
	}
}
