package orchestrator_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/equilateral-agents/equilateral/internal/agenttest"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/telemetry/metrics"
)

// collected reads every data point of one metric, by attribute set.
func collected(t *testing.T, reader *sdkmetric.ManualReader, name string) map[attribute.Distinct]metricdata.DataPoint[int64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[attribute.Distinct]metricdata.DataPoint[int64]{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					out[dp.Attributes.Equivalent()] = dp
				}
			}
		}
	}
	return out
}

func value(points map[attribute.Distinct]metricdata.DataPoint[int64], kv ...attribute.KeyValue) int64 {
	set := attribute.NewSet(kv...)
	return points[set.Equivalent()].Value
}

func histogramCount(t *testing.T, reader *sdkmetric.ManualReader, name string, kv ...attribute.KeyValue) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	want := attribute.NewSet(kv...)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					if dp.Attributes.Equivalent() == want.Equivalent() {
						return dp.Count
					}
				}
			}
		}
	}
	return 0
}

// The orchestrator counts transitions by state, times tasks, and counts
// refusals by reason, per tenant and capability.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	h := newHarness(t, orchestrator.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	a := h.agent("acme", "echoer", echo, "echo")
	c := h.client("acme", "client")
	hb := protocol.Heartbeat{Agent: "echoer", Instance: "one", Status: protocol.AgentUp, Capabilities: []string{"echo"}}
	if err := a.conn.Publish(context.Background(), protocol.AgentReport("echoer", protocol.HeartbeatKind), agenttest.NewEvent(a.source(), protocol.TypeAgentHeartbeat, hb)); err != nil {
		t.Fatal(err)
	}

	for range 3 {
		acc := c.submit(protocol.SubmitRequest{Capability: "echo", Input: []byte(`{}`)})
		c.waitState(acc.TaskID, protocol.StateCompleted)
	}
	reply := c.request(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "nobody-serves-this", Input: []byte(`{}`)})
	if reply.Type() != protocol.TypeTaskRefused {
		t.Fatalf("want a refusal, got %s", reply.Type())
	}

	tenant, echoCap := metrics.KeyTenant.String("acme"), metrics.KeyCapability.String("echo")
	transitions := collected(t, reader, metrics.TaskTransitions)
	for state, want := range map[string]int64{"submitted": 3, "dispatched": 3, "running": 3, "completed": 3} {
		if got := value(transitions, tenant, echoCap, metrics.KeyState.String(state)); got != want {
			t.Errorf("transitions to %s: %d, want %d", state, got, want)
		}
	}
	refusals := collected(t, reader, metrics.Refusals)
	if got := value(refusals, tenant, metrics.KeyReason.String("unknown_capability")); got != 1 {
		t.Errorf("unknown_capability refusals: %d, want 1", got)
	}
	if got := histogramCount(t, reader, metrics.TaskDuration, tenant, echoCap, metrics.KeyState.String("completed")); got != 3 {
		t.Errorf("task duration samples: %d, want 3", got)
	}
	if got := histogramCount(t, reader, metrics.TaskQueueTime, tenant, echoCap); got != 3 {
		t.Errorf("queue time samples: %d, want 3", got)
	}
	if got := histogramCount(t, reader, metrics.AttemptDuration, tenant, echoCap); got != 3 {
		t.Errorf("attempt duration samples: %d, want 3", got)
	}
	// The one heartbeat sent makes one live instance.
	natstest.Eventually(t, 5*time.Second, func() bool { return value(collected(t, reader, metrics.AgentsLive), tenant) == 1 },
		"live agents never showed the instance that sent a heartbeat")
	// Nothing is left waiting: the queue gauge reads no tasks for echo.
	if got := value(collected(t, reader, metrics.QueueDepth), tenant, echoCap); got != 0 {
		t.Errorf("queue depth %d with nothing waiting", got)
	}
}

// A task nobody takes shows in the queue depth and the unfinished gauge.
func TestQueueDepthGauge(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	h := newHarness(t, orchestrator.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	h.env.Agent(t, "acme", "sleepy", "slow") // the capability exists, but no one is listening
	c := h.client("acme", "client")
	c.submit(protocol.SubmitRequest{Capability: "slow", Input: []byte(`{}`)})
	c.submit(protocol.SubmitRequest{Capability: "slow", Input: []byte(`{}`)})
	tenant := metrics.KeyTenant.String("acme")
	natstest.Eventually(t, 10*time.Second, func() bool {
		return value(collected(t, reader, metrics.QueueDepth), tenant, metrics.KeyCapability.String("slow")) == 2
	}, "queue depth never showed the two waiting tasks")
	unfinished := collected(t, reader, metrics.TasksUnfinished)
	if n := value(unfinished, tenant, metrics.KeyState.String("submitted")) + value(unfinished, tenant, metrics.KeyState.String("dispatched")); n != 2 {
		t.Errorf("unfinished (submitted+dispatched) = %d, want 2", n)
	}
}
