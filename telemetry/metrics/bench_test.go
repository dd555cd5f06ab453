package metrics_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/equilateral-agents/equilateral/telemetry/metrics"
)

// The hot path: one call per task state change. Run with -benchmem.
func BenchmarkTaskTransition(b *testing.B) {
	ctx := context.Background()
	b.Run("sdk", func(b *testing.B) {
		r, _ := newRecorder(b)
		b.ReportAllocs()
		for b.Loop() {
			r.TaskTransition(ctx, "acme", "summarize", "running")
		}
	})
	b.Run("sdk-parallel", func(b *testing.B) {
		r, _ := newRecorder(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.TaskTransition(ctx, "acme", "summarize", "running")
			}
		})
	})
	b.Run("off", func(b *testing.B) {
		var r *metrics.Recorder // what New returns when metrics are off
		b.ReportAllocs()
		for b.Loop() {
			r.TaskTransition(ctx, "acme", "summarize", "running")
		}
	})
	// What the cached attribute sets save: building the set on every call.
	b.Run("sdk-uncached-baseline", func(b *testing.B) {
		mp, _ := newProvider(b)
		c, err := mp.Meter("bench").Int64Counter("bench.transitions")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			c.Add(ctx, 1, metric.WithAttributes(
				metrics.KeyTenant.String("acme"),
				metrics.KeyCapability.String("summarize"),
				metrics.KeyState.String("running"),
			))
		}
	})
}

func BenchmarkTaskFinished(b *testing.B) {
	ctx := context.Background()
	r, _ := newRecorder(b)
	b.ReportAllocs()
	for b.Loop() {
		r.TaskFinished(ctx, "acme", "summarize", "completed", 1500*time.Millisecond)
	}
}

func BenchmarkRefused(b *testing.B) {
	ctx := context.Background()
	r, _ := newRecorder(b)
	b.ReportAllocs()
	for b.Loop() {
		r.Refused(ctx, "acme", "rate_limited")
	}
}
