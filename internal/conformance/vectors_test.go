package conformance_test

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestHandWrittenWireMatchesTheVectors: before it talks to anyone, the
// hand-written implementation reproduces the published signing vectors
// (protocol/testdata/signing.json) and verifies their messages.
func TestHandWrittenWireMatchesTheVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "protocol", "testdata", "signing.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Key struct {
			NKeySeed string `json:"nkey_seed"`
			KeyID    string `json:"keyid"`
		} `json:"key"`
		Vectors []struct {
			Name  string `json:"name"`
			Input struct {
				Mode       string            `json:"mode"`
				Attributes map[string]string `json:"attributes"`
				Extensions map[string]string `json:"extensions"`
				Data       string            `json:"data"`
			} `json:"input"`
			Expected struct {
				SignedExtAttrs string      `json:"signedextattrs"`
				DSSEMaterial   string      `json:"dssematerial"`
				NATSHeaders    [][2]string `json:"nats_headers"`
				NATSBody       string      `json:"nats_body"`
			} `json:"expected"`
		} `json:"vectors"`
		PercentEncoding struct {
			Forms []struct{ Value, Encoded string } `json:"forms"`
		} `json:"percent_encoding"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	seed, err := nkeyBase32.DecodeString(f.Key.NKeySeed)
	if err != nil {
		t.Fatal(err)
	}
	id := identity{keyID: f.Key.KeyID, key: ed25519.NewKeyFromSeed(seed[2:34])}
	if pub, ok := publicKey(f.Key.KeyID); !ok || !pub.Equal(id.key.Public()) {
		t.Fatal("the vectors' keyid is not the seed's public key")
	}
	for _, v := range f.Vectors {
		signed, dsse := sign(id, v.Input.Attributes, v.Input.Extensions, []byte(v.Input.Data))
		if signed != v.Expected.SignedExtAttrs || dsse != v.Expected.DSSEMaterial {
			t.Errorf("%s: signed %q %s, want %q %s", v.Name, signed, dsse, v.Expected.SignedExtAttrs, v.Expected.DSSEMaterial)
		}
		if v.Input.Mode != "binary" {
			continue
		}
		msg := nats.NewMsg("x")
		for _, h := range v.Expected.NATSHeaders {
			msg.Header.Add(h[0], h[1])
		}
		msg.Data = []byte(v.Expected.NATSBody)
		e := readBinary(t, msg)
		at, _ := time.Parse(time.RFC3339Nano, v.Input.Attributes["time"])
		if why := verify(e, f.Key.KeyID, at); why != "" {
			t.Errorf("%s: the vector's message does not verify by hand: %s", v.Name, why)
		}
		// The hand-written verifier refuses what it must.
		if why := verify(e, f.Key.KeyID, at.Add(3*time.Minute)); why != "stale" {
			t.Errorf("%s: three minutes later: %q, want stale", v.Name, why)
		}
		other, _ := nkeyBase32.DecodeString("UBRWOAC3NMS4RIJJ6XGYRCGN5W6ZHNRMVW6SW6WLINTABDBXEK3RV6TU")
		other[5] ^= 1
		if why := verify(e, nkeyBase32.EncodeToString(other), at); why == "" {
			t.Errorf("%s: verified under another key", v.Name)
		}
		e.data = append([]byte(nil), e.data...)
		e.data[len(e.data)-2] ^= 1
		if why := verify(e, f.Key.KeyID, at); !strings.Contains(why, "modified") {
			t.Errorf("%s: a changed body: %q, want modified", v.Name, why)
		}
		for name, value := range v.Input.Extensions {
			if msg.Header.Get("ce-"+name) != percentEncode(value) {
				t.Errorf("%s: ce-%s is %q, want %q", v.Name, name, msg.Header.Get("ce-"+name), percentEncode(value))
			}
		}
	}
	for _, pf := range f.PercentEncoding.Forms {
		if got := percentEncode(pf.Value); got != pf.Encoded {
			t.Errorf("percentEncode(%q) = %q, want %q", pf.Value, got, pf.Encoded)
		}
	}
}
