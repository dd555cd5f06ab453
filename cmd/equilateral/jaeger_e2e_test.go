package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/jaeger"
	"github.com/equilateral-agents/equilateral/internal/jaegertest"
	"github.com/equilateral-agents/equilateral/protocol"
)

// TestJaegerEndToEnd is the tracing promise, proven with the real Jaeger
// v2: `dev` and the CLI export over OTLP to it, the plan -> code -> review
// flow runs (with the reviewer gate on code), and Jaeger's query API then
// holds one trace for the whole flow, with spans from the client, the
// orchestrator and every agent, agent spans under the orchestrator's
// dispatch, and subtasks (flow steps, the gate) under their parents.
func TestJaegerEndToEnd(t *testing.T) {
	j := jaegertest.Start(t)
	bin := equilateralBinary(t)
	dir := t.TempDir()
	otel := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + j.OTLPHTTPEndpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=",
		"OTEL_TRACES_SAMPLER=",
	}
	d := startDevWithEnv(t, dir, otel)
	sh := func(command string) (string, error) {
		cmd := exec.Command("/bin/sh", "-c", command)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "NATS_URL="+d.url, "NATS_CREDS="), otel...)
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return string(out), err
	}
	out, err := sh(bin + ` task submit --creds eq-dev/creds/acme/client.creds --flow eq-dev/flows/plan-code-review.yaml --data '{"feature": "password reset"}' --wait --json`)
	if err != nil {
		t.Fatalf("flow: %v\n%s", err, out)
	}
	var flow protocol.TaskView
	if err := json.Unmarshal([]byte(out), &flow); err != nil || flow.State != protocol.StateCompleted || len(flow.TraceID) != 32 {
		t.Fatalf("flow ended %s with trace id %q (%v):\n%s", flow.State, flow.TraceID, err, out)
	}

	// Spans arrive in batches from six processes: poll until the last
	// expected ones are in (404 means "not yet").
	jc, err := jaeger.NewClient(j.QueryURL)
	if err != nil {
		t.Fatal(err)
	}
	var tr *jaeger.Trace
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tr, err = jc.Trace(ctx, flow.TraceID)
		cancel()
		if err != nil && !errors.Is(err, jaeger.ErrTraceNotFound) {
			t.Fatal(err)
		}
		if err == nil && complete(tr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace never held the whole flow: %s", summarize(tr))
		}
		time.Sleep(200 * time.Millisecond)
	}

	byID := map[string]jaeger.Span{}
	services := map[string]bool{}
	for _, s := range tr.Spans {
		if s.TraceID != flow.TraceID {
			t.Errorf("span %s of trace %s in the answer for %s", s.Name, s.TraceID, flow.TraceID)
		}
		byID[s.SpanID] = s
		services[s.Service] = true
	}
	for _, want := range []string{"equilateral-cli", "equilateral-orchestrator", "agent-planner", "agent-coder", "agent-reviewer"} {
		if !services[want] {
			t.Errorf("no span from %s in the flow's trace (services: %v)", want, services)
		}
	}
	parent := func(s jaeger.Span) (jaeger.Span, bool) {
		p, ok := byID[s.ParentSpanID]
		return p, ok
	}
	ancestors := func(s jaeger.Span) []jaeger.Span {
		var out []jaeger.Span
		for p, ok := parent(s); ok; p, ok = parent(p) {
			out = append(out, p)
		}
		return out
	}
	hasAncestor := func(s jaeger.Span, name string) bool {
		for _, a := range ancestors(s) {
			if a.Name == name {
				return true
			}
		}
		return false
	}

	// Agent spans under the orchestrator's dispatch: handle <- receive
	// <- send <- dispatch.
	for _, s := range tr.Spans {
		capability, ok := strings.CutPrefix(s.Name, "handle ")
		if !ok {
			continue
		}
		receive, ok1 := parent(s)
		send, ok2 := parent(receive)
		dispatch, ok3 := parent(send)
		if !ok1 || !ok2 || !ok3 || receive.Kind != jaeger.KindConsumer || send.Kind != jaeger.KindProducer ||
			dispatch.Name != "dispatch "+capability || dispatch.Service != "equilateral-orchestrator" {
			t.Errorf("%s (%s) is not under receive <- send <- dispatch %s", s.Name, s.Service, capability)
		}
		if s.Attributes["equilateral.task.id"] == "" || s.Attributes["equilateral.tenant"] != "acme" {
			t.Errorf("%s lacks its task attributes: %v", s.Name, s.Attributes)
		}
	}
	// Subtasks under their parents: every step under its flow step span
	// under the flow's intake; the gate under the code step.
	for _, step := range []string{"plan", "code", "review"} {
		var found bool
		for _, s := range tr.Spans {
			if s.Name == "dispatch "+step && hasAncestor(s, "flow step "+step) && hasAncestor(s, "intake") {
				found = true
			}
		}
		if !found {
			t.Errorf("no dispatch %s under flow step %s under the flow's intake", step, step)
		}
	}
	var gated bool
	for _, s := range tr.Spans {
		if s.Name == "handle review" && hasAncestor(s, "gate review") && hasAncestor(s, "flow step code") {
			gated = true
		}
	}
	if !gated {
		t.Error("the reviewer's gate handling is not under the gate span under the code step")
	}
	// The client's command is the root of it all.
	for _, s := range tr.Spans {
		if s.Name == "intake" && !hasAncestor(s, "equilateral task submit") && s.Attributes["equilateral.capability"] == "flow" {
			t.Error("the flow's intake is not under the client's submit command")
		}
	}

	// And the CLI shows it.
	out, err = sh(bin + " task trace --creds eq-dev/creds/acme/client.creds --jaeger " + j.QueryURL + " " + flow.TaskID)
	if err != nil {
		t.Fatalf("task trace: %v\n%s", err, out)
	}
	t.Logf("task trace:\n%s", out)
	for _, want := range []string{"agent-reviewer: handle review", "equilateral-orchestrator: dispatch code", "Jaeger: " + j.QueryURL + "/trace/" + flow.TraceID} {
		if !strings.Contains(out, want) {
			t.Errorf("task trace output lacks %q:\n%s", want, out)
		}
	}
}

// complete reports whether the trace holds every span the flow must have
// produced: three steps and the gate handled, the client's delivery seen.
func complete(tr *jaeger.Trace) bool {
	count := map[string]int{}
	for _, s := range tr.Spans {
		count[s.Service+"/"+s.Name]++
	}
	return count["agent-planner/handle plan"] == 1 && count["agent-coder/handle code"] == 1 &&
		count["agent-reviewer/handle review"] == 2 && count["equilateral-cli/equilateral task submit"] == 1 &&
		count["equilateral-orchestrator/gate verdict"] == 1
}

func summarize(tr *jaeger.Trace) string {
	if tr == nil {
		return "no trace"
	}
	names := map[string]int{}
	for _, s := range tr.Spans {
		names[s.Service+"/"+s.Name]++
	}
	return fmt.Sprintf("%d spans: %v", len(tr.Spans), names)
}
