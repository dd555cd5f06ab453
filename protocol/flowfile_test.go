package protocol_test

import (
	"strings"
	"testing"
	"time"

	"github.com/equilateral-agents/equilateral/examples"
	"github.com/equilateral-agents/equilateral/protocol"
)

func TestParseFlowExample(t *testing.T) {
	flow, err := protocol.ParseFlow(examples.PlanCodeReviewFlow, "plan-code-review.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if flow.Name != "plan-code-review" || len(flow.Steps) != 3 || flow.Steps[2].Capability != "review" {
		t.Fatalf("flow %+v", flow)
	}
	in, _ := flow.Steps[2].Input.(map[string]any)
	if in["code"] != "${steps.code.output}" {
		t.Fatalf("review input %v", flow.Steps[2].Input)
	}
}

func TestParseFlowTimeout(t *testing.T) {
	flow, err := protocol.ParseFlow([]byte("steps:\n  - name: a\n    capability: x\n    timeout: 1m30s\n  - name: b\n    capability: y\n    timeout:\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if flow.Steps[0].Timeout != protocol.Duration(90*time.Second) || flow.Steps[1].Timeout != 0 {
		t.Fatalf("timeouts %v, %v", flow.Steps[0].Timeout, flow.Steps[1].Timeout)
	}
}

// goTypeNames must never reach whoever wrote a flow file.
var goTypeNames = []string{"protocol.", "[]", "map[", "interface {}", "yaml: unmarshal", "time: "}

// TestParseFlowErrors: each mistake is named with the file, the line
// (where YAML has one) and what was wanted, in YAML's terms.
func TestParseFlowErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"misspelt field", "steps:\n  - nam: a\n", []string{`f.yaml: line 2: unknown field "nam"`}},
		{"mapping for the steps", "steps: {}\n", []string{"f.yaml: line 1: want a list, got a mapping"}},
		{"list for a step", "steps:\n  - [a, b]\n", []string{"f.yaml: line 2: want a mapping, got a list"}},
		{"list for a name", "name: [a]\nsteps: []\n", []string{"f.yaml: line 1: want a string, got a list"}},
		{"bad timeout", "steps:\n  - name: a\n    capability: x\n    timeout: soon\n", []string{"f.yaml: line 4: timeout: want a duration such as 30s"}},
		{"timeout without unit", "steps:\n  - name: a\n    capability: x\n    timeout: 30\n", []string{"f.yaml: line 4: timeout: want a duration"}},
		{"negative timeout", "steps:\n  - name: a\n    capability: x\n    timeout: -5s\n", []string{"f.yaml: line 4: timeout: want a duration"}},
		{"mapping for a timeout", "steps:\n  - name: a\n    capability: x\n    timeout: {s: 1}\n", []string{"f.yaml: line 4: timeout: want a duration"}},
		{"timeout by alias", "x: &t soon\nsteps:\n  - name: a\n    capability: x\n    timeout: *t\n", []string{"f.yaml: line 1: timeout: want a duration"}},
		{"timeout by merge", "base: &b\n  timeout: soon\nsteps:\n  - <<: *b\n    name: a\n    capability: x\n", []string{"f.yaml: a step's timeout: want a duration"}},
		{"forward reference", "steps:\n  - name: a\n    capability: x\n    input: ${steps.b.output}\n", []string{`f.yaml: step "a" refers to "b", which is not an earlier step`}},
		{"no steps", "name: nothing\n", []string{"f.yaml: flow has no steps"}},
		{"bad capability", "steps:\n  - name: a\n    capability: Bad Name\n", []string{`f.yaml: step "a": `}},
		{"not YAML", "steps: [\n", []string{"f.yaml: line "}},
		{"empty", "", []string{"f.yaml: empty flow file"}},
		{"two documents", "steps:\n  - name: a\n    capability: x\n---\nsteps: []\n", []string{"f.yaml: more than one YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flow, err := protocol.ParseFlow([]byte(tc.yaml), "f.yaml")
			if err == nil {
				t.Fatalf("accepted: %+v", flow)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			for _, name := range goTypeNames {
				if strings.Contains(err.Error(), name) {
					t.Errorf("error %q shows the Go name %q", err, name)
				}
			}
		})
	}
}

// FuzzParseFlow: any input is parsed or refused without a panic; a flow
// it accepts passes ValidateFlow, and a refusal names the file and shows
// no Go type name the input did not hold itself.
func FuzzParseFlow(f *testing.F) {
	f.Add(examples.PlanCodeReviewFlow)
	for _, seed := range []string{"steps:\n  - nam: a\n", "steps: {}\n", "steps:\n  - name: a\n    capability: x\n    timeout: soon\n", "---\n---\n", "steps: [\n", "base: &b\n  timeout: soon\nsteps:\n  - <<: *b\n    name: a\n    capability: x\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		flow, err := protocol.ParseFlow(raw, "fuzz.yaml")
		if err == nil {
			if verr := protocol.ValidateFlow(flow); verr != nil {
				t.Fatalf("accepted a flow ValidateFlow refuses: %v", verr)
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
			t.Fatalf("error does not name the file: %q", err)
		}
		for _, name := range []string{"protocol.", "time: "} {
			if strings.Contains(err.Error(), name) && !strings.Contains(string(raw), name) {
				t.Fatalf("error %q shows the Go type name %q", err, name)
			}
		}
	})
}
