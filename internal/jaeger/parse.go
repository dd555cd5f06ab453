package jaeger

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The OTLP-JSON of a v3 answer: {"result": TracesData}. Jaeger's marshaller
// writes ids as hex, enums as numbers and 64-bit integers as strings; the
// OTLP-JSON spec allows enum names and plain numbers too, and proto3 JSON
// writes bytes as base64, so each of those is accepted.

type wireResponse struct {
	Result *struct {
		ResourceSpans []wireResourceSpans `json:"resourceSpans"`
	} `json:"result"`
}

type wireResourceSpans struct {
	Resource struct {
		Attributes []wireKeyValue `json:"attributes"`
	} `json:"resource"`
	ScopeSpans []struct {
		Spans []wireSpan `json:"spans"`
	} `json:"scopeSpans"`
}

type wireSpan struct {
	TraceID           string         `json:"traceId"`
	SpanID            string         `json:"spanId"`
	ParentSpanID      string         `json:"parentSpanId"`
	Name              string         `json:"name"`
	Kind              wireEnum       `json:"kind"`
	StartTimeUnixNano wireUint       `json:"startTimeUnixNano"`
	EndTimeUnixNano   wireUint       `json:"endTimeUnixNano"`
	Attributes        []wireKeyValue `json:"attributes"`
	Links             []struct {
		TraceID string `json:"traceId"`
		SpanID  string `json:"spanId"`
	} `json:"links"`
	Status struct {
		Code    wireEnum `json:"code"`
		Message string   `json:"message"`
	} `json:"status"`
}

type wireKeyValue struct {
	Key   string    `json:"key"`
	Value wireValue `json:"value"`
}

// wireValue is an OTLP AnyValue: exactly one of its fields is set.
type wireValue struct {
	StringValue *string         `json:"stringValue"`
	BoolValue   *bool           `json:"boolValue"`
	IntValue    *wireInt        `json:"intValue"`
	DoubleValue *float64        `json:"doubleValue"`
	BytesValue  *string         `json:"bytesValue"`
	ArrayValue  json.RawMessage `json:"arrayValue"`
	KvlistValue json.RawMessage `json:"kvlistValue"`
}

// wireUint is a uint64 written as a JSON string or number.
type wireUint uint64

func (u *wireUint) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(string(bytes.Trim(b, `"`)), 10, 64)
	if err != nil {
		return fmt.Errorf("not an unsigned integer: %s", b)
	}
	*u = wireUint(v)
	return nil
}

// wireInt is an int64 written as a JSON string or number.
type wireInt int64

func (i *wireInt) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(string(bytes.Trim(b, `"`)), 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*i = wireInt(v)
	return nil
}

// wireEnum is a protobuf enum written as its number or its name.
type wireEnum struct {
	number int
	name   string
}

func (e *wireEnum) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.name)
	}
	return json.Unmarshal(b, &e.number)
}

// is reports whether the enum is the value number, written as a number or
// as a name with the suffix.
func (e wireEnum) is(number int, suffix string) bool {
	if e.name != "" {
		return strings.HasSuffix(e.name, suffix)
	}
	return e.number == number
}

func (e wireEnum) kind() Kind {
	for _, k := range []struct {
		n      int
		suffix string
		kind   Kind
	}{
		{1, "_INTERNAL", KindInternal},
		{2, "_SERVER", KindServer},
		{3, "_CLIENT", KindClient},
		{4, "_PRODUCER", KindProducer},
		{5, "_CONSUMER", KindConsumer},
	} {
		if e.is(k.n, k.suffix) {
			return k.kind
		}
	}
	return KindUnspecified
}

func (e wireEnum) statusCode() StatusCode {
	switch {
	case e.is(1, "_OK"):
		return StatusOK
	case e.is(2, "_ERROR"):
		return StatusError
	}
	return StatusUnset
}

// parseTrace reads the spans of a v3 answer, sorted by start time.
func parseTrace(body []byte) ([]Span, error) {
	var resp wireResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decode OTLP-JSON: %w", err)
	}
	if resp.Result == nil {
		return nil, errors.New(`decode OTLP-JSON: no "result"`)
	}
	var spans []Span
	for _, rs := range resp.Result.ResourceSpans {
		service := attributes(rs.Resource.Attributes)["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, ws := range ss.Spans {
				s, err := newSpan(ws, service)
				if err != nil {
					return nil, err
				}
				spans = append(spans, s)
			}
		}
	}
	slices.SortStableFunc(spans, func(a, b Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	})
	return spans, nil
}

func newSpan(ws wireSpan, service string) (Span, error) {
	s := Span{
		Name:       ws.Name,
		Service:    service,
		Kind:       ws.Kind.kind(),
		Start:      unixNano(ws.StartTimeUnixNano),
		End:        unixNano(ws.EndTimeUnixNano),
		Attributes: attributes(ws.Attributes),
		Status:     Status{Code: ws.Status.Code.statusCode(), Message: ws.Status.Message},
	}
	var err error
	if s.TraceID, err = decodeID(ws.TraceID, 16); err != nil {
		return Span{}, fmt.Errorf("span %q: trace id: %w", ws.Name, err)
	}
	if s.SpanID, err = decodeID(ws.SpanID, 8); err != nil {
		return Span{}, fmt.Errorf("span %q: span id: %w", ws.Name, err)
	}
	if ws.ParentSpanID != "" {
		if s.ParentSpanID, err = decodeID(ws.ParentSpanID, 8); err != nil {
			return Span{}, fmt.Errorf("span %q: parent span id: %w", ws.Name, err)
		}
		if s.ParentSpanID == strings.Repeat("0", 16) {
			s.ParentSpanID = ""
		}
	}
	for _, l := range ws.Links {
		var link Link
		if link.TraceID, err = decodeID(l.TraceID, 16); err != nil {
			return Span{}, fmt.Errorf("span %q: link trace id: %w", ws.Name, err)
		}
		if link.SpanID, err = decodeID(l.SpanID, 8); err != nil {
			return Span{}, fmt.Errorf("span %q: link span id: %w", ws.Name, err)
		}
		s.Links = append(s.Links, link)
	}
	return s, nil
}

// decodeID turns an id of size bytes, written in hex (Jaeger) or base64
// (proto3 JSON), into lower-case hex.
func decodeID(s string, size int) (string, error) {
	if h := strings.ToLower(s); isHex(h, 2*size) {
		return h, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == size {
		return hex.EncodeToString(b), nil
	}
	return "", fmt.Errorf("%q is neither %d hex digits nor %d bytes in base64", s, 2*size, size)
}

func unixNano(n wireUint) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

// attributes flattens OTLP attributes to strings; nil when there are none.
func attributes(kvs []wireKeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// String is the value as text: strings as they are, numbers in decimal,
// bytes in base64, arrays and maps as their OTLP-JSON.
func (v wireValue) String() string {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.BoolValue != nil:
		return strconv.FormatBool(*v.BoolValue)
	case v.IntValue != nil:
		return strconv.FormatInt(int64(*v.IntValue), 10)
	case v.DoubleValue != nil:
		return strconv.FormatFloat(*v.DoubleValue, 'g', -1, 64)
	case v.BytesValue != nil:
		return *v.BytesValue
	case v.ArrayValue != nil:
		return string(v.ArrayValue)
	case v.KvlistValue != nil:
		return string(v.KvlistValue)
	}
	return ""
}
