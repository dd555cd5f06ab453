// Package telemetry sets up OpenTelemetry tracing from the standard
// OTEL_* environment variables. With no exporter endpoint set it returns a
// no-op provider: tracing is off and costs nothing.
//
// # Environment
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT turns
//     tracing on (for Jaeger: http://localhost:4318 over HTTP, or
//     localhost:4317 with OTEL_EXPORTER_OTLP_PROTOCOL=grpc).
//   - OTEL_EXPORTER_OTLP_PROTOCOL (or ..._TRACES_PROTOCOL): "http/protobuf"
//     (the default) or "grpc".
//   - OTEL_SERVICE_NAME overrides the service name, except where one
//     process plays several services (`equilateral dev`).
//   - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG pick the sampler
//     (default: parent-based, always on).
//   - OTEL_SDK_DISABLED=true turns tracing off whatever else is set.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Enabled reports whether the environment asks for traces to be exported.
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Shutdown flushes and stops a provider; it is safe to call more than once.
type Shutdown func(context.Context) error

// Tracing returns a tracer provider for service. With fixedName the
// service name is kept even if OTEL_SERVICE_NAME is set (one process
// playing several services). Call the Shutdown before exiting so the last
// spans are sent.
func Tracing(ctx context.Context, service string, fixedName bool) (trace.TracerProvider, Shutdown, error) {
	if !Enabled() {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exporter, err := newExporter(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := []resource.Option{resource.WithAttributes(semconv.ServiceName(service))}
	if !fixedName {
		opts = append(opts, resource.WithFromEnv())
	} else {
		opts = append([]resource.Option{resource.WithFromEnv()}, opts...)
	}
	res, err := resource.New(ctx, append(opts, resource.WithTelemetrySDK(), resource.WithHost())...)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "http/protobuf":
		e, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/HTTP exporter: %w", err)
		}
		return e, nil
	case "grpc":
		e, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC exporter: %w", err)
		}
		return e, nil
	}
	return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", protocol)
}
