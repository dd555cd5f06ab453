package jaeger

import (
	"time"
)

// Trace is the spans of one trace, sorted by start time (then span id).
type Trace struct {
	ID    string `json:"trace_id"`
	Spans []Span `json:"spans"`
}

// Span is one span as Jaeger stored it. Ids are lower-case hex.
type Span struct {
	TraceID      string `json:"trace_id"`
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id,omitempty"` // "" for a root span
	Name         string `json:"name"`
	// Service is the service.name of the span's resource.
	Service string    `json:"service"`
	Kind    Kind      `json:"kind,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// Attributes of the span, each value as a string (numbers in decimal,
	// arrays and maps as JSON).
	Attributes map[string]string `json:"attributes,omitempty"`
	Links      []Link            `json:"links,omitempty"`
	Status     Status            `json:"status"`
}

// Duration is how long the span took.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Link points from a span to another span, maybe of another trace.
type Link struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

// Kind is a span's kind: what side of a call or message it is.
type Kind string

const (
	KindUnspecified Kind = ""
	KindInternal    Kind = "internal"
	KindServer      Kind = "server"
	KindClient      Kind = "client"
	KindProducer    Kind = "producer"
	KindConsumer    Kind = "consumer"
)

// StatusCode is a span's status code.
type StatusCode string

const (
	StatusUnset StatusCode = "unset"
	StatusOK    StatusCode = "ok"
	StatusError StatusCode = "error"
)

// Status is how a span ended.
type Status struct {
	Code    StatusCode `json:"code"`
	Message string     `json:"message,omitempty"`
}
