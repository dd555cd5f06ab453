package bus

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Extension attributes of the CloudEvents verifiability extension.
const (
	ExtDSSEMaterial   = "dssematerial"
	ExtSignedExtAttrs = "signedextattrs"
)

// timeLayout is the one form of the time attribute that Equilateral sends
// (ce-time, and "time" in structured mode) and that the verification
// material hashes: RFC 3339 in UTC ("Zulu"), with the fraction of the
// second to the nanosecond, trailing zeros trimmed and no fraction at all
// for a whole second. The signature covers every digit sent, so the
// sub-second part of a signed time cannot be changed. Receivers read any
// RFC 3339 form and hash this re-rendering of the instant: docs/protocol.md
// section 5 says why that leaves nothing a receiver sees unsigned.
const timeLayout = time.RFC3339Nano

// coreAttributes are never allowed in signedextattrs (spec: "MUST NOT
// include core context attributes").
var coreAttributes = map[string]bool{
	"id": true, "source": true, "specversion": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true,
	"data": true, "data_base64": true,
}

// verificationMaterial computes the 32-byte VERIFICATION_MATERIAL of the
// verifiability extension (section "Signature", steps 4 and 5):
//
//	SHA256( SHA256(id) + SHA256(source) + SHA256(specversion) + SHA256(type)
//	      + SHA256(datacontenttype) + SHA256(dataschema) + SHA256(subject)
//	      + SHA256(canonicalTime(time)) + SHA256(data)
//	      + for each signed extension: SHA256(name) + SHA256(value) )
//
// An unset attribute contributes the digest of the empty byte sequence.
func verificationMaterial(e *event.Event, signedExt []string) ([32]byte, error) {
	hashed, err := hashedTime(e)
	if err != nil {
		return [32]byte{}, err
	}
	var seq [32 * 9]byte
	put := func(i int, s string) { d := sha256.Sum256([]byte(s)); copy(seq[i*32:], d[:]) }
	put(0, e.ID())              // 4.1
	put(1, e.Source())          // 4.2
	put(2, e.SpecVersion())     // 4.3
	put(3, e.Type())            // 4.4
	put(4, e.DataContentType()) // 4.5
	put(5, e.DataSchema())      // 4.6
	put(6, e.Subject())         // 4.7
	put(7, hashed)              // 4.8
	dataDigest := sha256.Sum256(e.Data())
	copy(seq[8*32:], dataDigest[:]) // 4.9

	h := sha256.New()
	h.Write(seq[:])
	exts := extensionsOf(e)
	for _, name := range signedExt { // 4.10, in the given order
		value, ok := exts[name]
		if !ok {
			return [32]byte{}, malformed("signed extension %q is not on the event", name)
		}
		s, err := types.Format(value)
		if err != nil {
			return [32]byte{}, malformed("extension %q: %v", name, err)
		}
		nd, vd := sha256.Sum256([]byte(name)), sha256.Sum256([]byte(s))
		h.Write(nd[:])
		h.Write(vd[:])
	}
	var out [32]byte
	h.Sum(out[:0]) // 5
	return out, nil
}

// canonicalTime renders t in timeLayout: what goes on the wire and into
// the verification material, e.g. "2026-11-24T21:00:00.123Z".
func canonicalTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// hashedTime is the time attribute as step 4.8 hashes it: "" when unset.
// A time whose year in UTC is outside 0000-9999 has no RFC 3339 form.
func hashedTime(e *event.Event) (string, error) {
	t := e.Time()
	if t.IsZero() {
		return "", nil
	}
	if !inRFC3339Range(t) {
		return "", malformed("time is outside the years RFC 3339 can write")
	}
	return canonicalTime(t), nil
}

func inRFC3339Range(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// parseSignedExtAttrs reads signedextattrs and enforces its constraints
// (spec, attribute definition): no repetitions, no core attributes, not
// dssematerial, not signedextattrs itself. Names are taken literally, so
// "a, b" names " b" — which is not a valid attribute name and is refused.
func parseSignedExtAttrs(value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	names := strings.Split(value, ",")
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		switch {
		case !validExtensionName(n):
			return nil, malformed("signedextattrs: %q is not an attribute name", clip(n))
		case seen[n]:
			return nil, malformed("signedextattrs: %q repeated", clip(n))
		case coreAttributes[n]:
			return nil, malformed("signedextattrs: %q is a core attribute", n)
		case n == ExtDSSEMaterial || n == ExtSignedExtAttrs:
			return nil, malformed("signedextattrs: %q may not be signed", n)
		}
		seen[n] = true
	}
	return names, nil
}

// validExtensionName: CloudEvents attribute names are lower-case ASCII
// letters and digits.
func validExtensionName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
