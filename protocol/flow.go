package protocol

import (
	"fmt"
	"strings"
	"time"
)

// MaxFlowSteps bounds a flow.
const MaxFlowSteps = 64

// ValidateFlow checks a flow before it runs: named steps with valid,
// unique names and capabilities, and references only to earlier steps.
func ValidateFlow(f *Flow) error {
	if f == nil || len(f.Steps) == 0 {
		return fmt.Errorf("flow has no steps")
	}
	if len(f.Steps) > MaxFlowSteps {
		return fmt.Errorf("flow has %d steps, the limit is %d", len(f.Steps), MaxFlowSteps)
	}
	seen := map[string]bool{}
	for i, s := range f.Steps {
		if err := ValidateName("step", s.Name); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("step %q appears twice", s.Name)
		}
		if err := ValidateName("capability", s.Capability); err != nil {
			return fmt.Errorf("step %q: %w", s.Name, err)
		}
		if s.Capability == CapabilityFlow {
			return fmt.Errorf("step %q: a step cannot be a flow", s.Name)
		}
		for _, ref := range FlowReferences(s.Input) {
			if ref != "input" && !seen[ref] {
				return fmt.Errorf("step %q refers to %q, which is not an earlier step", s.Name, ref)
			}
		}
		seen[s.Name] = true
	}
	return nil
}

// FlowReference parses "${input}", "${input.a.b}", "${steps.<name>.output}"
// or "${steps.<name>.output.a.b}" into the source ("input" or the step
// name) and the field path.
func FlowReference(s string) (source string, path []string, ok bool) {
	inner, found := strings.CutPrefix(s, "${")
	if !found {
		return "", nil, false
	}
	inner, found = strings.CutSuffix(inner, "}")
	if !found {
		return "", nil, false
	}
	parts := strings.Split(inner, ".")
	switch {
	case parts[0] == "input":
		return "input", parts[1:], true
	case parts[0] == "steps" && len(parts) >= 3 && parts[2] == "output":
		return parts[1], parts[3:], true
	}
	return "", nil, false
}

// FlowReferences lists the sources an input value refers to.
func FlowReferences(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if src, _, ok := FlowReference(x); ok {
				out = append(out, src)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// UnmarshalText reads "30s" (YAML flow files).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
