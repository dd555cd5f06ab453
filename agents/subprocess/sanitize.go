package subprocess

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// sanitize makes text from a handler safe to pass on: invalid UTF-8 is
// replaced, tabs become spaces, control and format characters (terminal
// escapes, bidi overrides, line separators) are dropped, surrounding space
// is trimmed and the result is cut to at most max bytes.
func sanitize(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(min(len(s), max+utf8.UTFMax))
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r), unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			// dropped
		default:
			b.WriteRune(r)
		}
		if b.Len() > 4*max {
			break // enough to cut from; don't copy a huge line
		}
	}
	return truncate(strings.TrimSpace(b.String()), max)
}

// truncate cuts s to at most max bytes on a rune boundary, marking the cut
// with an ellipsis.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut <= 0 {
		return ""
	}
	return s[:cut] + ellipsis
}

// redactor replaces the values of passed-through environment variables,
// which may be credentials, in text that leaves the agent.
type redactor []string

// minRedacted is the shortest value redacted; shorter ones ("1", "en")
// would mangle ordinary text and are unlikely to be secrets.
const minRedacted = 8

func (r redactor) redact(s string) string {
	for _, v := range r {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}
