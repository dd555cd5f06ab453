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

func (c eventCarrier) Get(key string) string {
	s, _ := c.e.Extensions()[key].(string)
	return s
}

func (c eventCarrier) Set(key, value string) {
	if key == ExtTraceParent || key == ExtTraceState {
		c.e.SetExtension(key, value)
	}
}

func (c eventCarrier) Keys() []string { return []string{ExtTraceParent, ExtTraceState} }

// headerCarrier carries W3C trace headers on a NATS message (per hop).
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
func eventAttributes(operation attribute.KeyValue, subject string, e *event.Event, size int) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingSystemKey.String("nats"),
		operation,
		semconv.MessagingDestinationName(subject),
		semconv.MessagingMessageID(e.ID()),
		semconv.MessagingMessageBodySize(size),
		attribute.String("cloudevents.event_id", e.ID()),
		attribute.String("cloudevents.event_source", e.Source()),
		attribute.String("cloudevents.event_type", e.Type()),
	}
}

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

// injectHeaders writes the hop's W3C trace headers on the message.
func injectHeaders(ctx context.Context, msg *nats.Msg) {
	propagator.Inject(ctx, headerCarrier(msg.Header))
}

// extractContext finds the sender's context: the W3C headers of this hop,
// else the event's distributed-tracing extension.
func extractContext(ctx context.Context, msg *nats.Msg, e *event.Event) context.Context {
	if msg.Header.Get("traceparent") != "" {
		return propagator.Extract(ctx, headerCarrier(msg.Header))
	}
	if e != nil {
		return propagator.Extract(ctx, eventCarrier{e})
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
