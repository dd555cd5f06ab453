package bus

import (
	"context"
	"testing"
	"time"
)

// TestVerifySaysWhatIsSigned: the receive span takes its parent only from
// an event verify calls signed. An unsigned event let through whole
// (WithUnsignedAllowed) keeps its traceparent extension, but that is the
// sender's word only.
func TestVerifySaysWhatIsSigned(t *testing.T) {
	reg := NewStaticKeys()
	alice := newTestPrincipal(t, reg, "eq://acme/alice")
	now := time.Now()
	v := NewVerifier(reg, WithUnsignedAllowed())

	unsigned := testEvent(alice.source, "u-1", now)
	out, signed, err := v.verify(context.Background(), unsigned)
	if err != nil || signed {
		t.Fatalf("unsigned event: signed=%v, %v", signed, err)
	}
	if _, ok := out.Extensions()[ExtTraceParent]; !ok {
		t.Fatal("the unsigned event lost its extensions")
	}

	e := testEvent(alice.source, "s-1", now)
	if err := alice.signer.Sign(e); err != nil {
		t.Fatal(err)
	}
	if _, signed, err := v.verify(context.Background(), e); err != nil || !signed {
		t.Fatalf("signed event: signed=%v, %v", signed, err)
	}
}
