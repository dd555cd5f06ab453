package orchestrator_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/examples"
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

func TestParsePolicyExample(t *testing.T) {
	p, err := orchestrator.ParsePolicy(examples.Policy, "examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	retry := p.Default.Capabilities["code"].Retry
	if retry == nil || retry.MaxAttempts != 5 || retry.InitialBackoff != 500*time.Millisecond || retry.AttemptTimeout != 2*time.Minute {
		t.Fatalf("retry policy of code: %+v", retry)
	}
	if p.Default.Capabilities["code"].Gate != "review" || p.Tenants["globex"].MaxConcurrent != 100 {
		t.Fatalf("policy %+v", p)
	}
	if !p.Default.Capabilities["code"].GeneratesCode || p.Default.Capabilities["plan"].GeneratesCode {
		t.Fatalf("generates_code: code %v, plan %v", p.Default.Capabilities["code"].GeneratesCode, p.Default.Capabilities["plan"].GeneratesCode)
	}
	if got := p.CodeGenerating(); !slices.Equal(got, []string{"code"}) {
		t.Fatalf("code-generating capabilities %v, want [code]", got)
	}
	if o := p.ObserveOutputGate(); !o.On {
		t.Fatalf("the example's output gate: %+v", o)
	}
}

// TestObserveOutputGate: the output gate control is on only when every
// capability marked generates_code has a gate (not itself) in the default
// policy and in every tenant's own entry, which replaces the default
// whole; when off, it names each capability without one, and where.
func TestObserveOutputGate(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		codeGen    []string
		on         bool
		say, never []string
	}{
		{name: "nothing marked", yaml: "default:\n  capabilities:\n    code: {gate: review}\n    plan: {}\n",
			on: true, say: []string{"no capability"}},
		{name: "gated", yaml: "default:\n  capabilities:\n    code: {generates_code: true, gate: review}\n    plan: {}\n",
			codeGen: []string{"code"}, on: true, say: []string{"code"}},
		{name: "two ungated", yaml: "default:\n  capabilities:\n    deploy: {generates_code: true}\n    code: {generates_code: true, retry: {max_attempts: 2}}\n    plan: {}\n",
			codeGen: []string{"code", "deploy"}, say: []string{"code (default)", "deploy (default)"}, never: []string{"plan"}},
		{name: "explicitly false", yaml: "default:\n  capabilities:\n    code: {generates_code: false}\n",
			on: true, say: []string{"no capability"}},
		{name: "gated by itself", yaml: "default:\n  capabilities:\n    code: {generates_code: true, gate: code}\n",
			codeGen: []string{"code"}, say: []string{"code (default)"}},
		{name: "tenant entry drops the gate",
			yaml:    "default:\n  capabilities:\n    code: {generates_code: true, gate: review}\ntenants:\n  globex:\n    capabilities:\n      code: {generates_code: true}\n  acme:\n    capabilities:\n      code: {gate: review}\n",
			codeGen: []string{"code"}, say: []string{"code (tenant globex)"}, never: []string{"code (default)", "acme"}},
		{name: "tenant entry leaves the capability out",
			yaml:    "default:\n  capabilities:\n    code: {generates_code: true, gate: review}\ntenants:\n  initech:\n    max_concurrent: 5\n",
			codeGen: []string{"code"}, say: []string{"code (tenant initech)"}, never: []string{"code (default)"}},
		{name: "marked in a tenant only",
			yaml:    "default:\n  capabilities:\n    plan: {}\ntenants:\n  globex:\n    capabilities:\n      build: {generates_code: true, gate: review}\n",
			codeGen: []string{"build"}, say: []string{"build (default)"}, never: []string{"globex"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := orchestrator.ParsePolicy([]byte(tc.yaml), "p.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if got := p.CodeGenerating(); !slices.Equal(got, tc.codeGen) && len(got)+len(tc.codeGen) > 0 {
				t.Errorf("code-generating %v, want %v", got, tc.codeGen)
			}
			o := p.ObserveOutputGate()
			if o.On != tc.on {
				t.Errorf("on = %v, want %v (%s)", o.On, tc.on, o.Detail)
			}
			for _, want := range tc.say {
				if !strings.Contains(o.Detail, want) {
					t.Errorf("detail %q does not name %q", o.Detail, want)
				}
			}
			for _, not := range tc.never {
				if strings.Contains(o.Detail, not) {
					t.Errorf("detail %q names %q", o.Detail, not)
				}
			}
		})
	}
	var none *orchestrator.PolicyFile
	if none.CodeGenerating() != nil || !none.ObserveOutputGate().On {
		t.Errorf("no policy: %v, %+v", none.CodeGenerating(), none.ObserveOutputGate())
	}
}

// goTypeNames must never reach whoever wrote a policy file.
var goTypeNames = []string{"orchestrator.", "time.Duration", "map[", "[]", "int64", "float64", "yaml: unmarshal"}

// TestParsePolicyErrors: each mistake is named with the file, the line
// and what was wanted, in YAML's terms.
func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"misspelt field", "default:\n  rate_per_sec: 5\n", []string{`p.yaml: line 2: unknown field "rate_per_sec"`}},
		{"string for a number", "default:\n  burst: lots\n", []string{`p.yaml: line 2: want a whole number, got the string "lots"`}},
		{"bad duration", "default:\n  capabilities:\n    code:\n      retry:\n        max_backoff: soon\n",
			[]string{`p.yaml: line 5: want a duration such as 500ms or 2m, got the string "soon"`}},
		{"number for a mapping", "tenants: 5\n", []string{"p.yaml: line 1: want a mapping, got 5"}},
		{"mapping for a list", "default:\n  capabilities:\n    deploy:\n      submitters: {a: b}\n", []string{"p.yaml: line 4: want a list, got a mapping"}},
		{"two mistakes", "default:\n  burst: lots\n  max_concurrent: many\n",
			[]string{`p.yaml: line 2: want a whole number, got the string "lots"`, `p.yaml: line 3: want a whole number, got the string "many"`}},
		{"not YAML", "default: [1\n", []string{"p.yaml: line 1: did not find expected ',' or ']'"}},
		{"tab indent", "default:\n\tburst: 1\n", []string{"p.yaml: line 2: found character that cannot start any token"}},
		{"empty", "", []string{"p.yaml: empty policy file"}},
		{"two documents", "default:\n  burst: 1\n---\ndefault:\n  burst: 2\n", []string{"p.yaml: more than one YAML document"}},
		{"bad schema", "default:\n  capabilities:\n    plan:\n      input_schema: {type: 5}\n", []string{"p.yaml: policy default: "}},
		{"misspelt generates_code", "default:\n  capabilities:\n    code:\n      generate_code: true\n", []string{`p.yaml: line 4: unknown field "generate_code"`}},
		{"generates_code not a boolean", "default:\n  capabilities:\n    code:\n      generates_code: maybe\n", []string{`p.yaml: line 4: want true or false, got the string "maybe"`}},
		// The credential maximum age is the data dir's (security.json) and
		// the orchestrator config's, not the policy's.
		{"max_credential_age", "default:\n  max_credential_age: 720h\n", []string{`p.yaml: line 2: unknown field "max_credential_age"`}},
		{"max_credential_age at the top", "max_credential_age: 720h\n", []string{`p.yaml: line 1: unknown field "max_credential_age"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := orchestrator.ParsePolicy([]byte(tc.yaml), "p.yaml")
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			for _, name := range goTypeNames {
				if strings.Contains(err.Error(), name) {
					t.Errorf("error %q shows the Go type name %q", err, name)
				}
			}
		})
	}
}

// FuzzParsePolicy: any input is parsed or refused without a panic, and a
// refusal names the file and shows no Go type name the input did not
// hold itself.
func FuzzParsePolicy(f *testing.F) {
	f.Add(examples.Policy)
	for _, seed := range []string{"default:\n  rate_per_sec: 5\n", "tenants: 5\n", "default:\n  burst: lots\n", "default: [1\n", "---\n---\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := orchestrator.ParsePolicy(raw, "fuzz.yaml")
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
			t.Fatalf("error does not name the file: %q", err)
		}
		for _, name := range goTypeNames[:3] { // the others may be quoted from the input, cut short
			if strings.Contains(err.Error(), name) && !strings.Contains(string(raw), name) {
				t.Fatalf("error %q shows the Go type name %q", err, name)
			}
		}
	})
}
