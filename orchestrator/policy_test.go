package orchestrator_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// reviewer approves code unless it contains "eval(".
func reviewer(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
	var req protocol.GateRequest
	json.Unmarshal(d.Input, &req)
	if strings.Contains(string(req.Output), "eval(") {
		return json.RawMessage(`{"approved":false,"findings":["dangerous call: eval"]}`), nil
	}
	return json.RawMessage(`{"approved":true}`), nil
}

func TestReviewerGate(t *testing.T) {
	policies := &orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		Capabilities: map[string]orchestrator.CapabilityPolicy{"code": {Gate: "review"}},
	}}
	h := newHarness(t, orchestrator.WithPolicies(policies))
	h.agent("acme", "coder", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return d.Input, nil // writes whatever it is asked to
	}, "code")
	h.agent("acme", "reviewer", reviewer, "review")
	c := h.client("acme", "client")

	safe := c.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"print(1)"`)})
	v := c.waitState(safe.TaskID, protocol.StateCompleted)
	if string(v.Output) != `"print(1)"` {
		t.Fatalf("approved output %s", v.Output)
	}

	unsafe := c.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`"eval(input())"`)})
	v = c.waitState(unsafe.TaskID, protocol.StateFailed)
	if len(v.Output) != 0 || !strings.Contains(v.Error, "dangerous call: eval") {
		t.Fatalf("rejected task: output %s, error %q", v.Output, v.Error)
	}
}

func TestRateLimitAndCapacity(t *testing.T) {
	policies := &orchestrator.PolicyFile{Tenants: map[string]orchestrator.TenantPolicy{
		"acme": {RatePerSecond: 0.001, Burst: 2},
	}}
	h := newHarness(t, orchestrator.WithPolicies(policies))
	h.agent("acme", "coder", echo, "code")
	c := h.client("acme", "client")
	c.submit(protocol.SubmitRequest{Capability: "code"})
	c.submit(protocol.SubmitRequest{Capability: "code"})
	reply := c.request(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"})
	var r protocol.Refused
	json.Unmarshal(reply.Data(), &r)
	if reply.Type() != protocol.TypeTaskRefused || r.Reason != "rate_limited" || r.RequestID == "" {
		t.Fatalf("third submit: %s %s", reply.Type(), reply.Data())
	}
}

func TestMaxConcurrent(t *testing.T) {
	policies := &orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{MaxConcurrent: 1}}
	h := newHarness(t, orchestrator.WithPolicies(policies))
	release := make(chan struct{})
	h.agent("acme", "slow", func(ctx context.Context, _ *agent, _ protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return json.RawMessage(`1`), nil
	}, "code")
	defer close(release)
	c := h.client("acme", "client")
	first := c.submit(protocol.SubmitRequest{Capability: "code"})
	c.waitState(first.TaskID, protocol.StateRunning)
	reply := c.request(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code"})
	var r protocol.Refused
	json.Unmarshal(reply.Data(), &r)
	if r.Reason != "over_capacity" {
		t.Fatalf("second submit: %s %s", reply.Type(), reply.Data())
	}
}

func TestSchemas(t *testing.T) {
	policies := &orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		Capabilities: map[string]orchestrator.CapabilityPolicy{"code": {
			InputSchema: map[string]any{
				"type":       "object",
				"required":   []any{"language"},
				"properties": map[string]any{"language": map[string]any{"enum": []any{"go", "python"}}},
			},
			OutputSchema: map[string]any{"type": "string"},
		}},
	}}
	h := newHarness(t, orchestrator.WithPolicies(policies))
	ran := make(chan struct{}, 4)
	h.agent("acme", "coder", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		ran <- struct{}{}
		if strings.Contains(string(d.Input), "python") {
			return json.RawMessage(`{"not":"a string"}`), nil // breaks the output schema
		}
		return json.RawMessage(`"package main"`), nil
	}, "code")
	c := h.client("acme", "client")

	reply := c.request(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`{"language":"cobol","secret":"hunter2"}`)})
	var r protocol.Refused
	json.Unmarshal(reply.Data(), &r)
	if r.Reason != "schema_invalid" || strings.Contains(r.Message, "hunter2") || strings.Contains(r.Message, "cobol") {
		t.Fatalf("schema-invalid input: %s %s", reply.Type(), reply.Data())
	}
	select {
	case <-ran:
		t.Fatal("an invalid task was executed")
	default:
	}

	ok := c.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`{"language":"go"}`)})
	c.waitState(ok.TaskID, protocol.StateCompleted)
	bad := c.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`{"language":"python"}`)})
	if v := c.waitState(bad.TaskID, protocol.StateFailed); !strings.Contains(v.Error, "output of code") || v.Attempts != 1 {
		t.Fatalf("schema-invalid output: %+v", v)
	}

	// A broken schema stops the orchestrator at start, not later.
	_, err := orchestrator.New(h.env.URL, h.env.Store, orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		Capabilities: map[string]orchestrator.CapabilityPolicy{"code": {InputSchema: map[string]any{"type": 12}}},
	}}))
	if err == nil {
		t.Fatal("a broken schema was accepted")
	}
}

func TestMaxPerAgent(t *testing.T) {
	policies := &orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{MaxPerAgent: 1}}
	h := newHarness(t, orchestrator.WithPolicies(policies))
	release := make(chan struct{})
	var mu sync.Mutex
	running, peak := 0, 0
	h.agent("acme", "single", func(ctx context.Context, _ *agent, _ protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return json.RawMessage(`1`), nil
	}, "code")
	c := h.client("acme", "client")
	a := c.submit(protocol.SubmitRequest{Capability: "code"})
	c.waitState(a.TaskID, protocol.StateRunning)
	b := c.submit(protocol.SubmitRequest{Capability: "code"})
	// b is offered, handed back, offered again... but never runs alongside a.
	time.Sleep(300 * time.Millisecond)
	if v := c.get(b.TaskID); v.State == protocol.StateRunning {
		t.Fatalf("second task running beside the first: %+v", v)
	}
	close(release)
	c.waitState(a.TaskID, protocol.StateCompleted)
	v := c.waitState(b.TaskID, protocol.StateCompleted)
	if v.Attempts != 1 {
		t.Fatalf("hand-backs spent attempts: %d", v.Attempts)
	}
}

func TestSubmittersPolicy(t *testing.T) {
	policies := &orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		Capabilities: map[string]orchestrator.CapabilityPolicy{"deploy": {Submitters: []string{"release-bot"}}},
	}}
	h := newHarness(t, orchestrator.WithPolicies(policies))
	h.agent("acme", "deployer", echo, "deploy")
	reply := h.client("acme", "intern").request(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "deploy"})
	var r protocol.Refused
	json.Unmarshal(reply.Data(), &r)
	if r.Reason != "forbidden" {
		t.Fatalf("intern asking to deploy: %s %s", reply.Type(), reply.Data())
	}
	bot := h.client("acme", "release-bot")
	acc := bot.submit(protocol.SubmitRequest{Capability: "deploy"})
	bot.waitState(acc.TaskID, protocol.StateCompleted)
}

func TestRetryPolicyPerCapability(t *testing.T) {
	policies := &orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		Capabilities: map[string]orchestrator.CapabilityPolicy{"code": {Retry: &orchestrator.RetryPolicy{MaxAttempts: 1}}},
	}}
	h := newHarness(t, orchestrator.WithPolicies(policies))
	h.agent("acme", "broken", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return nil, &protocol.Report{Message: "always fails"}
	}, "code")
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code"})
	if v := c.waitState(acc.TaskID, protocol.StateDeadLettered); v.Attempts != 1 {
		t.Fatalf("attempts %d, the policy allows 1", v.Attempts)
	}
}
