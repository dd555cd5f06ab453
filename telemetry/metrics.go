package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// MetricsOption configures [Metrics].
type MetricsOption interface {
	apply(metricsConfig) metricsConfig
}

type metricsConfig struct {
	prometheus bool
}

type metricsOptionFunc func(metricsConfig) metricsConfig

func (f metricsOptionFunc) apply(c metricsConfig) metricsConfig { return f(c) }

// WithPrometheus makes [Metrics] return an http.Handler that serves every
// metric in the Prometheus text format (mount it at /metrics). It is what
// a --metrics-addr flag turns on; without it the handler is nil.
func WithPrometheus() MetricsOption {
	return metricsOptionFunc(func(c metricsConfig) metricsConfig {
		c.prometheus = true
		return c
	})
}

func newMetricsConfig(opts []MetricsOption) metricsConfig {
	var c metricsConfig
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// otlpMetricsEnabled reports whether the environment asks for metrics to be
// exported over OTLP.
func otlpMetricsEnabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != ""
}

// Metrics returns a meter provider for service, feeding
//
//   - a Prometheus exporter on a private registry (never the global one, so
//     one process may call Metrics for several services), served by the
//     returned handler, when [WithPrometheus] is given; the registry also
//     carries the Go runtime and process collectors;
//   - an OTLP exporter, read every OTEL_METRIC_EXPORT_INTERVAL (default
//     60s), when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set. The protocol is
//     OTEL_EXPORTER_OTLP_METRICS_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL:
//     "http/protobuf" (the default) or "grpc". OTEL_SDK_DISABLED=true turns
//     OTLP off, but not the Prometheus handler, which a flag asked for.
//
// With neither, the provider is the no-op one and the handler nil: metrics
// are off and cost next to nothing. The service name and fixedName follow
// the rules of [Tracing].
// Call the Shutdown before exiting so the last OTLP export is sent; it is
// safe to call more than once.
func Metrics(ctx context.Context, service string, fixedName bool, opts ...MetricsOption) (metric.MeterProvider, http.Handler, Shutdown, error) {
	cfg := newMetricsConfig(opts)
	otlp := otlpMetricsEnabled()
	if !cfg.prometheus && !otlp {
		return noop.NewMeterProvider(), nil, func(context.Context) error { return nil }, nil
	}

	res, err := serviceResource(ctx, service, fixedName)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		providerOpts = []sdkmetric.Option{sdkmetric.WithResource(res)}
		handler      http.Handler
	)
	if cfg.prometheus {
		registry := prometheus.NewRegistry()
		exporter, err := otelprom.New(
			otelprom.WithRegisterer(registry),
			otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
			// All of Equilateral's instruments come from one scope: the
			// otel_scope_* labels on every series would only be noise.
			otelprom.WithoutScopeInfo(),
		)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("telemetry: Prometheus exporter: %w", err)
		}
		if err := errors.Join(
			registry.Register(collectors.NewGoCollector()),
			registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		); err != nil {
			return nil, nil, nil, fmt.Errorf("telemetry: Prometheus runtime collectors: %w", err)
		}
		providerOpts = append(providerOpts, sdkmetric.WithReader(exporter))
		handler = promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	}
	if otlp {
		exporter, err := newMetricExporter(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		providerOpts = append(providerOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exporter)))
	}

	mp := sdkmetric.NewMeterProvider(providerOpts...)
	var (
		once        sync.Once
		shutdownErr error
	)
	shutdown := func(ctx context.Context) error {
		// The SDK's second Shutdown is an error; ours is a no-op.
		once.Do(func() { shutdownErr = mp.Shutdown(ctx) })
		return shutdownErr
	}
	return mp, handler, shutdown, nil
}

// serviceResource describes the process as service. With fixedName the
// name wins over OTEL_SERVICE_NAME; otherwise the environment wins, as in
// [Tracing].
func serviceResource(ctx context.Context, service string, fixedName bool) (*resource.Resource, error) {
	opts := []resource.Option{resource.WithAttributes(semconv.ServiceName(service))}
	if fixedName {
		opts = append([]resource.Option{resource.WithFromEnv()}, opts...)
	} else {
		opts = append(opts, resource.WithFromEnv())
	}
	res, err := resource.New(ctx, append(opts, resource.WithTelemetrySDK(), resource.WithHost())...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

func newMetricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "http/protobuf":
		e, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/HTTP metric exporter: %w", err)
		}
		return e, nil
	case "grpc":
		e, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP/gRPC metric exporter: %w", err)
		}
		return e, nil
	}
	return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", protocol)
}
