package bus

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Distributed-tracing extension attributes (CloudEvents).
const (
	ExtTraceParent = "traceparent"
	ExtTraceState  = "tracestate"
)

const instrumentationName = "github.com/equilateral-agents/equilateral/bus"

var propagator = propagation.TraceContext{}

// eventCarrier reads and writes trace context in the distributed-tracing
// extension of an event.
type eventCarrier struct{ e *event.Event }

// Get reads one extension without copying the extension map (as
// Extensions() would, on every call).
func (c eventCarrier) Get(key string) string {
	v, err := c.e.Context.GetExtension(key)
	if err != nil {
		return ""
	}
	s, _ := v.(string)
	return s
}

func (c eventCarrier) Set(key, value string) {
	if key == ExtTraceParent || key == ExtTraceState {
		c.e.SetExtension(key, value)
	}
}

func (c eventCarrier) Keys() []string { return []string{ExtTraceParent, ExtTraceState} }

// headerCarrier reads W3C trace headers on a NATS message, for events
// from producers that put the context only there.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// eventAttributes are the span attributes of an event: messaging semantic
// conventions plus CloudEvents ids. Never the payload.
// (The message id is the CloudEvents id: it is not repeated.)
func eventAttributes(operation attribute.KeyValue, subject string, e *event.Event, size int) []attribute.KeyValue {
	return []attribute.KeyValue{
		messagingNATS,
		operation,
		semconv.MessagingDestinationName(subject),
		semconv.MessagingMessageID(e.ID()),
		semconv.MessagingMessageBodySize(size),
		attribute.String("cloudevents.event_source", e.Source()),
		attribute.String("cloudevents.event_type", e.Type()),
	}
}

var messagingNATS = semconv.MessagingSystemKey.String("nats")

// startPublishSpan starts the producer span and writes its context into the
// event's extension (so it is signed) before the event is sealed.
func startPublishSpan(ctx context.Context, tracer trace.Tracer, subject string, e *event.Event) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, "send "+subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(eventAttributes(semconv.MessagingOperationTypeSend, subject, e, len(e.Data()))...))
	if span.SpanContext().IsValid() {
		propagator.Inject(ctx, eventCarrier{e})
	}
	return ctx, span
}

// The trace context travels in the event's extension only, where it is
// signed. No W3C traceparent header is added to the NATS message:
// nats-server takes that header as a possible message-trace request and
// parses the headers of every message carrying it, which made tracing cost
// twice what it does without (BenchmarkTracingOverhead).

// extractContext finds the sender's context: the event's signed
// distributed-tracing extension, else a W3C traceparent header.
func extractContext(ctx context.Context, msg *nats.Msg, e *event.Event) context.Context {
	if e != nil && e.Context != nil {
		if _, err := e.Context.GetExtension(ExtTraceParent); err == nil {
			return propagator.Extract(ctx, eventCarrier{e})
		}
	}
	if msg.Header.Get("traceparent") != "" {
		return propagator.Extract(ctx, headerCarrier(msg.Header))
	}
	return ctx
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
