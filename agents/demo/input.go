package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInput is wrapped by every error about an agent's input.
var ErrInput = errors.New("demo: bad input")

// maxFeature matches the plan capability's input schema (maxLength 2000,
// which counts characters, not bytes).
const maxFeature = 2000

// badInput says what was expected, never what was received: inputs can be
// large or hold secrets.
func badInput(capability, expected string) error {
	return fmt.Errorf("%w: %s: %s", ErrInput, capability, expected)
}

// decodeObject decodes input as a JSON object, keeping its fields raw.
func decodeObject(capability string, input json.RawMessage) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(input, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, badInput(capability, "input must be a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(input, &obj); err != nil {
		return nil, badInput(capability, "input must be a JSON object (it is not valid JSON)")
	}
	return obj, nil
}

// decodeValue decodes input as any JSON value. Numbers stay json.Number, so
// valid JSON such as 1e999 is not refused for overflowing a float64.
func decodeValue(capability string, input json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badInput(capability, "input must be JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badInput(capability, "input must be one JSON value")
	}
	return v, nil
}

// stringField reads an optional string field; null counts as absent.
func stringField(capability string, obj map[string]json.RawMessage, key string) (string, bool, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, badInput(capability, fmt.Sprintf("%q must be a string", key))
	}
	return s, true, nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// feature checks and normalizes a feature request.
func feature(capability, s string) (string, error) {
	if utf8.RuneCountInString(s) > maxFeature {
		return "", badInput(capability, fmt.Sprintf(`"feature" must be at most %d characters`, maxFeature))
	}
	f := cleanText(s)
	if f == "" {
		return "", badInput(capability, `"feature" must be a non-empty string`)
	}
	return f, nil
}

// cleanText collapses white space and control characters to single
// spaces, so the text fits on one line (a Go comment, a step title).
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\uFEFF' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
