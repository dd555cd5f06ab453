package bus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

var updateVectors = flag.Bool("update", false, "rewrite testdata/vector.json from the code")

// vector is the worked example of docs/protocol.md, checked both ways: the
// code must produce every expected value from the inputs, and the expected
// dssematerial must verify on the input event.
type vector struct {
	Comment string `json:"comment"`
	// Inputs.
	Seed       string            `json:"seed"` // TEST KEY ONLY
	KeyID      string            `json:"keyid"`
	Attributes map[string]string `json:"attributes"`
	Extensions map[string]string `json:"extensions"`
	Data       string            `json:"data"`
	// Expected.
	SignedExtAttrs       string            `json:"signedextattrs"`
	Digests              []namedDigest     `json:"digests"`
	VerificationMaterial string            `json:"verification_material_hex"`
	PAE                  string            `json:"pae_hex"`
	Signature            string            `json:"signature_base64"`
	Envelope             string            `json:"envelope_json"`
	DSSEMaterial         string            `json:"dssematerial"`
	Headers              map[string]string `json:"nats_headers"`
	// How other spellings of a time enter the material (step 4.8).
	TimeForms []timeForm `json:"time_forms"`
}

// timeForm is one ce-time as a sender may write it (input) and what the
// material hashes for it (expected).
type timeForm struct {
	Wire   string `json:"wire"`
	Hashed string `json:"hashed"`
	SHA256 string `json:"sha256_hex"`
}

type namedDigest struct {
	Input  string `json:"input"`
	SHA256 string `json:"sha256_hex"`
}

func vectorEvent(v vector) *event.Event {
	e := event.New()
	e.SetID(v.Attributes["id"])
	e.SetSource(v.Attributes["source"])
	e.SetType(v.Attributes["type"])
	e.SetSubject(v.Attributes["subject"])
	e.SetDataContentType(v.Attributes["datacontenttype"])
	t, err := time.Parse(time.RFC3339, v.Attributes["time"])
	if err != nil {
		panic(err)
	}
	e.SetTime(t)
	for k, val := range v.Extensions {
		e.SetExtension(k, val)
	}
	e.DataEncoded = []byte(v.Data)
	return &e
}

// computeVector fills the expected values from the inputs.
func computeVector(t *testing.T, v vector) vector {
	t.Helper()
	signer, err := NewSigner([]byte(v.Seed))
	if err != nil {
		t.Fatal(err)
	}
	v.KeyID = signer.KeyID()
	e := vectorEvent(v)
	if err := signer.Sign(e); err != nil {
		t.Fatal(err)
	}
	v.SignedExtAttrs = stringExtension(e, ExtSignedExtAttrs)
	hexDigest := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	hashed, err := hashedTime(e)
	if err != nil {
		t.Fatal(err)
	}
	v.Digests = nil
	for _, in := range []string{e.ID(), e.Source(), e.SpecVersion(), e.Type(), e.DataContentType(), e.DataSchema(), e.Subject(), hashed, string(e.Data())} {
		v.Digests = append(v.Digests, namedDigest{in, hexDigest(in)})
	}
	for _, name := range strings.Split(v.SignedExtAttrs, ",") {
		v.Digests = append(v.Digests, namedDigest{name, hexDigest(name)}, namedDigest{v.Extensions[name], hexDigest(v.Extensions[name])})
	}
	material, err := verificationMaterial(e, strings.Split(v.SignedExtAttrs, ","))
	if err != nil {
		t.Fatal(err)
	}
	v.VerificationMaterial = hex.EncodeToString(material[:])
	v.PAE = hex.EncodeToString(pae(PayloadType, material[:]))
	v.DSSEMaterial = stringExtension(e, ExtDSSEMaterial)
	raw, _ := base64.StdEncoding.DecodeString(v.DSSEMaterial)
	v.Envelope = string(raw)
	var env envelope
	json.Unmarshal(raw, &env)
	v.Signature = env.Signatures[0].Sig
	msg, err := EncodeBinary("eq.agent.coder.result", e)
	if err != nil {
		t.Fatal(err)
	}
	v.Headers = map[string]string{}
	for k, vals := range msg.Header {
		v.Headers[k] = vals[0]
	}
	for i, f := range v.TimeForms {
		tm, err := parseTime(f.Wire)
		if err != nil {
			t.Fatalf("time form %q: %v", f.Wire, err)
		}
		v.TimeForms[i].Hashed = canonicalTime(tm)
		v.TimeForms[i].SHA256 = hexDigest(canonicalTime(tm))
	}
	return v
}

func TestVector(t *testing.T) {
	path := filepath.Join("testdata", "vector.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want vector
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	got := computeVector(t, want)
	if *updateVectors {
		out, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Signing direction: every intermediate value matches.
	gotJSON, _ := json.MarshalIndent(got, "", "  ")
	wantJSON, _ := json.MarshalIndent(want, "", "  ")
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("vector mismatch (run with -update only if the change is intended)\ngot:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
	// Verification direction: the recorded dssematerial verifies on the
	// input event, at the vector's time.
	e := vectorEvent(want)
	e.SetExtension(ExtSignedExtAttrs, want.SignedExtAttrs)
	e.SetExtension(ExtDSSEMaterial, want.DSSEMaterial)
	keys := NewStaticKeys()
	if err := keys.Add(want.Attributes["source"], want.KeyID); err != nil {
		t.Fatal(err)
	}
	at := e.Time()
	verified, err := NewVerifier(keys, WithClock(func() time.Time { return at })).Verify(context.Background(), e)
	if err != nil {
		t.Fatalf("vector does not verify: %v", err)
	}
	if string(verified.Data()) != want.Data {
		t.Fatal("verified data differs")
	}
	// And as it travels: the recorded NATS message, fractional ce-time
	// and all, decodes and verifies to the signed instant.
	msg := nats.NewMsg("eq.agent.coder.result")
	for k, val := range want.Headers {
		msg.Header.Set(k, val)
	}
	msg.Data = []byte(want.Data)
	decoded, err := Decode(msg, DefaultMaxEventSize)
	if err != nil {
		t.Fatal(err)
	}
	verified, err = NewVerifier(keys, WithClock(func() time.Time { return at })).Verify(context.Background(), decoded)
	if err != nil {
		t.Fatalf("vector message does not verify: %v", err)
	}
	if !verified.Time().Equal(at) || at.Nanosecond() == 0 {
		t.Fatalf("vector time %v, want the fractional %v", verified.Time(), at)
	}
}

// TestSpecVectorCase5 checks the material and the DSSE pre-authentication
// encoding against the verifiability spec's own test vector (case 5,
// binary data), whose signature is ECDSA P-256 over SHA-256 with the spec's
// published key: our PAE must be exactly what that key signed.
func TestSpecVectorCase5(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("example/uri")
	e.SetType("example.type.binary")
	e.SetDataContentType("application/octet-stream")
	e.DataEncoded, _ = base64.StdEncoding.DecodeString("8J+koQ==")
	material, err := verificationMaterial(&e, nil)
	if err != nil {
		t.Fatal(err)
	}
	const specMaterial = "qCSeiZkS+hH9WiClfq6plfqYNVy2kvxWRfoBrLEzoDk="
	if got := base64.StdEncoding.EncodeToString(material[:]); got != specMaterial {
		t.Fatalf("material %s, spec says %s", got, specMaterial)
	}
	const specSig = "DYwbSuxH4WqaaBVOVU8NYIa6WbvCk9/vG9hetwpJ4zI5j6jmALdMhw+qVnsmuc665fjVRFT1QPu/jp5gG4SjsQ=="
	sig, _ := base64.StdEncoding.DecodeString(specSig)
	x, _ := new(big.Int).SetString("46950820868899156662930047687818585632848591499744589407958293238635476079160", 10)
	y, _ := new(big.Int).SetString("5640078356564379163099075877009565129882514886557779369047442380624545832820", 10)
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
	digest := sha256.Sum256(pae(PayloadType, material[:]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		t.Fatal("the spec's signature does not verify over our PAE")
	}
}
