package traceview_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/jaeger"
	"github.com/equilateral-agents/equilateral/internal/traceview"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func span(id, parent, service, name string, startMs, durMs float64) jaeger.Span {
	start := t0.Add(time.Duration(startMs * float64(time.Millisecond)))
	return jaeger.Span{
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: id, ParentSpanID: parent,
		Service: service, Name: name,
		Start: start, End: start.Add(time.Duration(durMs * float64(time.Millisecond))),
	}
}

// flow is a task's trace in shuffled order: a submit, the orchestrator,
// two agents (one failing), a span whose parent never arrived, and one
// with control characters in its name.
func flow() []jaeger.Span {
	failed := span("00000000000000a6", "00000000000000a3", "reviewer", "process eq.cap.review", 9, 2.25)
	failed.Status = jaeger.Status{Code: jaeger.StatusError, Message: "review refused"}
	return []jaeger.Span{
		span("00000000000000a5", "00000000000000a3", "orchestrator", "send eq.cap.review", 8.5, 3),
		span("00000000000000a2", "00000000000000a1", "client", "send eq.tasks.submit", 0.1, 30),
		failed,
		span("00000000000000a1", "", "client", "submit", 0, 31.25),
		span("00000000000000a4", "00000000000000a3", "orchestrator", "send eq.cap.code", 1.5, 6),
		span("00000000000000a7", "00000000000000a4", "coder", "process eq.cap.code", 2, 5),
		span("00000000000000a3", "00000000000000a2", "orchestrator", "receive eq.tasks.submit", 0.5, 28),
		span("00000000000000b1", "00000000000000ff", "coder", "send eq.agent.coder.completed", 7, 0.05),
		span("00000000000000b2", "00000000000000a7", "coder", "tool \x1b[31mred\x1b[0m", 3, 1),
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spans []jaeger.Span
	}{
		{"flow", flow()},
		{"single", []jaeger.Span{span("00000000000000a1", "", "", "lonely", 0, 1)}},
		{"empty", nil},
		// Two spans naming each other as parent: both still drawn.
		{"cycle", []jaeger.Span{
			span("00000000000000c1", "00000000000000c2", "svc", "a", 0, 2),
			span("00000000000000c2", "00000000000000c1", "svc", "b", 1, 2),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := traceview.Render(&out, tc.spans); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if out.String() != string(want) {
				t.Fatalf("render:\n%s\nwant:\n%s", out.String(), want)
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	spans := flow()
	var first bytes.Buffer
	traceview.Render(&first, spans)
	for i := range 20 {
		// Any order of the same spans draws the same tree.
		shuffled := append([]jaeger.Span(nil), spans...)
		for j := range shuffled {
			k := (j*7 + i) % len(shuffled)
			shuffled[j], shuffled[k] = shuffled[k], shuffled[j]
		}
		var out bytes.Buffer
		traceview.Render(&out, shuffled)
		if out.String() != first.String() {
			t.Fatalf("order %d:\n%s\nwant:\n%s", i, out.String(), first.String())
		}
	}
	if strings.Contains(first.String(), "\x1b") {
		t.Fatalf("an escape sequence reached the output:\n%q", first.String())
	}
}

func ExampleRender() {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := func(n float64) time.Time { return start.Add(time.Duration(n * float64(time.Millisecond))) }
	traceview.Render(os.Stdout, []jaeger.Span{
		{SpanID: "01", Service: "client", Name: "send eq.tasks.submit", Start: ms(0), End: ms(12.5)},
		{SpanID: "02", ParentSpanID: "01", Service: "orchestrator", Name: "receive eq.tasks.submit", Start: ms(0.4), End: ms(12.2)},
		{SpanID: "03", ParentSpanID: "02", Service: "coder", Name: "process eq.cap.code", Start: ms(1.1), End: ms(11),
			Status: jaeger.Status{Code: jaeger.StatusError, Message: "boom"}},
	})
	// Output:
	// +0.0ms  12.5ms  client: send eq.tasks.submit
	// +0.4ms  11.8ms    orchestrator: receive eq.tasks.submit
	// +1.1ms   9.9ms      coder: process eq.cap.code  [error: boom]
	// 3 spans, 3 services, 12.5ms
}
