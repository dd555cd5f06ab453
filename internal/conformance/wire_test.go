package conformance_test

// The wire, as docs/protocol.md describes it, implemented from scratch:
// creds (§1), percent-encoding (§4), signing (§5) and verification (§6).
// Nothing here imports the project's packages.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// identity is what a program learns from its creds file (§1).
type identity struct {
	name, tenant, role string
	capabilities       []string
	keyID              string // the JWT's sub: the public nkey
	key                ed25519.PrivateKey
}

func (id identity) source() string { return "eq://" + id.tenant + "/" + id.name }

// nkeyBase32 is the alphabet of nkeys: RFC 4648 base32, no padding.
var nkeyBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func between(s, begin, end string) string {
	_, rest, ok := strings.Cut(s, begin)
	if !ok {
		return ""
	}
	inner, _, _ := strings.Cut(rest, end)
	return strings.TrimSpace(inner)
}

// readCreds reads a creds file: the user JWT's claims and the seed.
func readCreds(t *testing.T, path string) identity {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	jwt := between(text, "-----BEGIN NATS USER JWT-----", "------END NATS USER JWT------")
	seed := between(text, "-----BEGIN USER NKEY SEED-----", "------END USER NKEY SEED------")
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || seed == "" {
		t.Fatalf("%s: no JWT or seed", path)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Name string `json:"name"`
		Sub  string `json:"sub"`
		NATS struct {
			Tags []string `json:"tags"`
		} `json:"nats"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	id := identity{name: claims.Name, keyID: claims.Sub}
	for _, tag := range claims.NATS.Tags {
		k, v, _ := strings.Cut(tag, ":")
		switch k {
		case "tenant":
			id.tenant = v
		case "role":
			id.role = v
		case "cap":
			id.capabilities = append(id.capabilities, v)
		}
	}
	decodedSeed, err := nkeyBase32.DecodeString(seed)
	if err != nil || len(decodedSeed) != 36 {
		t.Fatalf("seed: %v", err)
	}
	id.key = ed25519.NewKeyFromSeed(decodedSeed[2:34])
	// The seed's public key is the one inside sub: prefix 0xA0, 32 bytes, CRC.
	pub, err := nkeyBase32.DecodeString(claims.Sub)
	if err != nil || len(pub) != 35 || pub[0] != 0xA0 || !bytes.Equal(pub[1:33], id.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("sub %s is not the seed's public key", claims.Sub)
	}
	return id
}

// publicKey decodes a public user nkey (U...).
func publicKey(nkey string) (ed25519.PublicKey, bool) {
	raw, err := nkeyBase32.DecodeString(nkey)
	if err != nil || len(raw) != 35 || raw[0] != 0xA0 {
		return nil, false
	}
	return ed25519.PublicKey(raw[1:33]), true
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// percentEncode: space, '"', '%' and bytes outside 0x21-0x7E become %XX.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c == '"' || c == '%' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func percentDecode(s string) (string, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated %%")
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", err
		}
		b = append(b, byte(v))
		i += 2
	}
	return string(b), nil
}

// canonicalTime is the form of time that is sent and hashed (§5 step 4).
func canonicalTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

const payloadType = "https://cloudevents.io/verifiability/dsse/v0.1"

func sha(b []byte) []byte { d := sha256.Sum256(b); return d[:] }

// material is the verification material (§5 steps 4 and 5).
func material(attrs, exts map[string]string, signed []string, data []byte) []byte {
	var seq []byte
	for _, a := range []string{"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject"} {
		seq = append(seq, sha([]byte(attrs[a]))...)
	}
	seq = append(seq, sha([]byte(canonicalTime(attrs["time"])))...)
	seq = append(seq, sha(data)...)
	for _, name := range signed {
		seq = append(seq, sha([]byte(name))...)
		seq = append(seq, sha([]byte(exts[name]))...)
	}
	return sha(seq)
}

func pae(m []byte) []byte {
	return append([]byte(fmt.Sprintf("DSSEv1 %d %s %d ", len(payloadType), payloadType, len(m))), m...)
}

// sign returns signedextattrs and dssematerial for an event (§5).
func sign(id identity, attrs, exts map[string]string, data []byte) (string, string) {
	var names []string
	for name := range exts {
		names = append(names, name)
	}
	slices.Sort(names)
	m := material(attrs, exts, names, data)
	sig := ed25519.Sign(id.key, pae(m))
	envelope := fmt.Sprintf(`{"payloadType":%q,"payload":%q,"signatures":[{"keyid":%q,"sig":%q}]}`,
		payloadType, base64.StdEncoding.EncodeToString(m), id.keyID, base64.StdEncoding.EncodeToString(sig))
	return strings.Join(names, ","), base64.StdEncoding.EncodeToString([]byte(envelope))
}

// event is a CloudEvent as the test builds or reads it.
type event struct {
	attrs map[string]string
	exts  map[string]string
	data  []byte
}

// newEvent is an event from id, of type typ, with data, now.
func newEvent(id identity, typ, data string, exts map[string]string) event {
	if exts == nil {
		exts = map[string]string{}
	}
	return event{
		attrs: map[string]string{
			"specversion": "1.0", "id": newID(), "source": id.source(), "type": typ,
			"datacontenttype": "application/json", "time": time.Now().UTC().Format(time.RFC3339Nano),
		},
		exts: exts,
		data: []byte(data),
	}
}

// binary signs e and puts it on a binary-mode message for subject (§4).
func (e event) binary(id identity, subject string) *nats.Msg {
	signed, dsse := sign(id, e.attrs, e.exts, e.data)
	msg := nats.NewMsg(subject)
	for k, v := range e.attrs {
		msg.Header.Set("ce-"+k, percentEncode(v))
	}
	for k, v := range e.exts {
		msg.Header.Set("ce-"+k, percentEncode(v))
	}
	if signed != "" {
		msg.Header.Set("ce-signedextattrs", signed)
	}
	msg.Header.Set("ce-dssematerial", dsse)
	msg.Data = e.data
	return msg
}

// structured signs e and puts it on a structured-mode message: the data
// member is written right after its colon, so its bytes are the data.
func (e event) structured(id identity, subject string) *nats.Msg {
	signed, dsse := sign(id, e.attrs, e.exts, e.data)
	var b bytes.Buffer
	b.WriteByte('{')
	members := map[string]string{}
	for k, v := range e.attrs {
		members[k] = v
	}
	for k, v := range e.exts {
		members[k] = v
	}
	members["signedextattrs"] = signed
	members["dssematerial"] = dsse
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range members {
			if !yield(k) {
				return
			}
		}
	}) {
		key, _ := json.Marshal(k)
		value, _ := json.Marshal(members[k])
		fmt.Fprintf(&b, "%s:%s,", key, value)
	}
	b.WriteString(`"data":`)
	b.Write(e.data)
	b.WriteByte('}')
	msg := nats.NewMsg(subject)
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	msg.Data = b.Bytes()
	return msg
}

// readBinary reads a binary-mode message's attributes and extensions.
func readBinary(t *testing.T, msg *nats.Msg) event {
	t.Helper()
	core := []string{"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"}
	e := event{attrs: map[string]string{}, exts: map[string]string{}, data: msg.Data}
	for k, vs := range msg.Header {
		name, ok := strings.CutPrefix(strings.ToLower(k), "ce-")
		if !ok || len(vs) != 1 {
			continue
		}
		v, err := percentDecode(vs[0])
		if err != nil {
			t.Fatalf("header %s: %v", k, err)
		}
		if slices.Contains(core, name) {
			e.attrs[name] = v
		} else {
			e.exts[name] = v
		}
	}
	return e
}

// verify checks e's signature with the one key trusted for its source
// (§6), and its freshness; it returns why not, or "".
func verify(e event, trustedKeyID string, now time.Time) string {
	raw, err := base64.StdEncoding.DecodeString(e.exts["dssematerial"])
	if err != nil {
		return "dssematerial is not base64"
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return "not a DSSE envelope"
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil || env.PayloadType != payloadType || len(payload) != 32 {
		return "bad payload"
	}
	pub, ok := publicKey(trustedKeyID)
	if !ok {
		return "bad trusted key"
	}
	valid := false
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if s.KeyID == trustedKeyID && err == nil && ed25519.Verify(pub, pae(payload), sig) {
			valid = true
		}
	}
	if !valid {
		return "no valid signature by " + trustedKeyID
	}
	var signed []string
	if s := e.exts["signedextattrs"]; s != "" {
		signed = strings.Split(s, ",")
	}
	for _, name := range signed {
		if _, ok := e.exts[name]; !ok || name == "dssematerial" || name == "signedextattrs" {
			return "bad signedextattrs"
		}
	}
	if !bytes.Equal(material(e.attrs, e.exts, signed, e.data), payload) {
		return "the material differs: modified after signing"
	}
	at, err := time.Parse(time.RFC3339Nano, e.attrs["time"])
	if err != nil || at.Sub(now).Abs() > 2*time.Minute {
		return "stale"
	}
	return ""
}

// schemas are docs/schema/*.json, compiled.
type schemas map[string]*jsonschema.Schema

func loadSchemas(t *testing.T) schemas {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "schema", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas in docs/schema: %v", err)
	}
	out := schemas{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		url := "file:///" + filepath.Base(f)
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = s
	}
	return out
}

// schemaOf names the body of an event the orchestrator sends (the event
// table of docs/protocol.md §10).
func schemaOf(subject, typ string) string {
	verb := strings.TrimSuffix(strings.TrimPrefix(typ, "io.equilateral."), ".v1")
	switch {
	case strings.HasPrefix(subject, "_INBOX_"):
		return map[string]string{"task.accepted": "Accepted", "task.refused": "Refused", "task.view": "TaskView", "task.listing": "Listing"}[verb]
	case strings.HasPrefix(subject, "eq.client."):
		if verb == "task.progress" || verb == "task.partial" {
			return "Report"
		}
		return "TaskView"
	case strings.HasPrefix(subject, "eq.cap."):
		return "Dispatch"
	case strings.HasPrefix(subject, "eq.ctl."):
		return map[string]string{"control.cancel": "Cancel", "subtask.finished": "TaskView", "report.refused": "Refused"}[verb]
	}
	return ""
}

func (s schemas) validate(name string, data []byte) error {
	schema, ok := s[name]
	if !ok {
		return fmt.Errorf("no schema %q", name)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return schema.Validate(inst)
}
