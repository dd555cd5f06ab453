// Package jaeger reads traces back from Jaeger through its query API v3
// (Jaeger v2), so the CLI can show the spans of a task's flow.
//
// # The API
//
// Client.Trace asks GET /api/v3/traces/{traceID}. Jaeger answers the
// trace as OTLP-JSON wrapped in {"result": ...}: resourceSpans, each with
// the resource (service.name) and scopeSpans holding the spans. Trace
// flattens that into one Span per span, with its service, parent, times,
// attributes (as strings), links and status. Ids are returned as lower-case
// hex whatever encoding the server used (Jaeger writes hex; plain OTLP-JSON
// writes base64 for bytes fields, which is accepted too).
//
// # Not found yet
//
// Jaeger answers 404 until the first span of a trace is stored, and
// exporters send spans in batches (the OTel SDK waits up to 5 s), so a
// trace that is looked up right after it was made is often not there yet,
// or not whole. Trace returns ErrTraceNotFound for a 404: callers poll,
// with a deadline.
//
// # Goroutine safety
//
// A Client may be used by several goroutines at once.
package jaeger
