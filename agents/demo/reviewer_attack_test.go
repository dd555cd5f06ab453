package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/agents"
	"github.com/equilateral-agents/equilateral/agents/demo"
	"github.com/equilateral-agents/equilateral/audit"
	"github.com/equilateral-agents/equilateral/bus"
	"github.com/equilateral-agents/equilateral/client"
	"github.com/equilateral-agents/equilateral/internal/natstest"
	"github.com/equilateral-agents/equilateral/internal/orchtest"
	"github.com/equilateral-agents/equilateral/orchestrator"
	"github.com/equilateral-agents/equilateral/protocol"
)

// Attack tests for issue 10, 2c: a coder that wants a secret past the
// review gate writes it in a form the reviewer's hand-written rules did
// not know. Everything is real but the coder's output: the server, the
// tenant, the orchestrator with `code` gated by `review`, the demo
// reviewer run by the agents SDK, and a client with its own creds.

// leak is code carrying a secret in one form, and the reviewer's finding
// for it.
type leak struct {
	form    string
	path    string
	content string
	finding string // as the gate reports it
}

func leaks() []leak {
	goFile := func(decl string) string {
		return "package feature\n\n// Settings of the service.\n" + decl + "\n"
	}
	return []leak{
		{"unquoted password in YAML", "config.yaml",
			"database:\n  host: db.internal\n  password: " + unquotedPw + "\n",
			"hard-coded secret in output.files[0].content (line 3)"},
		{"GitHub token", "client.go",
			goFile(`var gh = github.NewClient(nil).WithAuthToken("` + githubToken + `")`),
			"hard-coded GitHub token in output.files[0].content (line 4)"},
		{"JWT", "session.go",
			goFile(`const session = "Bearer ` + exampleJWT + `"`),
			"hard-coded JSON Web Token in output.files[0].content (line 4)"},
		{"Cyrillic а in password", "login.go",
			goFile(`const pаssword = "hunter2-correct-horse"`),
			"hard-coded secret in output.files[0].content (line 4)"},
		{"fullwidth password", "login.go",
			goFile(`const ｐａｓｓｗｏｒｄ = "hunter2-correct-horse"`),
			"hard-coded secret in output.files[0].content (line 4)"},
		{"zero-width space in password", "login.go",
			goFile("const pass\u200bword = \"hunter2-correct-horse\""),
			"hard-coded secret in output.files[0].content (line 4)"},
		// Not a miss of the old rules, but of gitleaks used naively: a
		// "gitleaks:allow" comment hides a line from it.
		{"gitleaks:allow comment", "keys.go",
			goFile(`const awsKey = "` + accessKey + `" // gitleaks:allow`),
			"hard-coded AWS access key in output.files[0].content (line 4)"},
	}
}

// gatedTenant is tenant acme with an orchestrator that gates `code` by
// `review`, the demo reviewer, a coder and a client.
type gatedTenant struct {
	t      *testing.T
	env    *natstest.Env
	client *client.Client
}

// startGatedTenant starts it all. The coder writes the leak named by its
// input's "form"; any other input goes to the demo coder.
func startGatedTenant(t *testing.T) *gatedTenant {
	t.Helper()
	env := natstest.Start(t)
	env.Tenant(t, "acme")
	orchtest.Start(t, env,
		orchestrator.WithTick(10*time.Millisecond),
		orchestrator.WithPolicies(&orchestrator.PolicyFile{Default: orchestrator.TenantPolicy{
			Capabilities: map[string]orchestrator.CapabilityPolicy{"code": {Gate: "review"}},
		}}),
	)
	forms := map[string]leak{}
	for _, l := range leaks() {
		forms[l.form] = l
	}
	coder, _ := demo.Lookup("code")
	runAgentSDK(t, env, env.Agent(t, "acme", "coder", "code"), "code", func(ctx context.Context, task *agents.Task) (any, error) {
		var in struct{ Form string }
		if err := json.Unmarshal(task.Input, &in); err == nil && in.Form != "" {
			l, ok := forms[in.Form]
			if !ok {
				return nil, agents.Permanent(errors.New("no such form"))
			}
			return demo.Code{Feature: l.form, Language: "go", Files: []demo.File{{Path: l.path, Content: l.content}}}, nil
		}
		return demoRun(ctx, coder, task)
	})
	reviewer, _ := demo.Lookup("review")
	runAgentSDK(t, env, env.Agent(t, "acme", "reviewer", "review"), "review", func(ctx context.Context, task *agents.Task) (any, error) {
		return demoRun(ctx, reviewer, task)
	})
	planner, _ := demo.Lookup("plan")
	runAgentSDK(t, env, env.Agent(t, "acme", "planner", "plan"), "plan", func(ctx context.Context, task *agents.Task) (any, error) {
		return demoRun(ctx, planner, task)
	})

	creds := env.Client(t, "acme", "client")
	signer, err := bus.SignerFromCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(env.Store)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Connect(t, creds, "client"), "acme", "client", signer, keys)
	if err != nil {
		t.Fatal(err)
	}
	return &gatedTenant{t: t, env: env, client: c}
}

// demoRun runs a demo agent as `equilateral agent run` does: bad input is
// a permanent error.
func demoRun(ctx context.Context, a demo.Agent, task *agents.Task) (any, error) {
	out, err := a.Run(ctx, task.Input)
	if errors.Is(err, demo.ErrInput) {
		return nil, agents.Permanent(err)
	}
	return out, err
}

// runAgentSDK connects an agent with the agents SDK and runs it until the
// test ends.
func runAgentSDK(t *testing.T, env *natstest.Env, creds, capability string, h agents.HandlerFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := agents.Connect(ctx, env.URL, creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Handle(capability, h); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
}

func (g *gatedTenant) submit(req protocol.SubmitRequest) string {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acc, err := g.client.Submit(ctx, req)
	if err != nil {
		g.t.Fatalf("submit: %v", err)
	}
	return acc.TaskID
}

// watch follows a task to its end and returns it, with every output the
// client was shown on the way.
func (g *gatedTenant) watch(id string) (protocol.TaskView, []json.RawMessage) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var shown []json.RawMessage
	v, err := g.client.Watch(ctx, id, func(u client.Update) {
		if u.View != nil && len(u.View.Output) > 0 {
			shown = append(shown, u.View.Output)
		}
		if u.Report != nil && len(u.Report.Output) > 0 {
			shown = append(shown, u.Report.Output)
		}
	})
	if err != nil {
		g.t.Fatalf("watch %s: %v", id, err)
	}
	return v, shown
}

// auditVerifies asserts that every record of the tenant's audit stream
// still verifies.
func (g *gatedTenant) auditVerifies() {
	g.t.Helper()
	js, err := jetstream.New(g.env.Connect(g.t, g.env.OrchestratorCreds("acme"), "orchestrator"))
	if err != nil {
		g.t.Fatal(err)
	}
	keys, err := bus.NewStoreKeys(g.env.Store, bus.WithRetiredKeys())
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	report, err := audit.Verify(ctx, js, "acme", keys)
	if err != nil {
		g.t.Fatal(err)
	}
	if !report.OK() || report.Verified == 0 {
		g.t.Fatalf("the audit does not verify: %+v", report)
	}
}

// TestReviewGateHoldsBackSecretsInFormsTheHandWrittenRulesMissed: for each
// form, the gated code task fails with the reviewer's finding, which names
// the secret's kind and place but not the secret, and its output is never
// released: not in the final view, not in any update on the way.
func TestReviewGateHoldsBackSecretsInFormsTheHandWrittenRulesMissed(t *testing.T) {
	g := startGatedTenant(t)
	ids := map[string]string{}
	for _, l := range leaks() {
		ids[l.form] = g.submit(protocol.SubmitRequest{Capability: "code", Input: json.RawMessage(`{"form":` + quote(l.form) + `}`)})
	}
	secrets := []string{unquotedPw, githubToken, exampleJWT[:20], "hunter2", accessKey}
	for _, l := range leaks() {
		t.Run(l.form, func(t *testing.T) {
			v, shown := g.watch(ids[l.form])
			if want := "rejected by the review gate: " + l.finding; v.State != protocol.StateFailed || v.Error != want {
				t.Errorf("task %s: %q\nwant failed: %q", v.State, v.Error, want)
			}
			if len(v.Output) != 0 || len(shown) != 0 {
				t.Errorf("the output was released: %s %s", v.Output, shown)
			}
			for _, s := range secrets {
				if strings.Contains(v.Error, s) {
					t.Errorf("the rejection shows the secret: %q", v.Error)
				}
			}
		})
	}
	g.auditVerifies()
}

// TestReviewGateStillReleasesSafeCodeAndHoldsTheREADMEsUnsafeLogin: what
// the README quickstart shows, through the demo flow plan → code → review
// and the gate: "password reset" ends with the reviewer's approval and no
// finding (no false positive), "unsafe login" with the AWS key finding.
func TestReviewGateStillReleasesSafeCodeAndHoldsTheREADMEsUnsafeLogin(t *testing.T) {
	g := startGatedTenant(t)
	flow := &protocol.Flow{Name: "plan-code-review", Steps: []protocol.FlowStep{
		{Name: "plan", Capability: "plan", Input: map[string]any{"feature": "${input.feature}"}},
		{Name: "code", Capability: "code", Input: map[string]any{"plan": "${steps.plan.output}"}},
		{Name: "review", Capability: "review", Input: map[string]any{"code": "${steps.code.output}", "feature": "${input.feature}"}},
	}}
	safe := g.submit(protocol.SubmitRequest{Flow: flow, Input: json.RawMessage(`{"feature": "password reset"}`)})
	unsafe := g.submit(protocol.SubmitRequest{Flow: flow, Input: json.RawMessage(`{"feature": "unsafe login"}`)})

	v, _ := g.watch(safe)
	if v.State != protocol.StateCompleted || string(v.Output) != `{"approved":true}` {
		t.Errorf("password reset: %s %s %q", v.State, v.Output, v.Error)
	}
	v, shown := g.watch(unsafe)
	if v.State != protocol.StateFailed || !strings.Contains(v.Error, "rejected by the review gate: hard-coded AWS access key in output.files[0].content (line 30)") {
		t.Errorf("unsafe login: %s %q", v.State, v.Error)
	}
	if len(v.Output) != 0 || len(shown) != 0 || strings.Contains(v.Error, accessKey) {
		t.Errorf("unsafe login released or shown: %s %s %q", v.Output, shown, v.Error)
	}
	g.auditVerifies()
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
