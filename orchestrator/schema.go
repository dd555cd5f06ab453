package orchestrator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileSchema compiles a JSON Schema given as a decoded value (from the
// policy YAML). nil means no schema.
func compileSchema(name string, v any) (*jsonschema.Schema, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	url := "mem://" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	return s, nil
}

// validateJSON checks raw against s and returns a short, payload-free
// reason when it does not conform.
func validateJSON(s *jsonschema.Schema, raw json.RawMessage) error {
	if s == nil {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("not JSON")
	}
	if err := s.Validate(v); err != nil {
		var verr *jsonschema.ValidationError
		if ok := asValidationError(err, &verr); ok {
			return fmt.Errorf("%s", schemaReason(verr))
		}
		return fmt.Errorf("does not match the schema")
	}
	return nil
}

func asValidationError(err error, target **jsonschema.ValidationError) bool {
	v, ok := err.(*jsonschema.ValidationError)
	if ok {
		*target = v
	}
	return ok
}

// schemaReason names where the instance fails, without quoting values.
func schemaReason(e *jsonschema.ValidationError) string {
	for len(e.Causes) > 0 {
		e = e.Causes[0]
	}
	loc := "/" + strings.Join(e.InstanceLocation, "/")
	kw := e.ErrorKind.KeywordPath()
	return fmt.Sprintf("does not match the schema at %s (%s)", loc, strings.Join(kw, "/"))
}
