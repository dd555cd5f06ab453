package bus

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Fuzz tests of everything that reads bytes a sender controls. Plain
// `go test` runs the f.Add seeds and the corpus in testdata/fuzz; to fuzz:
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s ./bus/
//
// (one fuzz target per run).

// failBug reports the return of a bug these fuzzers found once; the
// inputs that found them are in testdata/fuzz:
//   - sdk-data-base64-panic: sdk-go v2.16.2 panics on a structured event
//     whose data_base64 is not a JSON string (decodeStructured recovers);
//   - structured-unvalidated: structured mode skipped binary mode's checks;
//   - binary-case-duplicates: "ce-id" and "CE-ID" both accepted, one at
//     random;
//   - specversion-error-unwrapped: a bad ce-specversion was not ErrMalformed.
func failBug(t *testing.T, bug, format string, args ...any) {
	t.Helper()
	t.Fatalf("bug %s: %s", bug, fmt.Sprintf(format, args...))
}

// decodeGuarded is Decode with a panic turned into a test failure.
func decodeGuarded(t *testing.T, msg *nats.Msg, maxSize int) (e *event.Event, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			stack := debug.Stack()
			if bytes.Contains(stack, []byte("event.consumeDataAsBytes")) {
				failBug(t, "sdk-data-base64-panic", "Decode panicked: %v", r)
			}
			t.Fatalf("Decode panicked: %v\n%s", r, stack)
		}
	}()
	return Decode(msg, maxSize)
}

// fuzzMsg builds a message from "key:value" lines. Keys are taken as they
// are (any case, any bytes, repeats allowed), as a hostile client could
// send them.
func fuzzMsg(headers string, body []byte, structured bool) *nats.Msg {
	msg := nats.NewMsg("eq.fuzz")
	for line := range strings.SplitSeq(headers, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		msg.Header[k] = append(msg.Header[k], v)
	}
	if structured {
		msg.Header.Set(headerContentType, structuredJSONType)
	}
	msg.Data = body
	return msg
}

// headerLines renders msg's headers in fuzzMsg's input format.
func headerLines(msg *nats.Msg) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(msg.Header)) {
		for _, v := range msg.Header[k] {
			b.WriteString(k + ":" + v + "\n")
		}
	}
	return b.String()
}

// caseDuplicate names two ce- headers of msg that differ only in case.
func caseDuplicate(msg *nats.Msg) string {
	seen := map[string]string{}
	for k := range msg.Header {
		if _, ok := cutPrefixFold(k, headerPrefix); !ok {
			continue
		}
		lk := strings.ToLower(k)
		if other, ok := seen[lk]; ok {
			return fmt.Sprintf("%q and %q", other, k)
		}
		seen[lk] = k
	}
	return ""
}

// binaryValid is what decodeBinary checks beyond the wire format
// (specversion 1.0, Validate, attribute names, UTF-8): the checks
// decodeStructured should make too.
func binaryValid(e *event.Event) bool {
	if e.SpecVersion() != event.CloudEventsVersionV1 || e.Validate() != nil {
		return false
	}
	for _, s := range []string{e.ID(), e.Source(), e.Type(), e.Subject(), e.DataSchema(), e.DataContentType()} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for name, v := range e.Extensions() {
		if s, _ := types.Format(v); !validExtensionName(name) || !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// checkErrorText: refusal reasons go to logs and to the sender; they must
// be one line.
func checkErrorText(t *testing.T, err error) {
	t.Helper()
	if s := err.Error(); strings.ContainsAny(s, "\r\n") {
		t.Fatalf("error text is not one line: %q", s)
	}
}

// eventDiff describes how a and b differ, "" if they carry the same
// attributes, data and extensions (compared in their string form, which is
// what binary mode can carry).
func eventDiff(a, b *event.Event) string {
	var d []string
	cmp := func(name, x, y string) {
		if x != y {
			d = append(d, fmt.Sprintf("%s %q != %q", name, x, y))
		}
	}
	cmp("specversion", a.SpecVersion(), b.SpecVersion())
	cmp("id", a.ID(), b.ID())
	cmp("source", a.Source(), b.Source())
	cmp("type", a.Type(), b.Type())
	cmp("subject", a.Subject(), b.Subject())
	cmp("dataschema", a.DataSchema(), b.DataSchema())
	cmp("datacontenttype", a.DataContentType(), b.DataContentType())
	if !a.Time().Equal(b.Time()) {
		d = append(d, fmt.Sprintf("time %v != %v", a.Time(), b.Time()))
	}
	if !bytes.Equal(a.Data(), b.Data()) {
		d = append(d, fmt.Sprintf("data %q != %q", a.Data(), b.Data()))
	}
	ea, eb := formattedExtensions(a), formattedExtensions(b)
	for name := range mergedKeys(ea, eb) {
		va, oka := ea[name]
		vb, okb := eb[name]
		if oka != okb || va != vb {
			d = append(d, fmt.Sprintf("extension %s: %q (%v) != %q (%v)", name, va, oka, vb, okb))
		}
	}
	return strings.Join(d, "; ")
}

func formattedExtensions(e *event.Event) map[string]string {
	out := map[string]string{}
	for name, v := range e.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			s = fmt.Sprintf("unformattable %T", v)
		}
		out[name] = s
	}
	return out
}

func mergedKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// fuzzNow is the fixed clock of the fuzz tests.
var fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func fuzzSeedEvents(t testing.TB) (binary, structured *nats.Msg) {
	kp, err := nkeys.FromSeed(fuzzSeed)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	s, err := NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	e := testEvent("eq://acme/alice", "seed-1", fuzzNow)
	e.SetDataSchema("https://example.com/schema")
	if err := s.Sign(e); err != nil {
		t.Fatal(err)
	}
	if binary, err = EncodeBinary("eq.fuzz", e); err != nil {
		t.Fatal(err)
	}
	if structured, err = EncodeStructured("eq.fuzz", e); err != nil {
		t.Fatal(err)
	}
	return binary, structured
}

func FuzzDecode(f *testing.F) {
	bin, st := fuzzSeedEvents(f)
	f.Add(headerLines(bin), bin.Data, false)
	f.Add("", st.Data, true)
	minimal := "ce-specversion:1.0\nce-id:1\nce-source:eq://acme/a\nce-type:t\n"
	f.Add(minimal, []byte(nil), false)
	f.Add("CE-SPECVERSION:1.0\nCe-Id:%22%25%20%C3%BC\nce-SOURCE:/x\nce-type:t\nce-time:2025-06-01T12:00:00.5+02:00\nce-foo:%00\n", []byte("x"), false)
	f.Add(minimal+"ce-id:2\n", []byte(nil), false)     // repeated
	f.Add(minimal+"CE-ID:2\n", []byte(nil), false)     // repeated in another case
	f.Add(minimal+"ce-bad%zz:1\n", []byte(nil), false) // not an attribute name
	f.Add(minimal+"ce-x:%C3\n", []byte(nil), false)    // not UTF-8
	f.Add(minimal+"ce-x:%4\n", []byte(nil), false)     // truncated escape
	f.Add(minimal+"ce-data:1\n", []byte(nil), false)   // core name as extension
	f.Add(minimal+"ce-time:yesterday\n", []byte(nil), false)
	f.Add("", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"aGk="}`), true)
	f.Add("", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi","n":3,"b":true}`), true)
	f.Add("", []byte(`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`), true)
	f.Add("", []byte(`{"specversion":"1.0","data_base64":1}`), true)
	f.Add("", []byte(`not json`), true)
	f.Add("ce-specversion:1.0\n", []byte(`{"specversion":"1.0"}`), false)

	f.Fuzz(func(t *testing.T, headers string, body []byte, structured bool) {
		msg := fuzzMsg(headers, body, structured)
		e, err := decodeGuarded(t, msg, DefaultMaxEventSize)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				switch err.Error() {
				case "truncated percent-encoding", "bad percent-encoding", "not UTF-8":
					failBug(t, "specversion-error-unwrapped", "%v", err)
				}
				t.Fatalf("Decode error matches no sentinel: %v", err)
			}
			checkErrorText(t, err)
			return
		}
		if e == nil || e.Context == nil {
			t.Fatal("Decode returned no event and no error")
		}
		binaryMode := !strings.HasPrefix(msg.Header.Get(headerContentType), structuredTypePrefix)
		if dup := caseDuplicate(msg); dup != "" && binaryMode {
			failBug(t, "binary-case-duplicates", "headers %s accepted", dup)
		}
		// Decoding is deterministic (map order must not matter).
		for range 4 {
			again, err := decodeGuarded(t, msg, DefaultMaxEventSize)
			d := ""
			if err != nil {
				d = "refused: " + err.Error()
			} else {
				d = eventDiff(e, again)
			}
			if d != "" {
				if dup := caseDuplicate(msg); dup != "" {
					failBug(t, "binary-case-duplicates", "headers %s: decoded twice differently: %s", dup, d)
				}
				t.Fatalf("same message decoded twice differently: %s", d)
			}
		}
		// Round trip: what we accept, we can send on unchanged.
		out, err := EncodeBinary("eq.fuzz", e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		back, err := decodeGuarded(t, out, 4*DefaultMaxEventSize)
		if err != nil {
			if !binaryMode && !binaryValid(e) {
				failBug(t, "structured-unvalidated", "structured event accepted, its binary form refused: %v", err)
			}
			t.Fatalf("re-encoded event refused: %v\nheaders: %q", err, headerLines(out))
		}
		if d := eventDiff(e, back); d != "" {
			t.Fatalf("round trip changed the event: %s", d)
		}
	})
}

func FuzzPercentEncoding(f *testing.F) {
	for _, s := range []string{"", "plain", "a b", `say "hi"`, "100%", "ünïcode", "\x00\x1f\x7f", "%41", "%", "%4", "%zz", "%C3", "\xff", "%e2%82%ac", "€"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Decoding arbitrary input: no panic; what it returns is UTF-8 and
		// survives a round trip.
		if dec, err := percentDecode(s); err == nil {
			if !utf8.ValidString(dec) {
				t.Fatalf("percentDecode(%q) = %q, not UTF-8", s, dec)
			}
			if again, err := percentDecode(percentEncode(dec)); err != nil || again != dec {
				t.Fatalf("percentDecode(%q) = %q does not round-trip: %q, %v", s, dec, again, err)
			}
		}
		if !utf8.ValidString(s) {
			return
		}
		enc := percentEncode(s)
		for i := 0; i < len(enc); i++ {
			c := enc[i]
			if c == '%' {
				if i+2 >= len(enc) || !isUpperHex(enc[i+1]) || !isUpperHex(enc[i+2]) {
					t.Fatalf("percentEncode(%q) = %q: bad escape at %d", s, enc, i)
				}
				i += 2
				continue
			}
			if needsEscape(c) || c < 0x21 || c > 0x7e {
				t.Fatalf("percentEncode(%q) = %q: unescaped byte %#x", s, enc, c)
			}
		}
		clean := !strings.ContainsFunc(s, func(r rune) bool { return r > 0x7e || needsEscape(byte(r)) })
		if clean != (enc == s) {
			t.Fatalf("percentEncode(%q) = %q: changed a clean string or kept a dirty one", s, enc)
		}
		dec, err := percentDecode(enc)
		if err != nil || dec != s {
			t.Fatalf("percentDecode(percentEncode(%q)) = %q, %v", s, dec, err)
		}
	})
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func FuzzParseSignedExtAttrs(f *testing.F) {
	for _, s := range []string{"", "a", "causationid,traceparent", "a,a", "a,,b", ",", "a, b", "A", "id", "data", "data_base64",
		"dssematerial", "signedextattrs", "traceparent,tracestate,x1", strings.Repeat("a", 64), strings.Repeat("a", 65), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := parseSignedExtAttrs(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error matches no sentinel: %v", err)
			}
			checkErrorText(t, err)
			if names != nil {
				t.Fatalf("names %q with an error", names)
			}
			return
		}
		if s == "" {
			if names != nil {
				t.Fatalf("empty value gave names %q", names)
			}
			return
		}
		if got := strings.Join(names, ","); got != s {
			t.Fatalf("names %q do not spell %q", names, s)
		}
		seen := map[string]bool{}
		for _, n := range names {
			switch {
			case !validExtensionName(n):
				t.Fatalf("accepted invalid name %q", n)
			case seen[n]:
				t.Fatalf("accepted repeated name %q", n)
			case coreAttributes[n], n == ExtDSSEMaterial, n == ExtSignedExtAttrs:
				t.Fatalf("accepted reserved name %q", n)
			}
			seen[n] = true
			// Every accepted name is one sdk-go can carry as an extension.
			if !event.IsExtensionNameValid(n) {
				t.Fatalf("accepted %q, which sdk-go refuses", n)
			}
		}
	})
}

// fuzzSeed is a fixed user nkey seed, so corpus entries stay meaningful
// from run to run.
var fuzzSeed = func() []byte {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i*7 + 1)
	}
	seed, err := nkeys.EncodeSeed(nkeys.PrefixByteUser, raw)
	if err != nil {
		panic(err)
	}
	return seed
}()

// Mutations applied by FuzzVerify, as bits of its first argument.
const (
	mutMaterial   = 1 << iota // replace dssematerial
	mutAttrs                  // replace signedextattrs
	mutData                   // replace data
	mutBase64                 // with mutMaterial: base64-encode the fuzzed bytes first (they are the envelope JSON)
	mutWire                   // send through EncodeBinary and Decode before verifying
	mutDropAttrs              // remove signedextattrs
	mutStructured             // with mutWire: structured mode
	mutTime                   // move time by the nanoseconds in data's first 8 bytes (within the skew)
)

func FuzzVerify(f *testing.F) {
	const source = "eq://acme/alice"
	reg := NewStaticKeys()
	signer, err := NewSigner(fuzzSeed)
	if err != nil {
		f.Fatal(err)
	}
	if err := reg.Add(source, signer.KeyID()); err != nil {
		f.Fatal(err)
	}
	// A second known key, owned by another source.
	other := newTestPrincipal(f, reg, "eq://acme/mallory")

	original := testEvent(source, "fuzz-1", fuzzNow)
	if err := signer.Sign(original); err != nil {
		f.Fatal(err)
	}
	origMaterial := stringExtension(original, ExtDSSEMaterial)
	origAttrs := stringExtension(original, ExtSignedExtAttrs)
	origData := bytes.Clone(original.Data())
	origEnvelope, _ := base64.StdEncoding.DecodeString(origMaterial)
	origPayload, origSigs := envelopeParts(origEnvelope)
	if len(origPayload) != 32 || len(origSigs) != 1 {
		f.Fatal("cannot read the original envelope")
	}
	origSig := origSigs[0]

	f.Add(uint8(0), []byte(nil), "", []byte(nil))
	f.Add(uint8(mutWire), []byte(nil), "", []byte(nil))
	f.Add(uint8(mutWire|mutStructured), []byte(nil), "", []byte(nil))
	f.Add(uint8(mutMaterial|mutBase64), origEnvelope, "", []byte(nil))
	f.Add(uint8(mutMaterial), []byte(origMaterial), "", []byte(nil))
	// Other spellings of the same envelope: they verify.
	f.Add(uint8(mutMaterial|mutBase64|mutWire), []byte(strings.ReplaceAll(string(origEnvelope), `,"`, ` ,	"`)), "", []byte(nil))
	f.Add(uint8(mutMaterial|mutBase64), []byte(strings.Replace(string(origEnvelope), `[{`, `[{"keyid":"UNKNOWN","sig":"AAAA"},{`, 1)), "", []byte(nil))
	f.Add(uint8(mutMaterial|mutBase64), []byte(strings.Replace(string(origEnvelope), `"sig"`, `"sig":"AAAA","x"`, 1)), "", []byte(nil))
	f.Add(uint8(mutMaterial|mutBase64), []byte(`{"payloadType":"https://cloudevents.io/verifiability/dsse/v0.1","payload":"","signatures":[]}`), "", []byte(nil))
	f.Add(uint8(mutMaterial|mutBase64), []byte(`{"signatures":[{"keyid":"`+other.signer.KeyID()+`","sig":""}]}`), "", []byte(nil))
	f.Add(uint8(mutMaterial), []byte("!!"), "", []byte(nil))
	f.Add(uint8(mutAttrs), []byte(nil), "traceparent,causationid", []byte(nil))
	f.Add(uint8(mutAttrs), []byte(nil), "causationid", []byte(nil))
	f.Add(uint8(mutAttrs), []byte(nil), origAttrs+",id", []byte(nil))
	f.Add(uint8(mutDropAttrs), []byte(nil), "", []byte(nil))
	f.Add(uint8(mutData), []byte(nil), "", []byte(`{"hello":"mallory"}`))
	f.Add(uint8(mutData|mutWire), []byte(nil), "", origData)
	f.Add(uint8(mutData), []byte(nil), "", []byte(nil))
	f.Add(uint8(mutTime|mutWire), []byte(nil), "", []byte{1, 0, 0, 0, 0, 0, 0, 0})         // 1 ns later
	f.Add(uint8(mutTime|mutWire|mutStructured), []byte(nil), "", []byte{0x40, 0x42, 0x0f}) // 1 ms later

	f.Fuzz(func(t *testing.T, which uint8, material []byte, attrs string, data []byte) {
		e := original.Clone()
		if which&mutMaterial != 0 {
			s := string(material)
			if which&mutBase64 != 0 {
				s = base64.StdEncoding.EncodeToString(material)
			}
			e.SetExtension(ExtDSSEMaterial, s)
		}
		if which&mutAttrs != 0 {
			e.SetExtension(ExtSignedExtAttrs, attrs)
		}
		if which&mutDropAttrs != 0 {
			e.SetExtension(ExtSignedExtAttrs, nil)
		}
		if which&mutData != 0 {
			e.DataEncoded = data
		}
		if which&mutTime != 0 {
			var b [8]byte
			copy(b[:], data)
			shift := time.Duration(int64(binary.LittleEndian.Uint64(b[:])) % int64(DefaultSkew))
			e.SetTime(original.Time().Add(shift))
		}
		gotMaterial := stringExtension(&e, ExtDSSEMaterial)
		gotAttrs := stringExtension(&e, ExtSignedExtAttrs)
		materialChanged := gotMaterial != origMaterial
		forged := gotAttrs != origAttrs || !bytes.Equal(e.Data(), origData) || !e.Time().Equal(original.Time())

		in := &e
		if which&mutWire != 0 {
			encode := EncodeBinary
			if which&mutStructured != 0 {
				encode = EncodeStructured
			}
			msg, err := encode("eq.fuzz", &e)
			if err != nil {
				return // not representable: nothing to send
			}
			in, err = decodeGuarded(t, msg, 4*DefaultMaxEventSize)
			if err != nil {
				if !materialChanged && !forged {
					t.Fatalf("valid signed event refused on the wire: %v", err)
				}
				return
			}
		}

		v := NewVerifier(reg, WithTenant("acme"), WithClock(func() time.Time { return fuzzNow }))
		got, err := v.Verify(context.Background(), in)
		if err != nil {
			if !slices.ContainsFunc([]error{ErrMalformed, ErrUnsigned, ErrBadSignature, ErrUnknownSigner, ErrSignerMismatch, ErrReplay}, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("Verify error matches no sentinel: %v", err)
			}
			checkErrorText(t, err)
			if !materialChanged && !forged {
				t.Fatalf("valid signed event refused: %v", err)
			}
			return
		}
		if forged {
			t.Fatalf("forged event verified (which=%#x): attrs %q, data %q", which, gotAttrs, e.Data())
		}
		// What comes out is exactly what was signed.
		want := coreCopy(original)
		for _, n := range strings.Split(origAttrs, ",") {
			want.SetExtension(n, original.Extensions()[n])
		}
		if d := eventDiff(want, got); d != "" {
			t.Fatalf("verified event differs from the signed one: %s", d)
		}
		if materialChanged {
			// Another spelling of the same envelope (JSON whitespace, field
			// order, extra unknown signatures, base64 padding bits) may
			// verify; another payload or signature must not.
			raw, _ := base64.StdEncoding.DecodeString(gotMaterial)
			payload, sigs := envelopeParts(raw)
			if !bytes.Equal(payload, origPayload) || !slices.ContainsFunc(sigs, func(s []byte) bool { return bytes.Equal(s, origSig) }) {
				t.Fatalf("a different envelope verified: %q", raw)
			}
		}
	})
}

// envelopeParts reads a DSSE envelope leniently: the decoded payload and
// every signature that decodes.
func envelopeParts(raw []byte) (payload []byte, sigs [][]byte) {
	var env envelope
	if json.Unmarshal(raw, &env) != nil {
		return nil, nil
	}
	payload, _ = base64.StdEncoding.DecodeString(env.Payload)
	for _, s := range env.Signatures {
		if b, err := base64.StdEncoding.DecodeString(s.Sig); err == nil {
			sigs = append(sigs, b)
		}
	}
	return payload, sigs
}
