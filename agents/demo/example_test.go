package demo_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/equilateral-agents/equilateral/agents/demo"
)

func ExampleAgents() {
	for _, a := range demo.Agents() {
		fmt.Println(a.Name, a.Capability)
	}
	// Output:
	// planner plan
	// coder code
	// reviewer review
	// summarizer summarize
}

func ExampleLookup() {
	reviewer, ok := demo.Lookup("review")
	if !ok {
		return
	}
	input := json.RawMessage(`{"file": "import os\nos.system(cmd)\n", "feature": "unsafe eval"}`)
	out, err := reviewer.Run(context.Background(), input)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	// Output:
	// {"approved":false,"findings":["dangerous call os.system() in file (line 2)"]}
}

// The demo flow plan → code → review, by hand.
func Example_flow() {
	ctx := context.Background()
	run := func(capability string, input any) any {
		agent, _ := demo.Lookup(capability)
		b, _ := json.Marshal(input)
		out, err := agent.Run(ctx, b)
		if err != nil {
			panic(err)
		}
		return out
	}
	plan := run("plan", map[string]any{"feature": "password reset"})
	code := run("code", map[string]any{"plan": plan}).(demo.Code)
	verdict := run("review", map[string]any{"code": code, "feature": "password reset"}).(demo.Verdict)
	fmt.Println(code.Files[0].Path, verdict.Approved)

	code = run("code", map[string]any{"feature": "unsafe login"}).(demo.Code)
	verdict = run("review", map[string]any{"code": code}).(demo.Verdict)
	fmt.Println(verdict.Approved)
	for _, f := range verdict.Findings {
		fmt.Println(f)
	}
	// Output:
	// password_reset.go true
	// false
	// hard-coded AWS access key in code.files[0].content (line 30)
	// hard-coded secret in code.files[0].content (line 34)
}
