package bus

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// PayloadType is the DSSE payload type of the verifiability extension; it
// names the version of the spec the material follows.
const PayloadType = "https://cloudevents.io/verifiability/dsse/v0.1"

// envelope is a DSSE v1.0.2 JSON envelope.
type envelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     string          `json:"payload"` // base64 of the 32-byte material
	Signatures  []dsseSignature `json:"signatures"`
}

type dsseSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64 of the ed25519 signature over pae()
}

// pae is DSSE's pre-authentication encoding, what is actually signed:
//
//	"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//
// with LEN as ASCII decimal byte counts.
func pae(payloadType string, body []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(body))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, ' ')
	return append(b, body...)
}

// sealMaterial signs the material and returns the dssematerial value:
// base64 (standard, padded) of the JSON envelope.
func sealMaterial(material [32]byte, keyID string, key ed25519.PrivateKey) (string, error) {
	sig := signEd25519(key, pae(PayloadType, material[:]))
	signatures.Add(1)
	env := envelope{
		PayloadType: PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(material[:]),
		Signatures:  []dsseSignature{{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)}},
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// parseEnvelope reads a DSSE JSON envelope. The exact form sealMaterial
// writes (one signature, no escapes, no whitespace) is read directly;
// anything else goes through encoding/json, with the same result.
func parseEnvelope(raw []byte) (envelope, error) {
	if env, ok := parseCompactEnvelope(string(raw)); ok {
		return env, nil
	}
	var env envelope
	err := json.Unmarshal(raw, &env)
	return env, err
}

func parseCompactEnvelope(s string) (env envelope, ok bool) {
	var sig dsseSignature
	if env.PayloadType, s, ok = jsonField(s, `{"payloadType":"`); !ok {
		return
	}
	if env.Payload, s, ok = jsonField(s, `,"payload":"`); !ok {
		return
	}
	if sig.KeyID, s, ok = jsonField(s, `,"signatures":[{"keyid":"`); !ok {
		return
	}
	if sig.Sig, s, ok = jsonField(s, `,"sig":"`); !ok || s != "}]}" {
		return envelope{}, false
	}
	env.Signatures = []dsseSignature{sig}
	return env, true
}

// jsonField cuts prefix and a string value up to its closing quote. It
// only takes printable ASCII without escapes, which JSON reads as is.
func jsonField(s, prefix string) (value, rest string, ok bool) {
	s, ok = strings.CutPrefix(s, prefix)
	if !ok {
		return "", "", false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i], s[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", "", false
		}
	}
	return "", "", false
}
