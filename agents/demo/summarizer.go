package demo

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSummary is the longest summary, in characters.
const maxSummary = 280

// Summary is the summarizer's output.
type Summary struct {
	Summary string `json:"summary"`
	Words   int    `json:"words"`
}

func runSummarizer(ctx context.Context, input json.RawMessage) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := decodeValue("summarize", input)
	if err != nil {
		return nil, err
	}
	var texts []string
	collectStrings(v, &texts)

	var b strings.Builder
	seen := make(map[string]bool)
	words, length := 0, 0
	for _, t := range texts {
		words += len(strings.Fields(t))
		if length >= maxSummary {
			continue
		}
		s := firstSentence(t)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if b.Len() > 0 {
			b.WriteByte(' ')
			length++
		}
		b.WriteString(s)
		length += utf8.RuneCountInString(s)
	}
	return Summary{Summary: shorten(b.String(), maxSummary), Words: words}, nil
}

// collectStrings appends the strings in v, depth first, object keys sorted.
func collectStrings(v any, out *[]string) {
	switch v := v.(type) {
	case string:
		*out = append(*out, v)
	case []any:
		for _, e := range v {
			collectStrings(e, out)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			collectStrings(v[k], out)
		}
	}
}

// firstSentence is s up to its first line break, or its first '.', '!' or
// '?' followed by a space or the end, on one line.
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	for i, r := range s {
		if r != '.' && r != '!' && r != '?' {
			continue
		}
		next, _ := utf8.DecodeRuneInString(s[i+1:])
		if i+1 == len(s) || unicode.IsSpace(next) {
			s = s[:i+1]
			break
		}
	}
	return cleanText(s)
}

// shorten cuts s to at most limit characters, at a space when there is
// one, marking the cut with an ellipsis.
func shorten(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	runes := []rune(s)[:limit-1]
	cut := string(runes)
	if i := strings.LastIndexByte(cut, ' '); i > 0 {
		cut = cut[:i]
	}
	return cut + "…"
}
