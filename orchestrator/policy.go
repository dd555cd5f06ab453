package orchestrator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/equilateral-agents/equilateral/internal/yamlerr"
	"github.com/equilateral-agents/equilateral/security"
)

// RetryPolicy says how a capability's tasks are retried and bounded.
type RetryPolicy struct {
	MaxAttempts    int           `yaml:"max_attempts"`    // attempts in all, 1 = no retry
	InitialBackoff time.Duration `yaml:"initial_backoff"` // wait before the second attempt
	MaxBackoff     time.Duration `yaml:"max_backoff"`     // backoff doubles up to this
	// ClaimTimeout is how long a dispatched attempt may wait for an agent
	// to report running before it counts as failed.
	ClaimTimeout time.Duration `yaml:"claim_timeout"`
	// AttemptTimeout bounds one running attempt.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// TaskTimeout bounds the whole task when the submitter sets none.
	TaskTimeout time.Duration `yaml:"task_timeout"`
}

// over returns p with every field o sets replaced.
func (p RetryPolicy) over(o *RetryPolicy) RetryPolicy {
	if o == nil {
		return p
	}
	if o.MaxAttempts > 0 {
		p.MaxAttempts = o.MaxAttempts
	}
	for _, f := range []struct{ dst, src *time.Duration }{
		{&p.InitialBackoff, &o.InitialBackoff}, {&p.MaxBackoff, &o.MaxBackoff},
		{&p.ClaimTimeout, &o.ClaimTimeout}, {&p.AttemptTimeout, &o.AttemptTimeout}, {&p.TaskTimeout, &o.TaskTimeout},
	} {
		if *f.src > 0 {
			*f.dst = *f.src
		}
	}
	return p
}

// DefaultRetryPolicy applies to capabilities without their own.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:    3,
		InitialBackoff: 200 * time.Millisecond,
		MaxBackoff:     10 * time.Second,
		ClaimTimeout:   5 * time.Second,
		AttemptTimeout: time.Minute,
		TaskTimeout:    10 * time.Minute,
	}
}

// backoff is the wait before attempt n+1 after attempt n failed.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

// TenantPolicy bounds what a tenant may ask of the orchestrator.
type TenantPolicy struct {
	// RatePerSecond and Burst bound accepted submissions (0: no bound).
	// Each replica applies the bound to what it receives.
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`
	// PrincipalRatePerSecond and PrincipalBurst bound the requests of each
	// principal on its own (submit, get, list, cancel, heartbeats, and
	// every refused message): one principal cannot spend the tenant's
	// rate. 0 means DefaultPrincipalRate and a burst of twice the rate
	// (at least DefaultPrincipalBurst); a negative rate means no bound.
	PrincipalRatePerSecond float64 `yaml:"principal_rate_per_second"`
	PrincipalBurst         int     `yaml:"principal_burst"`
	// MaxInstancesPerAgent bounds the live instances one agent may list
	// in the registry (0: DefaultMaxInstancesPerAgent).
	MaxInstancesPerAgent int `yaml:"max_instances_per_agent"`
	// MaxConcurrent bounds the tenant's unfinished tasks (0: no bound).
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxPerAgent bounds the tasks one agent runs at once (0: no bound).
	// A claim over the bound is handed back to be dispatched again.
	MaxPerAgent int `yaml:"max_per_agent"`
	// Capabilities holds per-capability rules.
	Capabilities map[string]CapabilityPolicy `yaml:"capabilities"`
}

// CapabilityPolicy holds the rules of one capability.
type CapabilityPolicy struct {
	// Gate names a capability that must approve this capability's results
	// before they are released (the reviewer gate). The gate task gets
	// {"capability", "input", "output"} and answers {"approved": bool,
	// "findings": [...]}; a rejection fails the task with the findings.
	Gate string `yaml:"gate"`
	// GeneratesCode marks a capability whose results are code (or anything
	// else that will be run): one such capability calls for the enhanced
	// security level, and from advanced every one must have a Gate
	// (security.OutputGate, PolicyFile.ObserveOutputGate).
	GeneratesCode bool `yaml:"generates_code"`
	// InputSchema and OutputSchema are JSON Schemas (written in YAML or
	// JSON): input that does not conform is refused at intake; output that
	// does not conform fails the task.
	InputSchema  any `yaml:"input_schema"`
	OutputSchema any `yaml:"output_schema"`
	// Retry overrides the retry policy of the capability (fields left out
	// keep the orchestrator's).
	Retry *RetryPolicy `yaml:"retry"`
	// Submitters, when set, lists the principals that may ask for this
	// capability; others are refused "forbidden".
	Submitters []string `yaml:"submitters"`
}

// maySubmit reports whether submitter may ask for capability c.
func (p TenantPolicy) maySubmit(submitter, c string) bool {
	allowed := p.Capabilities[c].Submitters
	return len(allowed) == 0 || slices.Contains(allowed, submitter)
}

// Check compiles every schema, so a bad policy fails at start, not later.
func (f *PolicyFile) Check() error {
	if f == nil {
		return nil
	}
	all := map[string]TenantPolicy{"default": f.Default}
	for name, p := range f.Tenants {
		all["tenant "+name] = p
	}
	for where, p := range all {
		if _, err := compileSchemas(p); err != nil {
			return fmt.Errorf("policy %s: %w", where, err)
		}
	}
	return nil
}

// schemas are a capability's compiled schemas.
type schemas struct {
	input, output *jsonschema.Schema
}

func compileSchemas(p TenantPolicy) (map[string]schemas, error) {
	out := map[string]schemas{}
	for c, cp := range p.Capabilities {
		in, err := compileSchema(c+"-input", cp.InputSchema)
		if err != nil {
			return nil, err
		}
		outSchema, err := compileSchema(c+"-output", cp.OutputSchema)
		if err != nil {
			return nil, err
		}
		out[c] = schemas{input: in, output: outSchema}
	}
	return out, nil
}

// PolicyFile is the YAML the orchestrator reads with --policy: a default
// for every tenant and overrides by tenant name.
type PolicyFile struct {
	Default TenantPolicy            `yaml:"default"`
	Tenants map[string]TenantPolicy `yaml:"tenants"`
}

// ParsePolicy reads a policy file (YAML, see examples/policy.yaml) and
// checks it as the orchestrator would at start. name names the file in
// errors, which give the line of each problem in the file's own terms.
func ParsePolicy(raw []byte, name string) (*PolicyFile, error) {
	var p PolicyFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // a misspelt field is an error, not a default
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty policy file", name)
		}
		return nil, yamlerr.Wrap(name, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document (---); a policy file is one", name)
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &p, nil
}

// CodeGenerating lists, sorted, the capabilities marked generates_code
// anywhere in the policy: in the default or in any tenant's. A capability
// marked once counts as code-generating for every tenant.
func (f *PolicyFile) CodeGenerating() []string {
	if f == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, scope := range f.scopes() {
		for c, cp := range scope.policy.Capabilities {
			if cp.GeneratesCode {
				seen[c] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// ObserveOutputGate is the start gate's observation of security.OutputGate:
// On when every code-generating capability (CodeGenerating) has a gate
// other than itself in the default policy and in every tenant's own: a
// tenant's entry replaces the default whole, so a capability it leaves
// ungated runs ungated for that tenant. Off names each capability
// without one, and where. With no capability marked generates_code it is
// On, and says so: the policy is where code-generating capabilities are
// declared.
func (f *PolicyFile) ObserveOutputGate() security.Observation {
	codeGen := f.CodeGenerating()
	if len(codeGen) == 0 {
		return security.Observation{On: true, Detail: "no capability in the policy is marked generates_code"}
	}
	var ungated []string
	for _, scope := range f.scopes() {
		for _, c := range codeGen {
			if gate := scope.policy.Capabilities[c].Gate; gate == "" || gate == c {
				ungated = append(ungated, c+" ("+scope.name+")")
			}
		}
	}
	if len(ungated) > 0 {
		return security.Observation{Detail: "code-generating capabilities without a review gate: " + strings.Join(ungated, ", ")}
	}
	return security.Observation{On: true, Detail: "every code-generating capability has a review gate: " + strings.Join(codeGen, ", ")}
}

// policyScope is one tenant policy of the file, named for messages.
type policyScope struct {
	name   string
	policy TenantPolicy
}

// scopes are the default policy, then each tenant's, by tenant name.
func (f *PolicyFile) scopes() []policyScope {
	if f == nil {
		return []policyScope{{name: "default"}}
	}
	out := []policyScope{{name: "default", policy: f.Default}}
	names := make([]string, 0, len(f.Tenants))
	for name := range f.Tenants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, policyScope{name: "tenant " + name, policy: f.Tenants[name]})
	}
	return out
}

// forTenant returns the policy of one tenant.
func (f *PolicyFile) forTenant(name string) TenantPolicy {
	if f == nil {
		return TenantPolicy{}
	}
	if p, ok := f.Tenants[name]; ok {
		return p
	}
	return f.Default
}
