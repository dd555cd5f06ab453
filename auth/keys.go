package auth

import (
	"fmt"
	"os"

	"github.com/nats-io/nkeys"
)

// newKey makes a fresh nkey of the given kind and returns it with its seed.
func newKey(create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, []byte, error) {
	kp, err := create()
	if err != nil {
		return nil, nil, fmt.Errorf("auth: generate key: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, nil, fmt.Errorf("auth: read seed: %w", err)
	}
	return kp, seed, nil
}

// loadKey reads a seed file written by saveSeed.
func loadKey(path string) (nkeys.KeyPair, error) {
	seed, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		// Never echo the file's content: it is a secret.
		return nil, fmt.Errorf("auth: key file %s is not an nkey seed", path)
	}
	return kp, nil
}

func publicKey(kp nkeys.KeyPair) string {
	pub, err := kp.PublicKey()
	if err != nil {
		// Only a wiped key pair fails here; that is a programming error.
		panic("auth: public key of a wiped key pair")
	}
	return pub
}
