package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/equilateral-agents/equilateral/telemetry"
)

// metricsSetup is the meter provider of a command: Prometheus on
// --metrics-addr if given, OTLP if OTEL_* asks, else nothing at all.
type metricsSetup struct {
	Provider metric.MeterProvider
	shutdown telemetry.Shutdown
	server   *http.Server
}

// startMetrics sets up metrics for service and, with addr, serves them at
// http://addr/metrics (port 0 picks one); the URL is printed to out.
func startMetrics(ctx context.Context, service, addr string, out io.Writer) (*metricsSetup, error) {
	var opts []telemetry.MetricsOption
	if addr != "" {
		opts = append(opts, telemetry.WithPrometheus())
	}
	mp, handler, shutdown, err := telemetry.Metrics(ctx, service, false, opts...)
	if err != nil {
		return nil, err
	}
	m := &metricsSetup{Provider: mp, shutdown: shutdown}
	if addr == "" {
		return m, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		shutdown(ctx)
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", handler)
	m.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(out, "metrics server stopped: %v\n", err)
		}
	}()
	fmt.Fprintf(out, "metrics: http://%s/metrics\n", ln.Addr())
	return m, nil
}

// stop closes the endpoint and flushes the last metrics.
func (m *metricsSetup) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m.server != nil {
		m.server.Shutdown(ctx)
	}
	m.shutdown(ctx)
}
