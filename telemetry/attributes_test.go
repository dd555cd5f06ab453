package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/equilateral-agents/equilateral/telemetry"
)

func TestTraceParentRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	defer span.End()
	tp0 := telemetry.TraceParent(ctx)
	sc := telemetry.SpanContext(tp0)
	if !sc.IsValid() || sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("traceparent %q does not round-trip", tp0)
	}
	child := telemetry.WithTraceParent(context.Background(), tp0)
	_, c := tp.Tracer("t").Start(child, "child")
	defer c.End()
	if c.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Fatal("a span started under WithTraceParent is not in the same trace")
	}
	if telemetry.TraceParent(context.Background()) != "" || telemetry.SpanContext("garbage").IsValid() {
		t.Fatal("no span must give no traceparent, and garbage no span context")
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("tenant", "acme")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	log.InfoContext(ctx, "hello")
	span.End()
	var rec map[string]string
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["trace_id"] != span.SpanContext().TraceID().String() || rec["span_id"] != span.SpanContext().SpanID().String() || rec["tenant"] != "acme" {
		t.Fatalf("log record %v lacks the span's ids", rec)
	}
	buf.Reset()
	log.Info("no context")
	if bytes.Contains(buf.Bytes(), []byte("trace_id")) {
		t.Fatal("a record without a span must not get a trace id")
	}
}
