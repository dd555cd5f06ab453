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
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil || members == nil {
			return nil // null for an optional object; types were checked by Decode
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
