package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/equilateral-agents/equilateral/internal/yamlerr"
)

// ParseFlow reads a flow file (YAML, see examples/flows/plan-code-review.yaml)
// and checks it with ValidateFlow. name names the file in errors, which
// give the line of each problem in the file's own terms.
func ParseFlow(raw []byte, name string) (*Flow, error) {
	// A first pass as a node tree finds syntax errors, extra documents and
	// bad timeouts with their lines; Duration's own error has none.
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty flow file", name)
		}
		return nil, yamlerr.Wrap(name, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document (---); a flow file is one", name)
	}
	if err := checkFlowTimeouts(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var flow Flow
	dec = yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // a misspelt field is an error, not a default
	if err := dec.Decode(&flow); err != nil {
		var typeErr *yaml.TypeError
		if !errors.As(err, &typeErr) && !strings.HasPrefix(err.Error(), "yaml: ") {
			// Not YAML's: Duration, the one unmarshaler of a Flow, refused
			// a timeout that checkFlowTimeouts could not see (merged in).
			return nil, fmt.Errorf("%s: a step's %s", name, badTimeout)
		}
		return nil, yamlerr.Wrap(name, err)
	}
	if err := ValidateFlow(&flow); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &flow, nil
}

// checkFlowTimeouts checks every step's timeout: a duration such as 30s,
// not negative.
func checkFlowTimeouts(doc *yaml.Node) error {
	if len(doc.Content) == 0 {
		return nil
	}
	steps := flowField(doc.Content[0], "steps")
	if steps == nil || steps.Kind != yaml.SequenceNode {
		return nil // the decoder says what is wrong
	}
	for _, step := range steps.Content {
		t := flowField(step, "timeout")
		if t == nil || t.ShortTag() == "!!null" {
			continue
		}
		if d, err := time.ParseDuration(t.Value); t.Kind != yaml.ScalarNode || err != nil || d < 0 {
			return fmt.Errorf("line %d: %s", t.Line, badTimeout)
		}
	}
	return nil
}

const badTimeout = "timeout: want a duration such as 30s or 1m30s (units ns, us, ms, s, m, h)"

// flowField is the value of key in the mapping n, or nil. It follows
// aliases, not merge keys (<<): the decode after it finds those.
func flowField(n *yaml.Node, key string) *yaml.Node {
	n = flowAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return flowAlias(n.Content[i+1])
		}
	}
	return nil
}

// flowAlias is the node an alias stands for.
func flowAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}
