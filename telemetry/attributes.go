package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span attributes Equilateral puts on its own spans (besides the messaging
// conventions on every send and receive). Never payloads.
const (
	AttrTenant     = attribute.Key("equilateral.tenant")
	AttrCapability = attribute.Key("equilateral.capability")
	AttrTaskID     = attribute.Key("equilateral.task.id")
	AttrParentTask = attribute.Key("equilateral.task.parent")
	AttrAttempt    = attribute.Key("equilateral.task.attempt")
	AttrState      = attribute.Key("equilateral.task.state")
	AttrAgent      = attribute.Key("equilateral.agent")
	AttrSubmitter  = attribute.Key("equilateral.submitter")
	AttrReason     = attribute.Key("equilateral.reason")
)

var traceContext = propagation.TraceContext{}

// TraceParent is the W3C traceparent of the span in ctx, or "" if there
// is none: a span context kept with a record so later work joins its trace.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	// Version 00: 00-<trace id>-<span id>-<flags>, as the W3C propagator
	// writes it, without its carrier map.
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// SpanContext reads a traceparent kept by TraceParent.
func SpanContext(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := traceContext.Extract(context.Background(), singleHeader(traceparent))
	return trace.SpanContextFromContext(ctx)
}

// singleHeader is a carrier holding only a traceparent.
type singleHeader string

func (h singleHeader) Get(key string) string {
	if key == "traceparent" {
		return string(h)
	}
	return ""
}
func (h singleHeader) Set(string, string) {}
func (h singleHeader) Keys() []string     { return []string{"traceparent"} }

// WithTraceParent returns ctx with the remote span context of traceparent
// as its parent (ctx unchanged if traceparent is empty or invalid).
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	sc := SpanContext(traceparent)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// LogHandler adds the trace and span ids of the context's span to every
// record logged with a context (InfoContext and friends), so a log line
// leads to its trace.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }
