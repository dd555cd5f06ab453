package bus

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nkeys"
)

// Signer signs events with a principal's nkey, following the signing
// protocol of the CloudEvents verifiability extension. The key id is the
// principal's public nkey. A Signer is safe for concurrent use.
type Signer struct {
	key   ed25519.PrivateKey
	keyID string
}

// NewSigner makes a Signer from a user nkey seed ("SU..."). The seed is
// decoded once: nkeys decodes it on every call otherwise, which doubles the
// cost of a signature.
func NewSigner(seed []byte) (*Signer, error) {
	prefix, raw, err := nkeys.DecodeSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("bus: signing key: not an nkey seed")
	}
	if prefix != nkeys.PrefixByteUser {
		return nil, fmt.Errorf("bus: signing key: want a user seed")
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("bus: signing key: not an nkey seed")
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("bus: signing key: %w", err)
	}
	kp.Wipe()
	return &Signer{key: ed25519.NewKeyFromSeed(raw), keyID: pub}, nil
}

// SignerFromCreds reads the seed from a NATS creds file, the same one the
// principal connects with.
func SignerFromCreds(path string) (*Signer, error) {
	contents, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bus: read creds: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(contents)
	if err != nil {
		return nil, fmt.Errorf("bus: creds file %s holds no nkey seed", path)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("bus: creds file %s: %w", path, err)
	}
	return NewSigner(seed)
}

// KeyID is the public nkey that verifiers look up.
func (s *Signer) KeyID() string { return s.keyID }

// Sign adds signedextattrs and dssematerial to e. Every extension already
// on the event (traceparent, tracestate, Equilateral's own) is signed, in
// name order. Steps refer to the spec's signing protocol.
func (s *Signer) Sign(e *event.Event) error {
	// Step 2: the signed extensions are all extensions but the two of
	// the verifiability extension itself.
	exts := e.Extensions()
	names := make([]string, 0, len(exts))
	for name := range exts {
		if name != ExtDSSEMaterial && name != ExtSignedExtAttrs {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	// Step 3.
	if len(names) > 0 {
		e.SetExtension(ExtSignedExtAttrs, strings.Join(names, ","))
	} else if _, ok := exts[ExtSignedExtAttrs]; ok {
		e.SetExtension(ExtSignedExtAttrs, nil)
	}
	// Steps 4 and 5.
	material, err := verificationMaterial(e, names)
	if err != nil {
		return err
	}
	// Steps 6 and 7.
	sealed, err := sealMaterial(material, s.keyID, s.key)
	if err != nil {
		return fmt.Errorf("bus: seal: %w", err)
	}
	e.SetExtension(ExtDSSEMaterial, sealed)
	return nil
}
