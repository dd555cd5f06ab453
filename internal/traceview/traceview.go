// Package traceview draws a trace as a tree for the terminal: one line per
// span, indented under its parent, with its offset from the start of the
// trace, its duration, its service and its name, then a summary line.
//
// # Layout
//
//	  +0.0ms   12.5ms  client: send eq.tasks.submit
//	  +0.4ms   11.8ms    orchestrator: receive eq.tasks.submit
//	  +1.1ms    9.9ms      coder: process eq.cap.code  [error: boom]
//	3 spans, 3 services, 12.5ms
//
// Children are sorted by start time (then name, then span id); a span
// whose parent is not in the trace (not exported, or not arrived yet) is
// drawn at the top level and counted in the summary. The output depends on
// the spans alone, so it is the same every time. Span names and services
// come from whoever exported them: characters that are not printable are
// escaped.
package traceview

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/equilateral-agents/equilateral/internal/jaeger"
)

// Render writes the tree of spans to w.
func Render(w io.Writer, spans []jaeger.Span) error {
	if len(spans) == 0 {
		_, err := io.WriteString(w, "0 spans\n")
		return err
	}
	t := newTree(spans)
	var lines []line
	for _, root := range t.roots {
		t.walk(root, 0, &lines)
	}
	// Spans only reachable through a cycle of parents (malformed data)
	// are drawn at the top level too, so none is lost.
	for i := range spans {
		if !t.seen[i] {
			t.walk(i, 0, &lines)
		}
	}

	start, end := bounds(spans)
	offsetWidth, durationWidth := 0, 0
	for i := range lines {
		s := spans[lines[i].span]
		lines[i].offset = "+" + millis(s.Start.Sub(start))
		lines[i].duration = millis(s.Duration())
		offsetWidth = max(offsetWidth, len(lines[i].offset))
		durationWidth = max(durationWidth, len(lines[i].duration))
	}
	var b strings.Builder
	for _, l := range lines {
		s := spans[l.span]
		fmt.Fprintf(&b, "%*s  %*s  %s%s: %s", offsetWidth, l.offset, durationWidth, l.duration,
			strings.Repeat("  ", l.depth), printable(orUnknown(s.Service)), printable(s.Name))
		if s.Status.Code == jaeger.StatusError {
			b.WriteString("  [error")
			if s.Status.Message != "" {
				b.WriteString(": " + printable(s.Status.Message))
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
	}
	b.WriteString(summary(spans, t.orphans, end.Sub(start)))
	_, err := io.WriteString(w, b.String())
	return err
}

type line struct {
	span             int
	depth            int
	offset, duration string
}

type tree struct {
	spans    []jaeger.Span
	roots    []int
	children map[string][]int // by parent span id
	seen     []bool
	// orphans counts spans that name a parent the trace lacks.
	orphans int
}

func newTree(spans []jaeger.Span) *tree {
	t := &tree{spans: spans, children: map[string][]int{}, seen: make([]bool, len(spans))}
	ids := make(map[string]bool, len(spans))
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	for i, s := range spans {
		switch {
		case s.ParentSpanID == "" || s.ParentSpanID == s.SpanID:
			t.roots = append(t.roots, i)
		case !ids[s.ParentSpanID]:
			t.roots = append(t.roots, i)
			t.orphans++
		default:
			t.children[s.ParentSpanID] = append(t.children[s.ParentSpanID], i)
		}
	}
	t.sort(t.roots)
	for _, c := range t.children {
		t.sort(c)
	}
	return t
}

func (t *tree) sort(idx []int) {
	slices.SortStableFunc(idx, func(a, b int) int {
		x, y := t.spans[a], t.spans[b]
		return cmp.Or(x.Start.Compare(y.Start), cmp.Compare(x.Name, y.Name), cmp.Compare(x.SpanID, y.SpanID))
	})
}

// walk appends span i and its descendants, depth first. A span already
// drawn (a duplicate id, a cycle) is not drawn again.
func (t *tree) walk(i, depth int, lines *[]line) {
	if t.seen[i] {
		return
	}
	t.seen[i] = true
	*lines = append(*lines, line{span: i, depth: depth})
	for _, c := range t.children[t.spans[i].SpanID] {
		t.walk(c, depth+1, lines)
	}
}

// bounds is the earliest start and the latest end of the spans.
func bounds(spans []jaeger.Span) (start, end time.Time) {
	start, end = spans[0].Start, spans[0].End
	for _, s := range spans[1:] {
		if s.Start.Before(start) {
			start = s.Start
		}
		if s.End.After(end) {
			end = s.End
		}
	}
	return start, end
}

func summary(spans []jaeger.Span, orphans int, total time.Duration) string {
	services := map[string]bool{}
	for _, s := range spans {
		services[orUnknown(s.Service)] = true
	}
	out := fmt.Sprintf("%s, %s, %s", plural(len(spans), "span"), plural(len(services), "service"), millis(total))
	if orphans > 0 {
		out += fmt.Sprintf(" (%s whose parent is missing: not exported, or not arrived yet)", plural(orphans, "span"))
	}
	return out + "\n"
}

// millis is d in milliseconds with one decimal.
func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func orUnknown(service string) string {
	if service == "" {
		return "unknown"
	}
	return service
}

// printable escapes what a terminal would act on (control characters,
// escapes) or hide, so one span cannot redraw the others.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
