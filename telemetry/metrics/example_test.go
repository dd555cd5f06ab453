package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/equilateral-agents/equilateral/telemetry"
	"github.com/equilateral-agents/equilateral/telemetry/metrics"
)

// Wiring: telemetry builds the provider (here with the Prometheus handler a
// --metrics-addr flag would mount at /metrics), metrics builds the
// instruments, and the orchestrator records and feeds the gauges.
func Example() {
	ctx := context.Background()
	mp, handler, shutdown, err := telemetry.Metrics(ctx, "orchestrator", true, telemetry.WithPrometheus())
	if err != nil {
		panic(err)
	}
	defer func() { _ = shutdown(ctx) }()
	rec, err := metrics.New(mp)
	if err != nil {
		panic(err)
	}

	rec.TaskTransition(ctx, "acme", "summarize", "submitted")
	rec.TaskStarted(ctx, "acme", "summarize", 40*time.Millisecond)
	rec.Refused(ctx, "acme", "replay")
	reg, err := rec.ObserveQueueDepth(func(_ context.Context, observe func(tenant, capability string, depth int64)) error {
		observe("acme", "summarize", 3) // e.g. from the orchestrator's task table
		return nil
	})
	if err != nil {
		panic(err)
	}
	defer func() { _ = reg.Unregister() }()

	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "equilateral_") && !strings.Contains(line, "_bucket") {
			fmt.Println(line)
		}
	}
	// Output:
	// equilateral_queue_depth{capability="summarize",tenant="acme"} 3
	// equilateral_refusals_total{reason="replay",tenant="acme"} 1
	// equilateral_task_queue_time_seconds_sum{capability="summarize",tenant="acme"} 0.04
	// equilateral_task_queue_time_seconds_count{capability="summarize",tenant="acme"} 1
	// equilateral_tasks_transitions_total{capability="summarize",state="submitted",tenant="acme"} 1
}
