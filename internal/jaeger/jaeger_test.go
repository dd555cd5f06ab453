package jaeger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/internal/jaeger"
	"github.com/equilateral-agents/equilateral/internal/jaegertest"
)

// provider exports spans of one service to the Jaeger's OTLP/HTTP receiver.
func provider(t *testing.T, j *jaegertest.Jaeger, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(j.OTLPHTTPEndpoint+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

// waitTrace polls until Jaeger holds want spans of the trace.
func waitTrace(t *testing.T, c *jaeger.Client, id string, want int) *jaeger.Trace {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		tr, err := c.Trace(ctx, id)
		switch {
		case err == nil && len(tr.Spans) >= want:
			return tr
		case err != nil && !errors.Is(err, jaeger.ErrTraceNotFound):
			t.Fatalf("trace %s: %v", id, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("trace %s: want %d spans, last answer %+v, %v", id, want, tr, err)
		case <-tick.C:
		}
	}
}

func TestTraceFromRealJaeger(t *testing.T) {
	j := jaegertest.Start(t)
	clientTP := provider(t, j, "eqtest-client")
	orchTP := provider(t, j, "eqtest-orchestrator")
	ctx := context.Background()

	// client: submit ─ send eq.tasks.submit ─▶ orchestrator: receive
	// eq.tasks.submit (linked to submit) ─ dispatch code.
	ctx, submit := clientTP.Tracer("test").Start(ctx, "submit", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("task.id", "t-1"), attribute.Int("attempt", 2), attribute.Bool("retry", true)))
	sendCtx, send := clientTP.Tracer("test").Start(ctx, "send eq.tasks.submit", trace.WithSpanKind(trace.SpanKindProducer))
	remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.SpanContextFromContext(sendCtx))
	recvCtx, receive := orchTP.Tracer("test").Start(remote, "receive eq.tasks.submit", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.Link{SpanContext: submit.SpanContext()}))
	_, dispatch := orchTP.Tracer("test").Start(recvCtx, "dispatch code")
	dispatch.End()
	receive.SetStatus(codes.Error, "boom")
	receive.End()
	send.End()
	submit.End()
	for _, tp := range []*sdktrace.TracerProvider{clientTP, orchTP} {
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	c, err := jaeger.NewClient(j.QueryURL)
	if err != nil {
		t.Fatal(err)
	}
	traceID := submit.SpanContext().TraceID().String()
	tr := waitTrace(t, c, traceID, 4)
	if tr.ID != traceID || len(tr.Spans) != 4 {
		t.Fatalf("trace %s with %d spans, want %s with 4", tr.ID, len(tr.Spans), traceID)
	}
	byName := map[string]jaeger.Span{}
	for _, s := range tr.Spans {
		if s.TraceID != traceID {
			t.Errorf("span %s has trace id %s", s.Name, s.TraceID)
		}
		byName[s.Name] = s
	}
	want := []struct {
		name, service, parent string
		kind                  jaeger.Kind
	}{
		{"submit", "eqtest-client", "", jaeger.KindClient},
		{"send eq.tasks.submit", "eqtest-client", submit.SpanContext().SpanID().String(), jaeger.KindProducer},
		{"receive eq.tasks.submit", "eqtest-orchestrator", send.SpanContext().SpanID().String(), jaeger.KindConsumer},
		{"dispatch code", "eqtest-orchestrator", receive.SpanContext().SpanID().String(), jaeger.KindInternal},
	}
	for _, w := range want {
		s, ok := byName[w.name]
		if !ok {
			t.Errorf("no span %q in %+v", w.name, tr.Spans)
			continue
		}
		if s.Service != w.service || s.ParentSpanID != w.parent || s.Kind != w.kind {
			t.Errorf("span %q: service %q parent %q kind %q, want %q %q %q", w.name, s.Service, s.ParentSpanID, s.Kind, w.service, w.parent, w.kind)
		}
		if s.Start.IsZero() || s.End.Before(s.Start) {
			t.Errorf("span %q: start %v end %v", w.name, s.Start, s.End)
		}
	}
	sub := byName["submit"]
	if sub.SpanID != submit.SpanContext().SpanID().String() {
		t.Errorf("submit span id %s, want %s", sub.SpanID, submit.SpanContext().SpanID())
	}
	for k, v := range map[string]string{"task.id": "t-1", "attempt": "2", "retry": "true"} {
		if sub.Attributes[k] != v {
			t.Errorf("submit attribute %s = %q, want %q (all: %v)", k, sub.Attributes[k], v, sub.Attributes)
		}
	}
	recv := byName["receive eq.tasks.submit"]
	if recv.Status != (jaeger.Status{Code: jaeger.StatusError, Message: "boom"}) {
		t.Errorf("receive status %+v", recv.Status)
	}
	if len(recv.Links) != 1 || recv.Links[0] != (jaeger.Link{TraceID: traceID, SpanID: sub.SpanID}) {
		t.Errorf("receive links %+v, want the submit span", recv.Links)
	}
	if byName["dispatch code"].Status.Code != jaeger.StatusUnset {
		t.Errorf("dispatch status %+v", byName["dispatch code"].Status)
	}

	// A trace Jaeger never saw is "not found (yet)".
	if _, err := c.Trace(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, jaeger.ErrTraceNotFound) {
		t.Fatalf("unknown trace: %v, want ErrTraceNotFound", err)
	}
}
