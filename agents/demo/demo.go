package demo

import (
	"context"
	"encoding/json"
)

// Func runs a demo agent on a task's JSON input. The output is a value to
// encode as JSON: a [Plan], [Code], [Verdict] or [Summary]. A Func keeps no
// state, so it may be called from many goroutines at once.
type Func func(ctx context.Context, input json.RawMessage) (any, error)

// Agent is one demo agent: the agent name it registers under, the
// capability it serves and what it does.
type Agent struct {
	Name        string
	Capability  string
	Description string
	Run         Func
}

// Agents returns the demo agents: planner, coder, reviewer and summarizer,
// in that order. The slice is new on each call; the caller may change it.
func Agents() []Agent {
	return []Agent{
		{
			Name:        "planner",
			Capability:  "plan",
			Description: "splits a feature request into numbered steps",
			Run:         runPlanner,
		},
		{
			Name:        "coder",
			Capability:  "code",
			Description: "writes Go function stubs for a plan (unsafe code when the feature asks for it)",
			Run:         runCoder,
		},
		{
			Name:        "reviewer",
			Capability:  "review",
			Description: "security review: rejects secrets (gitleaks rules, look-alike letters folded) and dangerous calls",
			Run:         runReviewer,
		},
		{
			Name:        "summarizer",
			Capability:  "summarize",
			Description: "summarizes the text in any JSON input and counts its words",
			Run:         runSummarizer,
		},
	}
}

// Lookup returns the demo agent serving capability.
func Lookup(capability string) (Agent, bool) {
	for _, a := range Agents() {
		if a.Capability == capability {
			return a, true
		}
	}
	return Agent{}, false
}
