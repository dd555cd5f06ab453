package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/protocol"
)

// The trace recorded from a real Jaeger by the jaeger package's tests.
const (
	fixtureTraceID = "b3a4d0d2a1cd9e7e2d9e2f9d7b2f3a11"
	fixtureFile    = "../../internal/jaeger/testdata/jaeger-v1.76.0.json"
)

// getterFunc is a taskGetter from a func.
type getterFunc func(ctx context.Context, taskID string) (protocol.TaskView, error)

func (f getterFunc) Get(ctx context.Context, taskID string) (protocol.TaskView, error) {
	return f(ctx, taskID)
}

func viewOf(traceID string) taskGetter {
	return getterFunc(func(_ context.Context, id string) (protocol.TaskView, error) {
		return protocol.TaskView{TaskID: id, TraceID: traceID}, nil
	})
}

// fakeJaeger serves the recorded trace after answering 404 notFound times,
// as Jaeger does until the spans arrive.
func fakeJaeger(t *testing.T, notFound int32) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	fixture, err := os.ReadFile(fixtureFile)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != "/api/v3/traces/"+fixtureTraceID || n <= notFound {
			http.Error(w, `{"error":{"httpCode":404,"message":"trace not found"}}`, http.StatusNotFound)
			return
		}
		w.Write(fixture)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestTaskTraceFromJaeger(t *testing.T) {
	srv, calls := fakeJaeger(t, 2)
	var out, errOut bytes.Buffer
	opts := traceOptions{jaegerURL: srv.URL + "/", waitTrace: 10 * time.Second}
	if err := taskTrace(context.Background(), &out, &errOut, viewOf(fixtureTraceID), "t-1", opts); err != nil {
		t.Fatal(err)
	}
	// Two 404s, the trace, then four more asks while it holds still.
	if calls.Load() != 7 {
		t.Errorf("%d requests, want 7 (two 404s, the trace, four to see it settle)", calls.Load())
	}
	t.Logf("task trace with Jaeger:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"task t-1  trace " + fixtureTraceID,
		"eqtest-client: submit",
		"  eqtest-client: send eq.tasks.submit",
		"    eqtest-orchestrator: receive eq.tasks.submit  [error: boom]",
		"      eqtest-orchestrator: dispatch code",
		"4 spans, 2 services, ",
		"Jaeger: " + srv.URL + "/trace/" + fixtureTraceID,
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q lacks %q", i, lines[i], w)
		}
	}

	out.Reset()
	opts.json = true
	if err := taskTrace(context.Background(), &out, &errOut, viewOf(fixtureTraceID), "t-1", opts); err != nil {
		t.Fatal(err)
	}
	var got traceJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Spans) != 4 || got.TraceID != fixtureTraceID ||
		got.Jaeger != srv.URL+"/trace/"+fixtureTraceID || got.Spans[0].Service != "eqtest-client" {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
}

func TestTaskTraceErrors(t *testing.T) {
	srv, _ := fakeJaeger(t, 1<<30)
	ctx := context.Background()
	var out bytes.Buffer

	err := taskTrace(ctx, &out, &out, viewOf(""), "t-1", traceOptions{jaegerURL: srv.URL})
	if err == nil || err.Error() != "task t-1 was not traced: run with OTEL_EXPORTER_OTLP_ENDPOINT set" {
		t.Fatalf("untraced task: %v", err)
	}
	start := time.Now()
	err = taskTrace(ctx, &out, &out, viewOf(fixtureTraceID), "t-1", traceOptions{jaegerURL: srv.URL, waitTrace: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "is not in Jaeger at "+srv.URL+" after 300ms") {
		t.Fatalf("trace never arriving: %v", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("gave up after %s, before --wait-trace", waited)
	}
	lost := getterFunc(func(context.Context, string) (protocol.TaskView, error) {
		return protocol.TaskView{}, errors.New("not_found")
	})
	if err := taskTrace(ctx, &out, &out, lost, "t-1", traceOptions{jaegerURL: srv.URL}); err == nil || err.Error() != "not_found" {
		t.Fatalf("unknown task: %v", err)
	}

	// Flag mistakes are usage errors, found before connecting.
	t.Setenv("EQ_JAEGER_URL", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"t-1", "--creds", "x.creds"}, "--jaeger URL"},
		{[]string{"t-1", "--creds", "x.creds", "--jaeger", "localhost:16686"}, "--jaeger: jaeger: invalid URL"},
		{[]string{"t-1", "--creds", "x.creds", "--jaeger", srv.URL, "--wait-trace", "-1s"}, "--wait-trace"},
		{[]string{"--creds", "x.creds", "--jaeger", srv.URL}, "exactly one TASK_ID"},
	} {
		cmd := newTaskTraceCommand()
		cmd.SetArgs(tc.args)
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

// inProcessClient connects a client principal with the tracer provider tp.
func inProcessClient(t *testing.T, url, dataDir, tenant, name string, tp trace.TracerProvider) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, url, filepath.Join(dataDir, "creds", tenant, name+".creds"), client.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// submitAndWait submits to code once the orchestrator answers and waits
// for the task to complete.
func submitAndWait(t *testing.T, ctx context.Context, c *client.Client) string {
	t.Helper()
	for {
		acc, err := c.Submit(ctx, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"hi"`)})
		if err == nil {
			final, err := c.Watch(ctx, acc.TaskID, func(client.Update) {})
			if err != nil || final.State != protocol.StateCompleted {
				t.Fatalf("task %s: %s %v", acc.TaskID, final.State, err)
			}
			return acc.TaskID
		}
		if !strings.Contains(err.Error(), "no orchestrator") || ctx.Err() != nil {
			t.Fatalf("submit: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the orchestrator is still starting
	}
}

func TestCLITaskTraceAudit(t *testing.T) {
	// The orchestrator exports no spans; it carries on the trace a client
	// starts.
	dir, url := startTaskStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A traced submit: spans are made (nowhere exported), so the events
	// carry a traceparent.
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	traced := inProcessClient(t, url, dir, "acme", "client", tp)
	spanCtx, root := tp.Tracer("test").Start(ctx, "test submit")
	tracedID := submitAndWait(t, spanCtx, traced)
	root.End()
	traceID := root.SpanContext().TraceID().String()

	// An untraced submit.
	untraced := inProcessClient(t, url, dir, "acme", "client", noop.NewTracerProvider())
	plainID := submitAndWait(t, ctx, untraced)
	creds := filepath.Join(dir, "creds", "acme", "client.creds")
	cmd := newTaskTraceCommand()
	cmd.SetArgs([]string{plainID, "--creds", creds, "--server", url, "--data-dir", dir, "--jaeger", ""})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "task "+plainID+" was not traced") {
		t.Fatalf("task trace of an untraced task: %v", err)
	}

	// The task view names the trace once the orchestrator records it; until
	// then the test supplies the one the client started.
	getter := getterFunc(func(ctx context.Context, id string) (protocol.TaskView, error) {
		v, err := traced.Get(ctx, id)
		if err == nil && v.TraceID == "" {
			v.TraceID = traceID
		}
		if v.TraceID != traceID {
			t.Errorf("task %s has trace id %q, the client started %s", id, v.TraceID, traceID)
		}
		return v, err
	})
	opts := traceOptions{tenant: "acme", server: url, dataDir: dir}
	// Audit records are written asynchronously: wait for the last one.
	var out, errOut bytes.Buffer
	for deadline := time.Now().Add(10 * time.Second); ; {
		out.Reset()
		errOut.Reset()
		if err := taskTrace(ctx, &out, &errOut, getter, tracedID, opts); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "completed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no completed record:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	text := out.String()
	t.Logf("task trace without Jaeger:\n%s", text)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if !strings.HasPrefix(lines[0], "task "+tracedID+"  trace "+traceID) {
		t.Errorf("header %q", lines[0])
	}
	decisions := []string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		decisions = append(decisions, f[1])
		if !strings.HasPrefix(f[0], "+") || !strings.Contains(l, "from=eq://acme/") {
			t.Errorf("hop line %q", l)
		}
		if strings.Contains(l, "trace=") {
			t.Errorf("hop of another trace: %q", l)
		}
	}
	if got := strings.Join(decisions, " "); got != "accepted dispatched running completed" {
		t.Errorf("decisions %q, want accepted dispatched running completed:\n%s", got, text)
	}
	if !strings.Contains(lines[1], "from=eq://acme/client") || strings.Contains(lines[1], "span=-") {
		t.Errorf("the accepted record holds the client's submit and its span: %q", lines[1])
	}
	if !strings.Contains(lines[2], "from=eq://acme/orchestrator") || strings.Contains(lines[2], "span=-") {
		t.Errorf("the dispatched record holds the orchestrator's dispatch and its span: %q", lines[2])
	}
	if !strings.Contains(errOut.String(), "--jaeger") {
		t.Errorf("no hint that a span tree needs Jaeger: %q", errOut.String())
	}

	out.Reset()
	opts.json = true
	if err := taskTrace(ctx, &out, &errOut, getter, tracedID, opts); err != nil {
		t.Fatal(err)
	}
	var got hopsJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Tenant != "acme" || len(got.Hops) != 4 ||
		got.Hops[0].TraceID != traceID || len(got.Hops[0].SpanID) != 16 || got.Hops[1].Source != "eq://acme/orchestrator" {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
}
