package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// Decode reads a wire body strictly: the data must be one JSON value of
// v's shape, with no member v does not declare, every required member
// present and (unless it holds any JSON value) not null (see Field), and
// every value of the declared type.
// Its errors name the field and are safe to send back to the sender.
func Decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return &DecodeError{Msg: "the event has no data; want a JSON object"}
	}
	// The walk first: it names the field of a value a wire type refuses
	// (a Duration that is not a duration string), which encoding/json
	// does not.
	if err := checkMembers(reflect.TypeOf(v), data, ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return &DecodeError{Msg: "the data holds more than one JSON value"}
	}
	return nil
}

const unknownField = "unknown field: this body has no such member (see docs/protocol.md)"

// DecodeError is a body that is not the documented JSON.
type DecodeError struct {
	Field string // dotted path of the offending member, "" for the body
	Msg   string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return "field " + e.Field + ": " + e.Msg
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return &DecodeError{Msg: fmt.Sprintf("not JSON (at byte %d): %s", syntax.Offset, syntax.Error())}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &DecodeError{Msg: fmt.Sprintf("want %s, got %s", jsonKind(typ.Type), typ.Value)}
		}
		return &DecodeError{Field: typ.Field, Msg: fmt.Sprintf("want %s, got %s", jsonKind(typ.Type), typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Msg: "the data ends before its JSON value does"}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &DecodeError{Field: strings.Trim(name, `"`), Msg: unknownField}
	}
	var field *FieldError
	if errors.As(err, &field) {
		return &DecodeError{Field: field.Field, Msg: field.Msg}
	}
	return &DecodeError{Msg: printable(strings.TrimPrefix(msg, "json: "))}
}

// FieldError is a value a wire type's UnmarshalJSON refuses (such as a
// Duration that is not a duration string).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }

// jsonKind names the JSON a Go type reads from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// checkMembers walks data along t: a required member missing or null is
// refused, and so is a value a wire type's UnmarshalJSON refuses, with the
// member's path. Data that is not of t's shape is left for Decode to name.
func checkMembers(t reflect.Type, data []byte, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if u, ok := reflect.New(t).Interface().(json.Unmarshaler); ok {
		if _, raw := u.(*json.RawMessage); raw {
			return nil
		}
		if err := u.UnmarshalJSON(data); err != nil {
			var field *FieldError
			if errors.As(err, &field) {
				return &DecodeError{Field: path, Msg: field.Msg}
			}
			return &DecodeError{Field: path, Msg: printable(err.Error())}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		members, ok := scanMembers(data)
		if !ok {
			// Not a plain object: null, escaped or repeated names, or
			// not JSON. encoding/json reads what it can; Decode names
			// what is wrong.
			if json.Unmarshal(data, &members) != nil || members == nil {
				return nil // null for an optional object; types were checked by Decode
			}
		}
		fields := Fields(t)
		for name := range members {
			if !slices.ContainsFunc(fields, func(f Field) bool { return f.Name == name }) {
				return &DecodeError{Field: join(path, name), Msg: unknownField}
			}
		}
		for _, f := range fields {
			raw, present := members[f.Name]
			if !present || (string(raw) == "null" && !anyJSON(f.Type)) {
				if f.Required {
					return &DecodeError{Field: join(path, f.Name), Msg: "required but missing or null"}
				}
				continue
			}
			if err := checkMembers(f.Type, raw, join(path, f.Name)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil
		}
		for i, raw := range items {
			if err := checkMembers(t.Elem(), raw, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanMembers reads the members of a JSON object without decoding their
// values: one quick pass, where encoding/json would check and copy every
// byte twice (a task's input is most of a body). It gives up (ok false)
// on anything but an object whose member names are plain and distinct;
// the caller then asks encoding/json. Values are not checked here:
// Decode's own pass refuses whatever is not JSON.
func scanMembers(data []byte) (members map[string]json.RawMessage, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	members = map[string]json.RawMessage{}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return members, skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}
		end := i + 1
		for end < len(data) && data[end] != '"' {
			if data[end] == '\\' || data[end] < 0x20 {
				return nil, false // an escaped name: encoding/json reads it
			}
			end++
		}
		if end >= len(data) {
			return nil, false
		}
		name := string(data[i+1 : end])
		if _, dup := members[name]; dup {
			return nil, false
		}
		i = skipSpace(data, end+1)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		start := skipSpace(data, i+1)
		stop, ok := skipValue(data, start)
		if !ok {
			return nil, false
		}
		members[name] = data[start:stop]
		i = skipSpace(data, stop)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return members, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns where the value starting at i ends: a string, an
// object or array (brackets counted outside strings), or a literal or
// number (up to the next delimiter).
func skipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	depth := 0
	for j := i; j < len(data); j++ {
		switch c := data[j]; c {
		case '"':
			k, ok := skipString(data, j)
			if !ok {
				return j, false
			}
			j = k - 1
			if depth == 0 {
				return k, true
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, j > i
			}
			depth--
			if depth == 0 {
				return j + 1, true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j, j > i
			}
		}
	}
	return len(data), depth == 0 && len(data) > i
}

// skipString returns the index just past the string starting at i.
func skipString(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return len(data), false
}

// anyJSON is a member that holds any JSON value, where null is a value.
func anyJSON(t reflect.Type) bool {
	return t == reflect.TypeFor[json.RawMessage]() || t.Kind() == reflect.Interface
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
