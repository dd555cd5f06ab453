package bus

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"testing"
)

// TestVerifyMatchesStandardLibrary: the bus's ed25519 accepts exactly
// what crypto/ed25519 accepts, for good signatures, damaged ones and the
// edge cases where implementations differ (non-canonical S, a small-order
// key, a non-canonical R or A).
func TestVerifyMatchesStandardLibrary(t *testing.T) {
	check := func(name string, pub ed25519.PublicKey, msg, sig []byte) {
		t.Helper()
		want := ed25519.Verify(pub, msg, sig)
		if got := verifyEd25519(pub, msg, sig); got != want {
			t.Fatalf("%s: bus says %v, crypto/ed25519 says %v", name, got, want)
		}
	}
	accepted := 0
	for i := range 300 {
		seed := sha256.Sum256(binary.BigEndian.AppendUint32(nil, uint32(i)))
		key := ed25519.NewKeyFromSeed(seed[:])
		pub := key.Public().(ed25519.PublicKey)
		msg := pae(PayloadType, seed[:])
		sig := signEd25519(key, msg)
		if string(sig) != string(ed25519.Sign(key, msg)) {
			t.Fatalf("signature %d differs from crypto/ed25519's", i)
		}
		check("good", pub, msg, sig)
		if ed25519.Verify(pub, msg, sig) {
			accepted++
		}
		for _, bit := range []int{0, 7, 255, 256, 300, 511} {
			bad := append([]byte(nil), sig...)
			bad[bit/8] ^= 1 << (bit % 8)
			check("flipped signature bit", pub, msg, bad)
		}
		check("other message", pub, append(msg, 'x'), sig)
		// S + L: the same signature with a non-canonical S.
		check("non-canonical S", pub, msg, withScalarPlusL(sig))
	}
	if accepted != 300 {
		t.Fatalf("only %d of 300 good signatures verified", accepted)
	}
	// A small-order key (the identity) with R the identity and S = 0
	// satisfies the cofactorless equation for every message.
	identity := make([]byte, 32)
	identity[0] = 1
	sig := append(append([]byte(nil), identity...), make([]byte, 32)...)
	check("small-order key", identity, []byte("anything"), sig)
	// Non-canonical encodings: y = p (≡ 0) and y = p+1 (≡ 1, the identity).
	for _, y := range []*big.Int{pField(), new(big.Int).Add(pField(), big.NewInt(1))} {
		enc := littleEndian32(y)
		check("non-canonical A", enc, []byte("m"), sig)
		check("non-canonical R", identity, []byte("m"), append(enc, make([]byte, 32)...))
	}
	// crypto/ed25519 panics on a short key; the bus refuses it.
	if verifyEd25519(identity[:31], []byte("m"), sig) {
		t.Fatal("a 31-byte key verified")
	}
}

func pField() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 255)
	return p.Sub(p, big.NewInt(19))
}

func littleEndian32(n *big.Int) []byte {
	be := n.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

// withScalarPlusL returns sig with L added to its S half.
func withScalarPlusL(sig []byte) []byte {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := append([]byte(nil), sig[32:]...)
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		le[i], le[j] = le[j], le[i]
	}
	s := new(big.Int).SetBytes(le)
	s.Add(s, l)
	if s.BitLen() > 256 {
		return sig
	}
	return append(append([]byte(nil), sig[:32]...), littleEndian32(s)...)
}
