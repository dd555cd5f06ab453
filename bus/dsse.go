package bus

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strconv"
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
	sig := ed25519.Sign(key, pae(PayloadType, material[:]))
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
