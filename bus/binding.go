package bus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// The CloudEvents NATS protocol binding. Binary mode (what we send): each
// attribute is a "ce-<name>" header with its value percent-encoded, and
// the data is the message body. Structured mode: the body is the JSON
// event format and Content-Type says so. We read both.
const (
	headerPrefix         = "ce-"
	headerContentType    = "Content-Type"
	structuredJSONType   = "application/cloudevents+json"
	structuredTypePrefix = "application/cloudevents"
)

// isJSONContent reports whether the JSON event format carries data of
// this datacontenttype as a JSON value (rather than a string): the media
// types sdk-go's reader takes as JSON, parameters ignored.
func isJSONContent(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		return true
	}
	return false
}

// DefaultMaxEventSize bounds an encoded event (headers and body): NATS's
// default max payload.
const DefaultMaxEventSize = 1 << 20

// EncodeBinary renders e as a binary-mode NATS message for subject.
func EncodeBinary(subject string, e *event.Event) (*nats.Msg, error) {
	msg := nats.NewMsg(subject)
	msg.Header.Set(headerPrefix+"specversion", percentEncode(e.SpecVersion()))
	msg.Header.Set(headerPrefix+"id", percentEncode(e.ID()))
	msg.Header.Set(headerPrefix+"source", percentEncode(e.Source()))
	msg.Header.Set(headerPrefix+"type", percentEncode(e.Type()))
	if v := e.Subject(); v != "" {
		msg.Header.Set(headerPrefix+"subject", percentEncode(v))
	}
	if v := e.DataSchema(); v != "" {
		msg.Header.Set(headerPrefix+"dataschema", percentEncode(v))
	}
	if v := e.DataContentType(); v != "" {
		msg.Header.Set(headerPrefix+"datacontenttype", percentEncode(v))
	}
	if t := e.Time(); !t.IsZero() {
		msg.Header.Set(headerPrefix+"time", canonicalTime(t)) // the form the signature covers
	}
	for name, value := range e.Extensions() {
		s, err := types.Format(value)
		if err != nil {
			return nil, malformed("extension %q: %v", name, err)
		}
		msg.Header.Set(headerPrefix+name, percentEncode(s))
	}
	msg.Data = e.Data()
	return msg, nil
}

// EncodeStructured renders e in structured mode (JSON event format). sdk-go
// writes "time" in canonicalTime's form too (TestTimeOnTheWire). JSON data
// is written byte for byte as signed, never re-encoded: encoding/json would
// compact it and escape <, > and &, and the signature covers the bytes.
func EncodeStructured(subject string, e *event.Event) (*nats.Msg, error) {
	var body []byte
	var err error
	if data := e.Data(); len(data) > 0 && isJSONContent(e.DataContentType()) && json.Valid(data) {
		bare := e.Clone()
		bare.DataEncoded = nil
		body, err = json.Marshal(bare)
		if err == nil {
			body = append(body[:len(body)-1], `,"data":`...)
			body = append(append(body, data...), '}')
		}
	} else {
		body, err = json.Marshal(e)
	}
	if err != nil {
		return nil, malformed("%v", err)
	}
	msg := nats.NewMsg(subject)
	msg.Header.Set(headerContentType, structuredJSONType)
	msg.Data = body
	return msg, nil
}

// Decode reads a binary- or structured-mode message. It refuses a message
// larger than maxSize (headers and body) before parsing anything.
func Decode(msg *nats.Msg, maxSize int) (*event.Event, error) {
	if size := messageSize(msg); size > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, maxSize)
	}
	if ct := msg.Header.Get(headerContentType); strings.HasPrefix(ct, structuredTypePrefix) {
		return decodeStructured(msg.Data)
	}
	return decodeBinary(msg)
}

func decodeStructured(body []byte) (_ *event.Event, err error) {
	// sdk-go's JSON reader panics on some inputs (data_base64 that is not
	// a string, v2.16.2): refuse them instead of crashing the receiver.
	defer func() {
		if r := recover(); r != nil {
			err = malformed("structured event: unreadable JSON event format")
		}
	}()
	e := event.New()
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, malformed("structured event: %v", sanitize(err.Error()))
	}
	if isJSONContent(e.DataContentType()) && !e.DataBase64 {
		// sdk-go keeps the whitespace between "data": and the value; it is
		// not part of the value, so it is not part of the signed data.
		e.DataEncoded = bytes.TrimSpace(e.DataEncoded)
	}
	// The same rules as binary mode: sdk-go's reader validates nothing.
	if e.SpecVersion() != event.CloudEventsVersionV1 {
		return nil, malformed("specversion must be 1.0")
	}
	if err := e.Validate(); err != nil {
		return nil, malformed("%v", sanitize(err.Error()))
	}
	if t := e.Time(); !t.IsZero() && !inRFC3339Range(t) {
		return nil, malformed("time is outside the years RFC 3339 can write")
	}
	for _, s := range []string{e.ID(), e.Source(), e.Type(), e.Subject(), e.DataSchema(), e.DataContentType()} {
		if !utf8.ValidString(s) {
			return nil, malformed("structured event: attribute is not UTF-8")
		}
	}
	for name, v := range e.Extensions() {
		if !validExtensionName(name) {
			return nil, malformed("extension %q is not a CloudEvents attribute name", clip(name))
		}
		if s, ok := v.(string); ok && !utf8.ValidString(s) {
			return nil, malformed("extension %q is not UTF-8", name)
		}
	}
	return &e, nil
}

func decodeBinary(msg *nats.Msg) (*event.Event, error) {
	spec, err := header(msg, "specversion")
	if err != nil {
		return nil, err
	}
	if spec != event.CloudEventsVersionV1 {
		return nil, malformed("ce-specversion must be 1.0")
	}
	e := event.New(event.CloudEventsVersionV1)
	ec := e.Context.(*event.EventContextV1)
	var seen uint
	for key, values := range msg.Header {
		name, ok := cutPrefixFold(key, headerPrefix)
		if !ok {
			continue
		}
		if len(values) != 1 {
			return nil, malformed("header %q repeated", clip(key))
		}
		// Header names are matched without case: "ce-id" and "CE-ID"
		// name one attribute, and map order must not pick the value.
		name = strings.ToLower(name)
		if bit, core := coreHeaderBits[name]; core {
			if seen&bit != 0 {
				return nil, malformed("header %q repeated", clip(key))
			}
			seen |= bit
		} else if _, dup := ec.Extensions[name]; dup {
			return nil, malformed("header %q repeated", clip(key))
		}
		value, err := percentDecode(values[0])
		if err != nil {
			return nil, malformed("header %q: %v", clip(key), err)
		}
		switch name {
		case "specversion":
		case "id":
			e.SetID(value)
		case "source":
			e.SetSource(value)
		case "type":
			e.SetType(value)
		case "subject":
			e.SetSubject(value)
		case "dataschema":
			e.SetDataSchema(value)
		case "datacontenttype":
			e.SetDataContentType(value)
		case "time":
			t, err := parseTime(value)
			if err != nil {
				return nil, err
			}
			e.SetTime(t)
		default:
			if !validExtensionName(name) {
				return nil, malformed("header %q is not a CloudEvents attribute", clip(key))
			}
			e.SetExtension(name, value)
		}
	}
	if err := e.Validate(); err != nil {
		return nil, malformed("%v", sanitize(err.Error()))
	}
	if len(msg.Data) > 0 {
		e.DataEncoded = msg.Data
	}
	return &e, nil
}

// parseTime reads ce-time in any RFC 3339 form another sender may use (an
// offset, trailing zeros in the fraction), as sdk-go does in structured
// mode. Verification hashes canonicalTime of the result, never the string:
// every form of one instant verifies, and what a receiver gets is the
// instant. Go keeps nanoseconds; digits past the ninth are dropped, here
// and in structured mode alike, so they are neither signed nor handed on.
// A time that has no RFC 3339 form in UTC (year past 9999 or before 0000
// once the offset is applied) is refused: it could not be re-rendered.
func parseTime(value string) (time.Time, error) {
	t, err := types.ParseTime(value)
	if err != nil {
		return time.Time{}, malformed("ce-time is not RFC 3339")
	}
	if !inRFC3339Range(t) {
		return time.Time{}, malformed("ce-time is outside the years RFC 3339 can write")
	}
	return t, nil
}

var coreHeaderBits = map[string]uint{
	"specversion": 1 << 0, "id": 1 << 1, "source": 1 << 2, "type": 1 << 3, "subject": 1 << 4,
	"dataschema": 1 << 5, "datacontenttype": 1 << 6, "time": 1 << 7,
}

func header(msg *nats.Msg, name string) (string, error) {
	for key, values := range msg.Header {
		if n, ok := cutPrefixFold(key, headerPrefix); ok && strings.EqualFold(n, name) && len(values) > 0 {
			v, err := percentDecode(values[0])
			if err != nil {
				return "", malformed("header %q: %v", clip(key), err)
			}
			return v, nil
		}
	}
	return "", malformed("no ce-%s header (not a CloudEvent)", name)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// messageSize approximates the wire size: body plus header lines.
func messageSize(msg *nats.Msg) int {
	n := len(msg.Data)
	for k, vs := range msg.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// percentEncode follows the HTTP binding's rule (section 3.1.3.2), which
// the NATS binding adopts: space, '"', '%' and every byte outside printable
// ASCII are percent-encoded from the value's UTF-8 form.
func percentEncode(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(c byte) bool { return c <= 0x20 || c == '"' || c == '%' || c >= 0x7f }

// percentDecode reverses percentEncode and insists on UTF-8.
func percentDecode(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("not UTF-8")
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated percent-encoding")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad percent-encoding")
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("not UTF-8")
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// sanitize keeps library error text to one printable line.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return clip(s)
}
