package telemetry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/equilateral-agents/equilateral/telemetry"
)

func TestOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, shutdown, err := telemetry.Tracing(context.Background(), "svc", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Fatalf("provider without an endpoint is %T, want the no-op one", tp)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDisabledWins(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if telemetry.Enabled() {
		t.Fatal("OTEL_SDK_DISABLED=true must turn tracing off")
	}
}

func TestUnknownProtocolIsAClearError(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, _, err := telemetry.Tracing(context.Background(), "svc", false); err == nil || !bytes.Contains([]byte(err.Error()), []byte("carrier-pigeon")) {
		t.Fatalf("err = %v", err)
	}
}

// A span is exported over OTLP/HTTP to the endpoint, under the service
// name asked for (fixed) or OTEL_SERVICE_NAME (not fixed).
func TestExportsOverOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" {
			bodies = append(bodies, b)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "from-env")

	for _, tc := range []struct {
		fixed bool
		want  string
	}{{true, "agent-planner"}, {false, "from-env"}} {
		mu.Lock()
		bodies = nil
		mu.Unlock()
		tp, shutdown, err := telemetry.Tracing(context.Background(), "agent-planner", tc.fixed)
		if err != nil {
			t.Fatal(err)
		}
		_, span := tp.Tracer("test").Start(context.Background(), "handle plan")
		span.End()
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := bytes.Join(bodies, nil)
		mu.Unlock()
		if !bytes.Contains(got, []byte("handle plan")) || !bytes.Contains(got, []byte(tc.want)) {
			t.Fatalf("fixed=%v: export of %d bytes lacks the span or service %q", tc.fixed, len(got), tc.want)
		}
	}
}
