package security

import (
	"fmt"
	"strings"
)

// Observation is what a component could see of one control it cannot
// switch on by itself (TLS, encryption at rest, MFA enrolment, a policy
// setting).
type Observation struct {
	On     bool
	Detail string // what was seen, for the operator: "nats://a:4222 is not TLS"
}

// Facts are the observations a component made before starting; a control
// the level needs and Facts do not mention could not be checked.
type Facts map[Control]Observation

// Missing is one reason a gate refuses: a control the level needs that is
// off or could not be confirmed, or the level itself below the gate.
type Missing struct {
	Control Control `json:"control,omitempty"` // "" when the level is below the gate
	What    string  `json:"what"`
	Why     string  `json:"why"`
	Fix     string  `json:"fix"`
}

// Verdict is a gate's answer for a level in an environment.
type Verdict struct {
	Level       Level       `json:"level"`
	Environment Environment `json:"environment"`
	Gate        Level       `json:"gate"`
	Missing     []Missing   `json:"missing,omitempty"`
}

// Passed reports whether the gate lets the system start.
func (v Verdict) Passed() bool { return len(v.Missing) == 0 }

// Check is the gate: level must be at least env's gate, and every control
// of level that depends on how the system is run (those with a fix) must
// be observed on. Controls not built yet are never required.
func Check(level Level, env Environment, facts Facts) Verdict {
	v := Verdict{Level: level, Environment: env, Gate: env.Gate()}
	if !level.Valid() || level < env.Gate() {
		v.Missing = append(v.Missing, Missing{
			What: fmt.Sprintf("security level %s", env.Gate()),
			Why:  fmt.Sprintf("the %s environment runs at %s or above; this is %s", env, env.Gate(), level),
			Fix:  fmt.Sprintf("--security-level %s (security.level: %s in the config)", env.Gate(), env.Gate()),
		})
	}
	for _, c := range level.On() {
		if c.Fix() == "" || c.Planned() {
			continue
		}
		o, seen := facts[c]
		switch {
		case !seen:
			v.Missing = append(v.Missing, Missing{Control: c, What: c.What(), Why: "could not be checked from here", Fix: c.Fix()})
		case !o.On:
			v.Missing = append(v.Missing, Missing{Control: c, What: c.What(), Why: o.Detail, Fix: c.Fix()})
		}
	}
	return v
}

// Error is a refused gate as an error; its text lists every missing
// control with its fix.
func (v Verdict) Error() string {
	if v.Passed() {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "security gate: %s in %s (gate %s) is missing %d control(s):", v.Level, v.Environment, v.Gate, len(v.Missing))
	for _, m := range v.Missing {
		name := string(m.Control)
		if name == "" {
			name = "level"
		}
		fmt.Fprintf(&b, "\n  - %s: %s: %s\n    fix: %s", name, m.What, m.Why, m.Fix)
	}
	return b.String()
}

// Err is v as an error, nil when it passed.
func (v Verdict) Err() error {
	if v.Passed() {
		return nil
	}
	return &GateError{Verdict: v}
}

// GateError is a start refused by the gate (the CLI gives it its own exit
// code).
type GateError struct{ Verdict Verdict }

func (e *GateError) Error() string { return e.Verdict.Error() }
