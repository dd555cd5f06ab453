package jaeger

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testdata/jaeger-v1.76.0.json was recorded from a real Jaeger v1.76.0 (GET
// /api/v3/traces/{id}) after TestTraceFromRealJaeger's spans: ids in hex,
// enums as numbers, times as strings.
const recordedTraceID = "b3a4d0d2a1cd9e7e2d9e2f9d7b2f3a11"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRecordedJaeger(t *testing.T) {
	spans, err := parseTrace(readFixture(t, "jaeger-v1.76.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4: %+v", len(spans), spans)
	}
	// Sorted by start: the submit first, its children after.
	want := []struct {
		name, service string
		kind          Kind
		child         bool
	}{
		{"submit", "eqtest-client", KindClient, false},
		{"send eq.tasks.submit", "eqtest-client", KindProducer, true},
		{"receive eq.tasks.submit", "eqtest-orchestrator", KindConsumer, true},
		{"dispatch code", "eqtest-orchestrator", KindInternal, true},
	}
	ids := map[string]bool{}
	for i, w := range want {
		s := spans[i]
		if s.Name != w.name || s.Service != w.service || s.Kind != w.kind || (s.ParentSpanID != "") != w.child {
			t.Errorf("span %d: %+v, want %+v", i, s, w)
		}
		if !isHex(s.TraceID, 32) || !isHex(s.SpanID, 16) || s.TraceID != recordedTraceID {
			t.Errorf("span %d ids %q %q", i, s.TraceID, s.SpanID)
		}
		if s.Start.IsZero() || s.End.Before(s.Start) {
			t.Errorf("span %d times %v %v", i, s.Start, s.End)
		}
		ids[s.SpanID] = true
	}
	for i, s := range spans[1:] {
		if !ids[s.ParentSpanID] {
			t.Errorf("span %d: parent %s not in the trace", i+1, s.ParentSpanID)
		}
	}
	if spans[0].Attributes["task.id"] != "t-1" || spans[0].Attributes["attempt"] != "2" || spans[0].Attributes["retry"] != "true" {
		t.Errorf("submit attributes %v", spans[0].Attributes)
	}
	recv := spans[2]
	if recv.Status != (Status{Code: StatusError, Message: "boom"}) || len(recv.Links) != 1 || recv.Links[0].SpanID != spans[0].SpanID {
		t.Errorf("receive: status %+v links %+v", recv.Status, recv.Links)
	}
}

// The proto3 JSON mapping of OTLP (bytes in base64, enum names, numbers
// unquoted) parses the same.
func TestParseProto3JSON(t *testing.T) {
	spans, err := parseTrace(readFixture(t, "proto3-json.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	switch {
	case s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanID != "00f067aa0ba902b7", s.ParentSpanID != "":
		t.Errorf("ids %q %q %q", s.TraceID, s.SpanID, s.ParentSpanID)
	case s.Service != "coder", s.Kind != KindConsumer, s.Name != "process eq.cap.code":
		t.Errorf("span %+v", s)
	case !s.Start.Equal(start), s.Duration() != 12500*time.Microsecond:
		t.Errorf("times %v %v", s.Start, s.End)
	case s.Status != (Status{Code: StatusError, Message: "boom"}):
		t.Errorf("status %+v", s.Status)
	case len(s.Links) != 1 || s.Links[0] != (Link{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"}):
		t.Errorf("links %+v", s.Links)
	}
	for k, v := range map[string]string{
		"messaging.system":            "nats",
		"messaging.message.body.size": "42",
		"ratio":                       "0.5",
		"tags":                        `{"values": [{"stringValue": "a"}]}`,
	} {
		if s.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, s.Attributes[k], v)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", "<html>", "decode OTLP-JSON"},
		{"no result", `{"error": {}}`, `no "result"`},
		{"bad trace id", `{"result": {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "00f067aa0ba902b7"}]}]}]}}`, "trace id"},
		{"short span id", `{"result": {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f0"}]}]}]}}`, "span id"},
		{"bad time", `{"result": {"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}}`, "unsigned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseTrace([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// The client against a stand-in server: 404 is ErrTraceNotFound, other
// failures carry Jaeger's message, ids are checked before any request.
func TestClientAnswers(t *testing.T) {
	fixture := readFixture(t, "jaeger-v1.76.0.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/base/api/v3/traces/" + recordedTraceID:
			w.Write(fixture)
		case "/base/api/v3/traces/00000000000000000000000000000500":
			http.Error(w, `{"error":{"httpCode":500,"message":"storage down"}}`, http.StatusInternalServerError)
		case "/base/api/v3/traces/00000000000000000000000000000200":
			w.Write([]byte(`{"result": {"resourceSpans": []}}`))
		default:
			http.Error(w, `{"error":{"httpCode":404,"message":"trace not found"}}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL+"/base/", WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tr, err := c.Trace(ctx, strings.ToUpper(recordedTraceID))
	if err != nil || tr.ID != recordedTraceID || len(tr.Spans) != 4 {
		t.Fatalf("trace: %+v, %v", tr, err)
	}
	for id, want := range map[string]error{
		"0123456789abcdef0123456789abcdef":  ErrTraceNotFound,
		"00000000000000000000000000000200":  ErrTraceNotFound, // found, but no spans
		"0123":                              ErrInvalidTraceID,
		"../../../../etc/passwd-0123456789": ErrInvalidTraceID,
	} {
		if _, err := c.Trace(ctx, id); !errors.Is(err, want) {
			t.Errorf("trace %q: %v, want %v", id, err, want)
		}
	}
	if _, err := c.Trace(ctx, "00000000000000000000000000000500"); err == nil || !strings.Contains(err.Error(), "storage down") {
		t.Errorf("server error: %v", err)
	}
	for _, bad := range []string{"", "localhost:16686", "ftp://x", "http://"} {
		if _, err := NewClient(bad); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("NewClient(%q): %v", bad, err)
		}
	}
}

func FuzzParseTrace(f *testing.F) {
	f.Add(readFixture(f, "jaeger-v1.76.0.json"))
	f.Add(readFixture(f, "proto3-json.json"))
	f.Add([]byte(`{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"x","status":{"code":9}}]}]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, err := parseTrace(body)
		if err != nil {
			return
		}
		for _, s := range spans {
			if !isHex(s.TraceID, 32) || !isHex(s.SpanID, 16) || (s.ParentSpanID != "" && !isHex(s.ParentSpanID, 16)) {
				t.Fatalf("parsed ids not hex: %+v", s)
			}
		}
	})
}
