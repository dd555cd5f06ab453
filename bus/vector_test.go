package bus

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

var updateVectors = flag.Bool("update", false, "rewrite the expected values of protocol/testdata/signing.json from the code")

// vectorsFile holds the signing test vectors: the worked examples of
// docs/protocol.md, meant to be usable by any implementation of the
// CloudEvents verifiability extension over NATS. Inputs are written by
// hand; every "expected" value is what this package computes from them,
// and the tests check both directions: the code reproduces every expected
// value, and the expected message verifies.
var vectorsFile = filepath.Join("..", "protocol", "testdata", "signing.json")

type vectorFile struct {
	Comment []string `json:"comment"`
	Key     struct {
		Comment  string `json:"comment"`
		NKeySeed string `json:"nkey_seed"` // input: TEST KEY ONLY
		// Expected: what the seed decodes to.
		Ed25519SeedHex   string `json:"ed25519_seed_hex"`
		Ed25519PublicHex string `json:"ed25519_public_hex"`
		KeyID            string `json:"keyid"`
	} `json:"key"`
	Vectors         []signingVector `json:"vectors"`
	TimeForms       timeForms       `json:"time_forms"`
	PercentEncoding percentForms    `json:"percent_encoding"`
}

type signingVector struct {
	Name     string         `json:"name"`
	Comment  string         `json:"comment"`
	Input    vectorInput    `json:"input"`
	Expected vectorExpected `json:"expected"`
}

type vectorInput struct {
	Mode        string            `json:"mode"` // "binary" or "structured"
	NATSSubject string            `json:"nats_subject"`
	Attributes  map[string]string `json:"attributes"`
	Extensions  map[string]string `json:"extensions"`
	Data        string            `json:"data"`
}

type vectorExpected struct {
	SignedExtAttrs       string         `json:"signedextattrs"`
	Material             []hashedPart   `json:"material"`
	VerificationMaterial string         `json:"verification_material_hex"`
	PAE                  string         `json:"pae_hex"`
	Signature            string         `json:"signature_base64"`
	Envelope             string         `json:"envelope_json"`
	DSSEMaterial         string         `json:"dssematerial"`
	NATSHeaders          [][2]string    `json:"nats_headers"`
	NATSHeaderBlock      string         `json:"nats_header_block"`
	NATSBody             string         `json:"nats_body"`
	StructuredData       *structuredPos `json:"structured_data,omitempty"`
}

// hashedPart is one 32-byte digest of the sequence step 4 builds.
type hashedPart struct {
	Step   string `json:"step"`
	Part   string `json:"part"`
	Hashed string `json:"hashed"`
	SHA256 string `json:"sha256_hex"`
}

// structuredPos says where the hashed data sits in a structured body.
type structuredPos struct {
	Comment string `json:"comment"`
	Start   int    `json:"start"`
	End     int    `json:"end"`
}

type timeForms struct {
	Comment string     `json:"comment"`
	Forms   []timeForm `json:"forms"`
}

// timeForm is one time as a sender may write it (input) and what the
// material hashes for it (expected).
type timeForm struct {
	Wire   string `json:"wire"`
	Hashed string `json:"hashed"`
	SHA256 string `json:"sha256_hex"`
}

type percentForms struct {
	Comment string        `json:"comment"`
	Forms   []percentForm `json:"forms"`
}

// percentForm is a header value (input) and its encoded form (expected).
type percentForm struct {
	Value   string `json:"value"`
	Encoded string `json:"encoded"`
}

func readVectors(t *testing.T) vectorFile {
	t.Helper()
	raw, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	return f
}

// inputEvent builds the unsigned event a vector's input describes.
func inputEvent(t *testing.T, in vectorInput) *event.Event {
	t.Helper()
	e := event.New()
	for name, v := range in.Attributes {
		switch name {
		case "specversion":
			if v != event.CloudEventsVersionV1 {
				t.Fatalf("specversion %q", v)
			}
		case "id":
			e.SetID(v)
		case "source":
			e.SetSource(v)
		case "type":
			e.SetType(v)
		case "subject":
			e.SetSubject(v)
		case "datacontenttype":
			e.SetDataContentType(v)
		case "dataschema":
			e.SetDataSchema(v)
		case "time":
			tm, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				t.Fatal(err)
			}
			e.SetTime(tm)
		default:
			t.Fatalf("unknown attribute %q", name)
		}
	}
	for k, v := range in.Extensions {
		e.SetExtension(k, v)
	}
	e.DataEncoded = []byte(in.Data)
	return &e
}

func hexSHA256(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }

// computeVector fills a vector's expected values from its input.
func computeVector(t *testing.T, signer *Signer, v signingVector) vectorExpected {
	t.Helper()
	e := inputEvent(t, v.Input)
	if err := signer.Sign(e); err != nil {
		t.Fatal(err)
	}
	var x vectorExpected
	x.SignedExtAttrs = stringExtension(e, ExtSignedExtAttrs)
	hashed, err := hashedTime(e)
	if err != nil {
		t.Fatal(err)
	}
	core := []struct{ step, part, value string }{
		{"4.1", "id", e.ID()}, {"4.2", "source", e.Source()}, {"4.3", "specversion", e.SpecVersion()},
		{"4.4", "type", e.Type()}, {"4.5", "datacontenttype", e.DataContentType()}, {"4.6", "dataschema", e.DataSchema()},
		{"4.7", "subject", e.Subject()}, {"4.8", "time", hashed}, {"4.9", "data", string(e.Data())},
	}
	for _, c := range core {
		x.Material = append(x.Material, hashedPart{c.step, c.part, c.value, hexSHA256(c.value)})
	}
	names := strings.Split(x.SignedExtAttrs, ",")
	if x.SignedExtAttrs == "" {
		names = nil
	}
	for _, name := range names {
		x.Material = append(x.Material,
			hashedPart{"4.10", "name of " + name, name, hexSHA256(name)},
			hashedPart{"4.10", "value of " + name, v.Input.Extensions[name], hexSHA256(v.Input.Extensions[name])})
	}
	material, err := verificationMaterial(e, names)
	if err != nil {
		t.Fatal(err)
	}
	x.VerificationMaterial = hex.EncodeToString(material[:])
	x.PAE = hex.EncodeToString(pae(PayloadType, material[:]))
	x.DSSEMaterial = stringExtension(e, ExtDSSEMaterial)
	raw, err := base64.StdEncoding.DecodeString(x.DSSEMaterial)
	if err != nil {
		t.Fatal(err)
	}
	x.Envelope = string(raw)
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	x.Signature = env.Signatures[0].Sig

	encode := EncodeBinary
	if v.Input.Mode == "structured" {
		encode = EncodeStructured
	}
	msg, err := encode(v.Input.NATSSubject, e)
	if err != nil {
		t.Fatal(err)
	}
	for k, vals := range msg.Header {
		for _, val := range vals {
			x.NATSHeaders = append(x.NATSHeaders, [2]string{k, val})
		}
	}
	slices.SortFunc(x.NATSHeaders, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	var block strings.Builder
	block.WriteString("NATS/1.0\r\n")
	for _, h := range x.NATSHeaders {
		block.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	block.WriteString("\r\n")
	x.NATSHeaderBlock = block.String()
	x.NATSBody = string(msg.Data)
	if v.Input.Mode == "structured" {
		i := strings.Index(x.NATSBody, `"data":`) + len(`"data":`)
		x.StructuredData = &structuredPos{
			Comment: "the data hashed in step 4.9: the bytes of the body's \"data\" member value, nats_body[start:end] (byte offsets)",
			Start:   i, End: i + len(v.Input.Data),
		}
	}
	return x
}

// TestVectors checks every signing vector both ways: from the inputs the
// code computes every expected value, and the expected NATS message
// decodes and verifies to the input event. -update rewrites the expected
// values (only when a change is intended: they are a published contract).
func TestVectors(t *testing.T) {
	f := readVectors(t)
	signer, err := NewSigner([]byte(f.Key.NKeySeed))
	if err != nil {
		t.Fatal(err)
	}
	want := f
	got := f
	_, rawSeed, err := nkeys.DecodeSeed([]byte(f.Key.NKeySeed))
	if err != nil {
		t.Fatal(err)
	}
	got.Key.Ed25519SeedHex = hex.EncodeToString(rawSeed)
	got.Key.Ed25519PublicHex = hex.EncodeToString(ed25519.NewKeyFromSeed(rawSeed).Public().(ed25519.PublicKey))
	got.Key.KeyID = signer.KeyID()
	got.Vectors = slices.Clone(f.Vectors)
	for i, v := range got.Vectors {
		got.Vectors[i].Expected = computeVector(t, signer, v)
	}
	got.TimeForms.Forms = slices.Clone(f.TimeForms.Forms)
	for i, tf := range got.TimeForms.Forms {
		tm, err := parseTime(tf.Wire)
		if err != nil {
			t.Fatalf("time form %q: %v", tf.Wire, err)
		}
		got.TimeForms.Forms[i].Hashed = canonicalTime(tm)
		got.TimeForms.Forms[i].SHA256 = hexSHA256(canonicalTime(tm))
	}
	got.PercentEncoding.Forms = slices.Clone(f.PercentEncoding.Forms)
	for i, pf := range got.PercentEncoding.Forms {
		got.PercentEncoding.Forms[i].Encoded = percentEncode(pf.Value)
	}
	gotJSON := marshalVectors(t, got)
	if *updateVectors {
		if err := os.WriteFile(vectorsFile, gotJSON, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if wantJSON := marshalVectors(t, want); !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("%s: the code computes other values (run with -update only if the change is intended)\ngot:\n%s", vectorsFile, gotJSON)
	}

	// Verification direction, for each vector.
	pub := ed25519.PublicKey(mustHex(t, f.Key.Ed25519PublicHex))
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			x := v.Expected
			// The signature verifies over the recorded PAE with the key alone.
			sig, err := base64.StdEncoding.DecodeString(x.Signature)
			if err != nil || !ed25519.Verify(pub, mustHex(t, x.PAE), sig) {
				t.Fatalf("signature_base64 does not verify over pae_hex: %v", err)
			}
			if !bytes.HasSuffix(mustHex(t, x.PAE), mustHex(t, x.VerificationMaterial)) {
				t.Fatal("pae_hex does not end in the material")
			}
			// The recorded NATS message decodes and verifies, at the
			// event's time, to the input event.
			msg := nats.NewMsg(v.Input.NATSSubject)
			for _, h := range x.NATSHeaders {
				msg.Header.Add(h[0], h[1])
			}
			msg.Data = []byte(x.NATSBody)
			keys := NewStaticKeys()
			if err := keys.Add(v.Input.Attributes["source"], f.Key.KeyID); err != nil {
				t.Fatal(err)
			}
			at := inputEvent(t, v.Input).Time()
			verify := func(msg *nats.Msg) (*event.Event, error) {
				e, err := Decode(msg, DefaultMaxEventSize)
				if err != nil {
					return nil, err
				}
				return NewVerifier(keys, WithClock(func() time.Time { return at })).Verify(context.Background(), e)
			}
			verified, err := verify(msg)
			if err != nil {
				t.Fatalf("the vector's message does not verify: %v", err)
			}
			if string(verified.Data()) != v.Input.Data || !verified.Time().Equal(at) || verified.ID() != v.Input.Attributes["id"] {
				t.Fatalf("verified event differs from the input: %s %v %s", verified.Data(), verified.Time(), verified.ID())
			}
			if s := x.StructuredData; s != nil && x.NATSBody[s.Start:s.End] != v.Input.Data {
				t.Fatalf("structured_data points at %q", x.NATSBody[s.Start:s.End])
			}
			for name, value := range v.Input.Extensions {
				if verified.Extensions()[name] != value {
					t.Fatalf("extension %s = %v, want %q", name, verified.Extensions()[name], value)
				}
			}
			// And it is the signature that holds it: one byte of the data
			// changed is refused.
			tampered := nats.NewMsg(msg.Subject)
			tampered.Header = msg.Header
			tampered.Data = bytes.Clone(msg.Data)
			start := 0
			if s := x.StructuredData; s != nil {
				start = s.Start
			}
			i := start + bytes.IndexAny(tampered.Data[start:], "0123456789abcdefghijklmnopqrstuvwxyz")
			tampered.Data[i] ^= 1 // another digit or letter
			if _, err := verify(tampered); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("tampered message: %v, want a bad signature", err)
			}
		})
	}
}

// TestPercentEncodingVectors: the recorded encodings decode back, in
// either hex case.
func TestPercentEncodingVectors(t *testing.T) {
	for _, pf := range readVectors(t).PercentEncoding.Forms {
		for _, enc := range []string{pf.Encoded, lowerHex(pf.Encoded)} {
			got, err := percentDecode(enc)
			if err != nil || got != pf.Value {
				t.Errorf("percentDecode(%q) = %q, %v; want %q", enc, got, err, pf.Value)
			}
		}
	}
}

// lowerHex lower-cases the hex digits of every %XX.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = bytes.ToLower(b[i+1 : i+2])[0], bytes.ToLower(b[i+2 : i+3])[0]
		}
	}
	return string(b)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// marshalVectors writes the file as it is kept: indented, no HTML escapes.
func marshalVectors(t *testing.T, f vectorFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
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
