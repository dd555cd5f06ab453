package bus

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStructuredModeKeepsTheSignedData: data with whitespace and the
// characters encoding/json escapes (<, > and &) survives EncodeStructured
// byte for byte, so the event verifies after the trip; and a structured
// body written with whitespace after "data": (Python's json.dumps default)
// verifies too, since that whitespace is not part of the value.
func TestStructuredModeKeepsTheSignedData(t *testing.T) {
	reg := NewStaticKeys()
	alice := newTestPrincipal(t, reg, "eq://acme/alice")
	verifier := NewVerifier(reg, WithTenant("acme"))
	data := []byte(`{ "html": "<b>fish & chips</b>",  "n": 1 }`)
	e := testEvent(alice.source, "structured-1", time.Now())
	if err := e.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	if err := alice.signer.Sign(e); err != nil {
		t.Fatal(err)
	}
	msg, err := EncodeStructured("eq.test", e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg.Data), `"data":`+string(data)) {
		t.Fatalf("the body does not carry the data as signed: %s", msg.Data)
	}
	got, err := Decode(msg, DefaultMaxEventSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(context.Background(), got); err != nil {
		t.Fatalf("a structured event fails its own signature: %v", err)
	}
	if string(got.Data()) != string(data) {
		t.Fatalf("data %s, sent %s", got.Data(), data)
	}

	spaced := strings.Replace(string(msg.Data), `"data":`, `"data":  `+"\n", 1)
	msg.Data = []byte(spaced)
	got, err = Decode(msg, DefaultMaxEventSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(reg, WithTenant("acme")).Verify(context.Background(), got); err != nil {
		t.Fatalf("whitespace before the data value broke the signature: %v", err)
	}
}
