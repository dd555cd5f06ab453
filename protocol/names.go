package protocol

import (
	"errors"
	"fmt"
)

// ErrInvalidName is returned (wrapped) for any name that is not a single,
// safe subject token.
var ErrInvalidName = errors.New("protocol: invalid name")

// MaxNameLen is the longest tenant, agent, client or capability name.
const MaxNameLen = 64

// ValidateName checks that name matches [a-z0-9][a-z0-9_-]{0,63}. kind
// ("tenant", "agent", ...) only shapes the error message.
func ValidateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, kind)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s name is %d characters, the limit is %d", ErrInvalidName, kind, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		lowerOrDigit := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if lowerOrDigit || (i > 0 && (c == '_' || c == '-')) {
			continue
		}
		allowed := "a lowercase letter or digit"
		if i > 0 {
			allowed = "a lowercase letter, digit, '-' or '_'"
		}
		return fmt.Errorf("%w: %s name %q: character %d must be %s", ErrInvalidName, kind, printable(name), i+1, allowed)
	}
	return nil
}

// printable keeps error messages one safe line even for hostile input.
func printable(s string) string {
	const limit = 80
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if len(out) == limit {
			out = append(out, '…')
			break
		}
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}
