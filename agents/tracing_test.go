package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// spans is what every service of the test exported, in one place.
type spans struct {
	recorder *tracetest.SpanRecorder
}

// provider is a tracer provider for one service, recording into s.
func (s *spans) provider(t *testing.T, service string) trace.TracerProvider {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(s.recorder),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

func service(s sdktrace.ReadOnlySpan) string {
	v, _ := s.Resource().Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestOneTracePerFlow runs a flow with a gate, a failing first attempt and
// a subtask through the real orchestrator and SDK agents, each its own
// service, and checks the trace: one trace id for the whole flow; spans
// from the client, the orchestrator and every agent; agent spans under
// the orchestrator's dispatch; the subtask under its parent's handler; the
// retry linked to the earlier attempt; the gate's verdict.
func TestOneTracePerFlow(t *testing.T) {
	rec := &spans{recorder: tracetest.NewSpanRecorder()}
	h := newHarness(t,
		orchestrator.WithTracerProvider(rec.provider(t, "equilateral-orchestrator")),
		orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
			Capabilities: map[string]orchestrator.CapabilityPolicy{"alpha": {Gate: "review"}},
		}}))
	env := h.env
	run := func(name, capability string, f agents.HandlerFunc) {
		creds := env.Agent(t, "acme", name, capability)
		h.agent(creds, map[string]agents.HandlerFunc{capability: f}, agents.WithTracerProvider(rec.provider(t, "agent-"+name)))
	}
	ok := func(context.Context, *agents.Task) (any, error) { return map[string]bool{"ok": true}, nil }
	run("alpha", "alpha", ok)
	run("gamma", "gamma", ok)
	run("reviewer", "review", func(context.Context, *agents.Task) (any, error) {
		return map[string]any{"approved": true, "findings": []string{}}, nil
	})
	run("beta", "beta", func(ctx context.Context, task *agents.Task) (any, error) {
		if task.Attempt == 1 {
			return nil, errors.New("flaky the first time")
		}
		task.Progress(ctx, "calling gamma")
		return task.Call(ctx, "gamma", map[string]int{"n": 1}, agents.SubmitOptions{})
	})

	clientCreds := env.Client(t, "acme", "traced")
	nc := env.Connect(t, clientCreds, "traced")
	signer, _ := bus.SignerFromCreds(clientCreds)
	keys, _ := bus.NewStoreKeys(env.Store)
	c, err := client.New(nc, "acme", "traced", signer, keys, bus.WithTracerProvider(rec.provider(t, "client")))
	if err != nil {
		t.Fatal(err)
	}
	clientTracer := rec.provider(t, "client").Tracer("test")
	rootCtx, root := clientTracer.Start(context.Background(), "submit flow")
	acc, err := c.Submit(rootCtx, protocol.SubmitRequest{Capability: protocol.CapabilityFlow, Input: json.RawMessage(`{}`),
		Flow: &protocol.Flow{Name: "traced", Steps: []protocol.FlowStep{{Name: "a", Capability: "alpha"}, {Name: "b", Capability: "beta"}}}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(rootCtx, 30*time.Second)
	defer wcancel()
	v, err := c.Watch(wctx, acc.TaskID, nil)
	root.End()
	if err != nil || v.State != protocol.StateCompleted {
		t.Fatalf("flow %s: %v %s", v.State, err, v.Error)
	}
	if v.TraceID != root.SpanContext().TraceID().String() {
		t.Fatalf("task view trace id %q, want the submit's %s", v.TraceID, root.SpanContext().TraceID())
	}

	// The last reports may still be in flight: wait for the final spans.
	var all []sdktrace.ReadOnlySpan
	natstest.Eventually(t, 10*time.Second, func() bool {
		all = rec.recorder.Ended()
		n := 0
		for _, s := range all {
			if s.Name() == "handle beta" {
				n++
			}
		}
		return n == 2
	}, "the two attempts of beta never both ended")

	traceID := root.SpanContext().TraceID()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var flow []sdktrace.ReadOnlySpan
	for _, s := range all {
		if s.SpanContext().TraceID() == traceID {
			byID[s.SpanContext().SpanID()] = s
			flow = append(flow, s)
		}
	}
	parentOf := func(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan { return byID[s.Parent().SpanID()] }
	under := func(s sdktrace.ReadOnlySpan, ancestor func(sdktrace.ReadOnlySpan) bool) bool {
		for p := parentOf(s); p != nil; p = parentOf(p) {
			if ancestor(p) {
				return true
			}
		}
		return false
	}
	named := func(name string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range flow {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return out
	}

	services := map[string]bool{}
	for _, s := range flow {
		services[service(s)] = true
	}
	for _, want := range []string{"client", "equilateral-orchestrator", "agent-alpha", "agent-beta", "agent-gamma", "agent-reviewer"} {
		if !services[want] {
			t.Errorf("no span from service %s in the flow's trace (have %v)", want, services)
		}
	}

	// Every handler span: under the agent's receive, under the
	// orchestrator's send, under its dispatch of that capability.
	for _, capability := range []string{"alpha", "beta", "gamma", "review"} {
		handles := named("handle " + capability)
		if len(handles) == 0 {
			t.Errorf("no handle %s span in the flow's trace", capability)
		}
		for _, hs := range handles {
			receive := parentOf(hs)
			send := parentOf(receive)
			dispatch := parentOf(send)
			if receive == nil || receive.SpanKind() != trace.SpanKindConsumer || send == nil || send.SpanKind() != trace.SpanKindProducer ||
				dispatch == nil || dispatch.Name() != "dispatch "+capability || service(dispatch) != "equilateral-orchestrator" {
				t.Errorf("handle %s is not under receive <- send <- dispatch %s", capability, capability)
				continue
			}
			if attr(hs, "equilateral.task.id") == "" || attr(hs, "equilateral.tenant") != "acme" || attr(dispatch, "equilateral.task.id") != attr(hs, "equilateral.task.id") {
				t.Errorf("handle %s lacks task attributes: %v", capability, hs.Attributes())
			}
		}
	}

	// The subtask's intake is under the second beta attempt's handler.
	var gammaIntake sdktrace.ReadOnlySpan
	for _, s := range named("intake") {
		if attr(s, "equilateral.capability") == "gamma" {
			gammaIntake = s
		}
	}
	if gammaIntake == nil || !under(gammaIntake, func(p sdktrace.ReadOnlySpan) bool {
		return p.Name() == "handle beta" && attr(p, "equilateral.task.attempt") == "2"
	}) {
		t.Error("the subtask's intake is not under the handler of beta's second attempt")
	}

	// The retry's dispatch links to the first attempt.
	var linked bool
	for _, d := range named("dispatch beta") {
		if attr(d, "equilateral.task.attempt") == "2" {
			for _, l := range d.Links() {
				if l.SpanContext.TraceID() == traceID && hasAttr(l.Attributes, "equilateral.link", "previous attempt") {
					linked = true
				}
			}
		}
	}
	if !linked {
		t.Error("the second dispatch of beta has no link to the first attempt")
	}

	// The gate: its span under alpha's task, the reviewer under it, a verdict.
	verdicts := named("gate verdict")
	if len(named("gate review")) != 1 || len(verdicts) != 1 || attr(verdicts[0], "equilateral.gate.approved") != "true" {
		t.Errorf("gate spans: %d gate review, %d verdicts", len(named("gate review")), len(verdicts))
	}
	for _, hs := range named("handle review") {
		if !under(hs, func(p sdktrace.ReadOnlySpan) bool { return p.Name() == "gate review" }) {
			t.Error("the reviewer's handler is not under the gate span")
		}
	}

	// No payloads on any span.
	for _, s := range flow {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), `"ok"`) || strings.Contains(kv.Value.Emit(), `"n"`) {
				t.Errorf("span %s carries a payload in %s", s.Name(), kv.Key)
			}
		}
	}
}

func hasAttr(attrs []attribute.KeyValue, key, value string) bool {
	for _, kv := range attrs {
		if string(kv.Key) == key && kv.Value.Emit() == value {
			return true
		}
	}
	return false
}
