package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/equilateral-agents/equilateral/telemetry"
)

// clearMetricsEnv unsets every variable Metrics reads, for the test.
func clearMetricsEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
	} {
		t.Setenv(k, "")
	}
}

// exports is what a fake OTLP collector received: the service name and the
// metric names of each request.
type exports struct {
	mu       sync.Mutex
	services []string
	metrics  []string
}

func (e *exports) add(req *colmetricpb.ExportMetricsServiceRequest) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, kv := range rm.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				e.services = append(e.services, kv.GetValue().GetStringValue())
			}
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				e.metrics = append(e.metrics, m.GetName())
			}
		}
	}
}

func (e *exports) got() (services, metrics []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.services), slices.Clone(e.metrics)
}

// otlpHTTPCollector serves OTLP/HTTP metrics at /v1/metrics and counts
// requests to any other path as stray.
func otlpHTTPCollector(t *testing.T) (*httptest.Server, *exports) {
	t.Helper()
	var got exports
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.URL.Path != "/v1/metrics" {
			t.Errorf("OTLP request to %s (read error %v)", r.URL.Path, err)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var req colmetricpb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("OTLP body: %v", err)
		}
		got.add(&req)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

type grpcCollector struct {
	colmetricpb.UnimplementedMetricsServiceServer
	got *exports
}

func (c grpcCollector) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	c.got.add(req)
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// otlpGRPCCollector serves OTLP/gRPC on loopback; it returns the address.
func otlpGRPCCollector(t *testing.T) (string, *exports) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var got exports
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, grpcCollector{got: &got})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), &got
}

func TestMetricsOffWithoutEndpointOrPrometheus(t *testing.T) {
	clearMetricsEnv(t)
	mp, handler, shutdown, err := telemetry.Metrics(context.Background(), "svc", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mp.(noop.MeterProvider); !ok {
		t.Fatalf("provider is %T, want the no-op one", mp)
	}
	if handler != nil {
		t.Fatal("handler without WithPrometheus")
	}
	for range 2 {
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMetricsUnknownProtocolIsAClearError(t *testing.T) {
	clearMetricsEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "carrier-pigeon")
	if _, _, _, err := telemetry.Metrics(context.Background(), "svc", false); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("err = %v", err)
	}
}

// OTLP/HTTP: the metrics reach /v1/metrics on Shutdown, under the service
// name asked for (fixed) or OTEL_SERVICE_NAME (not fixed), whichever
// endpoint variable is set.
func TestMetricsExportOverOTLPHTTP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      string
		path     string
		fixed    bool
		protocol string
		want     string
	}{
		{"fixed name", "OTEL_EXPORTER_OTLP_ENDPOINT", "", true, "", "agent-planner"},
		{"name from env", "OTEL_EXPORTER_OTLP_ENDPOINT", "", false, "http/protobuf", "from-env"},
		// The signal's own endpoint is a full URL, used as it is.
		{"metrics endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "/v1/metrics", true, "", "agent-planner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearMetricsEnv(t)
			srv, got := otlpHTTPCollector(t)
			t.Setenv(tc.env, srv.URL+tc.path)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol)
			t.Setenv("OTEL_SERVICE_NAME", "from-env")

			exportOne(t, tc.fixed)
			services, metrics := got.got()
			if !slices.Contains(metrics, "test.requests") {
				t.Fatalf("exported metrics %v, want test.requests", metrics)
			}
			if !slices.Contains(services, tc.want) || slices.ContainsFunc(services, func(s string) bool { return s != tc.want }) {
				t.Fatalf("exported as services %v, want %q", services, tc.want)
			}
		})
	}
}

func TestMetricsExportOverOTLPGRPC(t *testing.T) {
	clearMetricsEnv(t)
	addr, got := otlpGRPCCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")

	exportOne(t, true)
	services, metrics := got.got()
	if !slices.Contains(metrics, "test.requests") || !slices.Contains(services, "agent-planner") {
		t.Fatalf("exported metrics %v of services %v", metrics, services)
	}
}

// exportOne records a counter on a provider from Metrics and shuts it
// down, which flushes the OTLP export; a second Shutdown is a no-op.
func exportOne(t *testing.T, fixed bool) {
	t.Helper()
	ctx := context.Background()
	mp, handler, shutdown, err := telemetry.Metrics(ctx, "agent-planner", fixed)
	if err != nil {
		t.Fatal(err)
	}
	if handler != nil {
		t.Fatal("handler without WithPrometheus")
	}
	c, err := mp.Meter("test").Int64Counter("test.requests")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 1)
	for range 2 {
		if err := shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// The Prometheus handler serves the provider's metrics, the resource as
// target_info, and the Go runtime; OTEL_SDK_DISABLED turns OTLP off but
// not the handler a flag asked for.
func TestMetricsPrometheusHandler(t *testing.T) {
	clearMetricsEnv(t)
	srv, got := otlpHTTPCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SDK_DISABLED", "true")
	ctx := context.Background()
	mp, handler, shutdown, err := telemetry.Metrics(ctx, "orchestrator", true, telemetry.WithPrometheus())
	if err != nil {
		t.Fatal(err)
	}
	if handler == nil {
		t.Fatal("no handler with WithPrometheus")
	}
	c, err := mp.Meter("test").Int64Counter("test.requests")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 3)

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"\ntest_requests_total 3\n",
		`service_name="orchestrator"`,
		"\ngo_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, metrics := got.got(); len(metrics) != 0 {
		t.Fatalf("OTLP export with OTEL_SDK_DISABLED=true: %v", metrics)
	}
}
