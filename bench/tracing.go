package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/telemetry"
)

// tracing is where one round trip's components send their spans: every
// span sampled and batched, as a traced production system would, to an
// exporter that counts and drops them, so the cost measured is ours and
// the SDK's and not a collector's. With OTEL_EXPORTER_OTLP_ENDPOINT set,
// each component exports for real instead (telemetry.Tracing), and the
// spans are not counted.
type tracing struct {
	sdk       *sdktrace.TracerProvider // nil when exporting for real
	exporter  *countingExporter
	shutdowns []telemetry.Shutdown
}

func newTracing() *tracing {
	if telemetry.Enabled() {
		return &tracing{}
	}
	e := &countingExporter{}
	return &tracing{
		sdk:      sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(e)),
		exporter: e,
	}
}

// tracingDescription says where spans go, for the report.
func tracingDescription() string {
	if telemetry.Enabled() {
		return "every component exports over OTLP (OTEL_* environment)"
	}
	return "every component 100% sampled, batched to an exporter that drops the spans"
}

// provider is the tracer provider of one component.
func (t *tracing) provider(ctx context.Context, service string) (trace.TracerProvider, error) {
	if t.sdk != nil {
		return t.sdk, nil
	}
	tp, shutdown, err := telemetry.Tracing(ctx, service, true)
	if err != nil {
		return nil, err
	}
	t.shutdowns = append(t.shutdowns, shutdown)
	return tp, nil
}

// spans is how many spans were exported so far, after a flush; -1 when
// they are not counted.
func (t *tracing) spans() int64 {
	if t.sdk == nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.sdk.ForceFlush(ctx)
	return t.exporter.spans.Load()
}

// shutdown flushes and stops every provider.
func (t *tracing) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if t.sdk != nil {
		errs = append(errs, t.sdk.Shutdown(ctx))
	}
	for _, s := range t.shutdowns {
		errs = append(errs, s(ctx))
	}
	return errors.Join(errs...)
}

// countingExporter drops spans, counting them.
type countingExporter struct{ spans atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }
