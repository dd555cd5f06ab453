package bus

import (
	"context"
	"time"

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
// twice what it does without (BenchmarkTracingOverhead). One that a sender
// adds is ignored (startReceiveSpan).

// receipt is what dispatch measured of a message before its receive span
// could start.
type receipt struct {
	start                  time.Time // arrival
	verifyStart, verifyEnd time.Time // zero if the message did not decode
	verifyErr              error
	signed                 bool // the verified event's extensions are all signed
}

// startReceiveSpan starts the consumer span of a message, dated from its
// arrival. Its parent is the sender's context from the verified event's
// signed traceparent/tracestate extension, and nothing else: not the W3C
// traceparent NATS header, not an extension left out of signedextattrs,
// not the extension of an event that failed verification or was let
// through unsigned. Any of those is the word of whoever last touched the
// message, and would let it graft spans onto another flow's trace; such
// a message gets a trace of its own. e is the decoded event (nil if
// undecodable), verified what verification handed on (nil if refused).
func (c *Conn) startReceiveSpan(msg *nats.Msg, e, verified *event.Event, r receipt) (context.Context, trace.Span) {
	ctx := context.Background()
	if verified != nil && r.signed {
		// verifiedCopy kept only the signed extensions.
		ctx = propagator.Extract(ctx, eventCarrier{verified})
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(r.start)}
	if e != nil {
		opts = append(opts, trace.WithAttributes(eventAttributes(semconv.MessagingOperationTypeProcess, msg.Subject, e, len(msg.Data))...))
	}
	ctx, span := c.cfg.tracer.Start(ctx, "process "+msg.Subject, opts...)
	if c.cfg.verifySpans && !r.verifyStart.IsZero() {
		// Verification ran before the span existed: record it as the
		// child it would have been, with the times it took.
		_, vspan := c.cfg.tracer.Start(ctx, "verify", trace.WithTimestamp(r.verifyStart))
		if r.verifyErr != nil {
			vspan.RecordError(r.verifyErr, trace.WithTimestamp(r.verifyEnd))
			vspan.SetStatus(codes.Error, r.verifyErr.Error())
		}
		vspan.End(trace.WithTimestamp(r.verifyEnd))
	}
	return ctx, span
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
