package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/jaeger"
	"github.com/equilateral-agents/equilateral/internal/jaegertest"
	"github.com/equilateral-agents/equilateral/telemetry"
)

// Both OTLP protocols reach the real Jaeger, configured only through the
// standard environment variables.
func TestTracingToJaeger(t *testing.T) {
	j := jaegertest.Start(t)
	jc, err := jaeger.NewClient(j.QueryURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ protocol, endpoint string }{
		{"grpc", "http://" + j.OTLPGRPCEndpoint},
		{"http/protobuf", j.OTLPHTTPEndpoint},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
			t.Setenv("OTEL_SERVICE_NAME", "")
			tp, shutdown, err := telemetry.Tracing(context.Background(), "proto-"+tc.protocol, false)
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "exported over "+tc.protocol)
			span.End()
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			id := span.SpanContext().TraceID().String()
			deadline := time.Now().Add(20 * time.Second)
			for {
				tr, err := jc.Trace(context.Background(), id)
				if err == nil {
					if len(tr.Spans) != 1 || tr.Spans[0].Name != "exported over "+tc.protocol || tr.Spans[0].Service != "proto-"+tc.protocol {
						t.Fatalf("Jaeger has %+v", tr.Spans)
					}
					return
				}
				if !errors.Is(err, jaeger.ErrTraceNotFound) || time.Now().After(deadline) {
					t.Fatalf("trace %s over %s: %v", id, tc.protocol, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
