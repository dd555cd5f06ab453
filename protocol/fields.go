package protocol

import (
	"reflect"
	"strings"
	"sync"
)

// Field is one JSON member of a wire body, as its Go struct declares it.
// The rule is the same for decoding and for the published JSON Schemas: a
// field tagged omitempty or omitzero is optional; every other field is
// required (present, and not null unless it holds any JSON value), and a
// body may hold no member that is not a field.
type Field struct {
	Name     string
	Required bool
	Index    []int
	Type     reflect.Type
}

var fieldCache sync.Map // reflect.Type -> []Field

// Fields lists the JSON fields of struct type t (embedded structs are
// flattened, as encoding/json does).
func Fields(t reflect.Type) []Field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]Field)
	}
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			for _, f := range Fields(sf.Type) {
				f.Index = append([]int{i}, f.Index...)
				out = append(out, f)
			}
			continue
		}
		if name == "" {
			name = sf.Name
		}
		optional := false
		for _, o := range strings.Split(opts, ",") {
			if o == "omitempty" || o == "omitzero" {
				optional = true
			}
		}
		out = append(out, Field{Name: name, Required: !optional, Index: []int{i}, Type: sf.Type})
	}
	fieldCache.Store(t, out)
	return out
}
