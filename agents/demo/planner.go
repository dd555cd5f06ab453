package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// maxParts bounds a plan: three steps per part.
const maxParts = 50

// Plan is the planner's output, and the coder's "plan" input.
type Plan struct {
	Feature string `json:"feature"`
	Steps   []Step `json:"steps"`
}

// Step is one step of a [Plan], numbered from 1.
type Step struct {
	N     int    `json:"n"`
	Title string `json:"title"`
}

func runPlanner(ctx context.Context, input json.RawMessage) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	obj, err := decodeObject("plan", input)
	if err != nil {
		return nil, err
	}
	s, ok, err := stringField("plan", obj, "feature")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, badInput("plan", `input must be {"feature": "..."}`)
	}
	f, err := feature("plan", s)
	if err != nil {
		return nil, err
	}
	return plan("plan", f)
}

// plan splits a normalized feature into steps.
func plan(capability, feature string) (Plan, error) {
	parts := splitFeature(feature)
	if len(parts) > maxParts {
		return Plan{}, badInput(capability, fmt.Sprintf(`"feature" must have at most %d parts (split at commas and "and")`, maxParts))
	}
	var titles []string
	for _, p := range parts {
		titles = append(titles,
			"Define the data model for "+p,
			"Implement "+p,
			"Write tests for "+p,
		)
	}
	titles = append(titles, "Document "+feature)
	return Plan{Feature: feature, Steps: numbered(titles)}, nil
}

func numbered(titles []string) []Step {
	steps := make([]Step, len(titles))
	for i, t := range titles {
		steps[i] = Step{N: i + 1, Title: t}
	}
	return steps
}

// splitFeature splits at commas and at the word "and" (any case), drops
// empty parts and repeats (ignoring case), and falls back to the whole
// feature when nothing is left ("and", ",").
func splitFeature(feature string) []string {
	words := strings.Fields(strings.ReplaceAll(feature, ",", " , "))
	var parts []string
	seen := make(map[string]bool)
	var current []string
	flush := func() {
		if len(current) == 0 {
			return
		}
		p := strings.Join(current, " ")
		current = nil
		if key := strings.ToLower(p); !seen[key] {
			seen[key] = true
			parts = append(parts, p)
		}
	}
	for _, w := range words {
		if w == "," || strings.EqualFold(w, "and") {
			flush()
			continue
		}
		current = append(current, w)
	}
	flush()
	if len(parts) == 0 {
		return []string{feature}
	}
	return parts
}
