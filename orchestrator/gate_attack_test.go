package orchestrator_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

func gatedCode() orchestrator.Option {
	return orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
		Capabilities: map[string]orchestrator.CapabilityPolicy{"code": {Gate: "review"}},
	}})
}

// TestFlowStepCannotTakeTheGatesID: a flow whose first step is named
// code-gate (the old gate id of step code, "<flow>-code" + "-gate") and
// answers {"approved":true} does not stand in for the reviewer: the
// unsafe code of step code is still reviewed and rejected, and never
// released.
func TestFlowStepCannotTakeTheGatesID(t *testing.T) {
	h := newAttackHarness(t, gatedCode())
	h.agent("acme", "coder", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`"AWS_KEY = \"AKIAIOSFODNN7EXAMPLE\""`), nil
	}, "code")
	h.agent("acme", "reviewer", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`{"approved":false,"findings":["hard-coded AWS access key"]}`), nil
	}, "review")
	h.agent("acme", "echoer", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return d.Input, nil
	}, "echo")
	c := h.client("acme", "client")
	flow := &protocol.Flow{Name: "bypass", Steps: []protocol.FlowStep{
		{Name: "code-gate", Capability: "echo", Input: map[string]any{"approved": true}},
		{Name: "code", Capability: "code", Input: "${input}"},
	}}
	acc := c.submit(protocol.SubmitRequest{Flow: flow, Input: json.RawMessage(`{"feature":"unsafe login"}`)})
	v := c.waitState(acc.TaskID, protocol.StateFailed)
	if len(v.Output) != 0 || !strings.Contains(v.Error, "hard-coded AWS access key") {
		t.Fatalf("the gate was bypassed: output %s, error %q", v.Output, v.Error)
	}
	// Every derived id is distinct from every other.
	keys := h.taskKeys("acme")
	if n := len(keys); n != 4 { // flow, two steps, one gate
		t.Fatalf("tasks %v, want the flow, its two steps and one gate", keys)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// TestOnlyTheCapabilityHolderClaimsAndOnlyTheClaimantReports: while a
// review task is dispatched, a summarizer (no review capability) reports
// it completed with {"approved":true}; once the reviewer claimed it, a
// second instance of the reviewer does the same. Both are refused, and
// the task ends with the verdict of the instance that claimed it.
func TestOnlyTheCapabilityHolderClaimsAndOnlyTheClaimantReports(t *testing.T) {
	h := newAttackHarness(t)
	dispatched := make(chan protocol.Dispatch, 1)
	release := make(chan struct{})
	h.agent("acme", "reviewer", func(ctx context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		dispatched <- d
		<-release
		return json.RawMessage(`{"approved":false,"findings":["the reviewer's own verdict"]}`), nil
	}, "review")
	summarizer := h.attacker("acme", "summarizer", h.env.Agent(t, "acme", "summarizer", "summarize"))
	twin := h.attacker("acme", "reviewer", h.env.Store.DefaultCredsFile("acme", "reviewer"))
	c := h.client("acme", "client")

	// The summarizer races the dispatch: it may report before or after
	// the reviewer's running report; either way it does not hold the
	// capability.
	acc := c.submit(protocol.SubmitRequest{Capability: "review", Input: json.RawMessage(`{"output":"AKIAIOSFODNN7EXAMPLE"}`)})
	approve := protocol.Report{TaskID: acc.TaskID, Attempt: 1, Output: json.RawMessage(`{"approved":true}`)}
	for _, kind := range []string{protocol.ReportRunning, protocol.ReportProgress, protocol.ReportCompleted} {
		msg := summarizer.signed(protocol.AgentReport("summarizer", kind), protocol.ReportType(kind), approve)
		if err := summarizer.nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	d := <-dispatched
	c.waitState(acc.TaskID, protocol.StateRunning)
	approve.Instance = "another-instance"
	if err := twin.nc.PublishMsg(twin.signed(protocol.AgentReport("reviewer", protocol.ReportCompleted), protocol.TypeTaskCompleted, approve)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		records := h.auditRecordsPaced("acme")
		refused := func(sender string) bool {
			return slices.ContainsFunc(records, func(r auditSummary) bool {
				return r.decision == protocol.DecisionRefused && r.reason == "forbidden" && r.sender == sender
			})
		}
		return refused("summarizer") && refused("reviewer")
	}, "the foreign reports were not refused")
	if v := c.get(acc.TaskID); v.State != protocol.StateRunning || v.Agent != "reviewer" || d.Attempt != 1 {
		t.Fatalf("after the foreign reports the task is %s (agent %q)", v.State, v.Agent)
	}
	close(release)
	v := c.waitState(acc.TaskID, protocol.StateCompleted)
	if !strings.Contains(string(v.Output), "the reviewer's own verdict") {
		t.Fatalf("the task ended with a verdict its claimant did not give: %s", v.Output)
	}
	h.auditVerifies("acme")
	h.otherTenantServed()
}

// TestSubtaskOnlyFromTheAgentRunningTheParent: an agent that does not run
// a task cannot hang subtasks on it (they would be cancelled with it and
// counted in its flow); the agent running it can.
func TestSubtaskOnlyFromTheAgentRunningTheParent(t *testing.T) {
	h := newAttackHarness(t)
	release := make(chan struct{})
	running := make(chan protocol.Dispatch, 1)
	h.agent("acme", "coder", func(_ context.Context, _ *agent, d protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		running <- d
		<-release
		return json.RawMessage(`"done"`), nil
	}, "code")
	h.agent("acme", "helper", func(context.Context, *agent, protocol.Dispatch) (json.RawMessage, *protocol.Report) {
		return json.RawMessage(`"helped"`), nil
	}, "help")
	intruder := h.attacker("acme", "intruder", h.env.Agent(t, "acme", "intruder", "other"))
	c := h.client("acme", "client")
	acc := c.submit(protocol.SubmitRequest{Capability: "code"})
	<-running
	c.waitState(acc.TaskID, protocol.StateRunning)

	sub := intruder.signed(protocol.TasksSubmit, protocol.TypeTaskSubmit, protocol.SubmitRequest{Capability: "help", Parent: acc.TaskID})
	refusedWith(t, intruder.request(sub, 5*time.Second), "forbidden")
	if v := c.get(acc.TaskID); len(v.Subtasks) != 0 {
		t.Fatalf("a subtask from an agent not running the task was linked: %v", v.Subtasks)
	}
	close(release)
	c.waitState(acc.TaskID, protocol.StateCompleted)
	h.auditVerifies("acme")
}
