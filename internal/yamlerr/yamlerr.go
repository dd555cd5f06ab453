// Package yamlerr words the YAML decoder's errors for whoever wrote the
// file (a policy, a flow): the file's name and the line, what was wanted
// and what was there, never a Go type name.
package yamlerr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	unknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type .+$`)
	wrongType    = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// Wrap words err, an error of decoding the YAML file name.
func Wrap(name string, err error) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []error
	for _, e := range typeErr.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			errs = append(errs, fmt.Errorf("%s: line %s: unknown field %q", name, m[1], m[2]))
		} else if m := wrongType.FindStringSubmatch(e); m != nil {
			errs = append(errs, fmt.Errorf("%s: line %s: want %s, got %s", name, m[1], kind(m[4]), value(m[2], m[3])))
		} else {
			line, _, _ := strings.Cut(e, ":")
			errs = append(errs, fmt.Errorf("%s: %s: a value of the wrong kind", name, line))
		}
	}
	return errors.Join(errs...)
}

// value describes a YAML value by its tag and text (cut short by the
// decoder).
func value(tag, text string) string {
	switch {
	case tag == "!!str":
		return fmt.Sprintf("the string %q", text)
	case text != "":
		return text
	case tag == "!!map":
		return "a mapping"
	case tag == "!!seq":
		return "a list"
	}
	return "a value tagged " + tag
}

// kind names the Go type a YAML value was to be decoded into, as YAML
// would.
func kind(typ string) string {
	typ = strings.TrimLeft(typ, "*")
	switch {
	case typ == "time.Duration":
		return "a duration such as 500ms or 2m"
	case strings.HasPrefix(typ, "[]"):
		return "a list"
	case strings.HasPrefix(typ, "map["), strings.Contains(typ, "."): // a struct
		return "a mapping"
	case strings.HasPrefix(typ, "int"), strings.HasPrefix(typ, "uint"):
		return "a whole number"
	case strings.HasPrefix(typ, "float"):
		return "a number"
	case typ == "bool":
		return "true or false"
	case typ == "string":
		return "a string"
	}
	return "another kind of value"
}
