package bus

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"time"
)

// CryptoCost measures, on this machine, what one signature and one
// verification of the bus cost: the ed25519 work over the DSSE
// pre-authentication encoding of a 32-byte verification material, as
// Sign and Verify do it. It runs each for about d. This is the crypto
// floor of the round trip: no amount of work elsewhere makes a task
// cheaper than its signatures.
func CryptoCost(d time.Duration) (sign, verify time.Duration, err error) {
	seed := sha256.Sum256([]byte("equilateral crypto cost"))
	key := ed25519.NewKeyFromSeed(seed[:])
	pub := key.Public().(ed25519.PublicKey)
	material := sha256.Sum256([]byte("material"))
	msg := pae(PayloadType, material[:])
	var sig []byte
	n, start := 0, time.Now()
	for n == 0 || time.Since(start) < d/2 {
		sig = signEd25519(key, msg)
		n++
	}
	sign = time.Since(start) / time.Duration(n)
	n, start = 0, time.Now()
	for n == 0 || time.Since(start) < d/2 {
		if !verifyEd25519(pub, msg, sig) {
			return 0, 0, fmt.Errorf("bus: crypto cost: a fresh signature did not verify")
		}
		n++
	}
	verify = time.Since(start) / time.Duration(n)
	return sign, verify, nil
}
