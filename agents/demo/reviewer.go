package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/equilateral-agents/equilateral/protocol"
)

// maxFindings caps a verdict, so that a gate's rejection reason stays
// readable.
const maxFindings = 50

// maxPath is the longest path a finding shows; longer ones lose their
// middle.
const maxPath = 160

// Verdict is the reviewer's output: what an output gate must answer.
type Verdict = protocol.GateVerdict

type callRule struct {
	name string
	re   *regexp.Regexp
}

// callRules find dangerous calls and commands. They match code-like text
// only: a call needs its parenthesis, so prose about them ("unsafe eval")
// passes. Within a line, findings follow this order, after the secrets.
// They are compiled on first use, not at program start, which every
// process linking this package (each `agent run --exec` task's shim too)
// would otherwise pay for.
var callRules = sync.OnceValue(func() []callRule {
	return []callRule{
		{"dangerous call eval()", regexp.MustCompile(`\beval\s*\(`)},
		// exec as a function (Python, JavaScript), not a method such as
		// RegExp.exec or Go's exec.Command. The group is where the call starts
		// (the character before it may end the previous line).
		{"dangerous call exec()", regexp.MustCompile(`(?:^|[^\w.$])(exec\s*\()`)},
		{"dangerous call os.system()", regexp.MustCompile(`\bos\.system\s*\(`)},
		{"subprocess call with shell=True", regexp.MustCompile(`\bsubprocess\.\w+\s*\((?s:.){0,300}?\bshell\s*=\s*True\b`)},
		{"dangerous call child_process.exec()", regexp.MustCompile(`\bchild_process(?:["'` + "`" + `]\s*\))?\s*\.\s*exec(?:Sync)?\s*\(`)},
		{"shell command via exec.Command sh -c", regexp.MustCompile(`\bexec\.Command(?:Context\s*\(\s*[\w.()]{1,80}\s*,|\()\s*"(?:/usr/bin/|/bin/)?(?:ba|z|da)?sh"\s*,\s*"-c"`)},
		{"dangerous call Runtime.getRuntime().exec()", regexp.MustCompile(`\bRuntime\.getRuntime\(\)\s*\.\s*exec\s*\(`)},
		{"destructive command rm -rf /", regexp.MustCompile(`\brm\s+(?:-[A-Za-z]*(?:[rR][A-Za-z]*f|f[A-Za-z]*[rR])[A-Za-z]*|-[rR]\s+-f|-f\s+-[rR]|--recursive\s+--force|--force\s+--recursive)\s+(?:--no-preserve-root\s+)?/\*?(?:$|[\s"'` + "`" + `;&|)])`)},
	}
})

// plainKey is a key shown as it is in a path. Other keys, and keys that
// match a rule themselves, are shown by position ({key 2}), so a path
// never carries a secret or a long input.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,39}$`)

// runReviewer is the security reviewer (the seed's SecurityReviewer, the
// output gate of `code` in the demo flow and in `dev`). It walks every
// string of its input, keys too, and scans each with two rule sets:
// secrets by gitleaks' maintained default rules plus the reviewer's own
// (secrets.go, secrets.toml), and dangerous calls by callRules; both on
// the text as it is and on its look-alike letters folded to ASCII
// (confusables.go). A finding names the rule and the place, never the
// text. The package documentation lists the rules.
func runReviewer(ctx context.Context, input json.RawMessage) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := decodeValue("review", input)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, badInput("review", "input must be a JSON object")
	}
	var r review
	if err := r.walk(ctx, obj); err != nil {
		return nil, err
	}
	return r.verdict(), nil
}

// review collects findings during one walk of an input.
type review struct {
	path     []string // segments: "files", "[0]", ".content"
	findings []string
	seen     map[string]bool
}

// full reports whether the walk can stop: one finding past the cap shows
// that some go unlisted.
func (r *review) full() bool { return len(r.findings) > maxFindings }

func (r *review) walk(ctx context.Context, v any) error {
	if r.full() {
		return nil
	}
	switch v := v.(type) {
	case string:
		_, err := r.scan(ctx, v, "")
		return err
	case []any:
		if err := ctx.Err(); err != nil {
			return err
		}
		for i, e := range v {
			r.path = append(r.path, "["+strconv.Itoa(i)+"]")
			err := r.walk(ctx, e)
			r.path = r.path[:len(r.path)-1]
			if err != nil {
				return err
			}
		}
	case map[string]any:
		if err := ctx.Err(); err != nil {
			return err
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			masked := fmt.Sprintf("{key %d}", i)
			segment := k
			if len(r.path) > 0 {
				segment = "." + segment
				masked = "." + masked
			}
			found, err := r.scan(ctx, k, masked)
			if err != nil {
				return err
			}
			if found || !plainKey.MatchString(k) {
				segment = masked
			}
			r.path = append(r.path, segment)
			err = r.walk(ctx, v[k])
			r.path = r.path[:len(r.path)-1]
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// match is a rule matching on a line; rank orders the rules within it.
type match struct {
	line, rank int
	name       string
}

// scan adds the findings in s, a value at the current path or, when
// keySegment is set, the key that segment stands for. It reports whether
// any rule matched, listed or not. It scans s as it is and, on the lines
// where that differs, folded (fold, foldChangedLines): a look-alike letter
// hides nothing, and a zero-width character that splits a word in the
// folded text still counts as a break in s.
func (r *review) scan(ctx context.Context, s, keySegment string) (bool, error) {
	var matches []match
	texts := []string{s}
	if folded, changed := foldChangedLines(s); changed {
		texts = append(texts, folded)
	}
	for _, text := range texts {
		secrets, err := findSecrets(ctx, text)
		if err != nil {
			return false, err
		}
		for _, m := range secrets {
			rank := slices.Index(secretOrder, m.name)
			if rank < 0 {
				rank = len(secretOrder)
			}
			matches = append(matches, match{line: m.line, rank: rank, name: m.name})
		}
		matches = append(matches, findCalls(text, len(secretOrder)+1)...)
	}
	if len(matches) == 0 {
		return false, nil
	}
	slices.SortFunc(matches, func(a, b match) int {
		if a.line != b.line {
			return a.line - b.line
		}
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.name, b.name)
	})
	where := r.location(keySegment)
	for _, m := range matches {
		f := fmt.Sprintf("%s in %s (line %d)", m.name, where, m.line)
		if r.seen[f] {
			continue
		}
		if r.seen == nil {
			r.seen = make(map[string]bool)
		}
		r.seen[f] = true
		r.findings = append(r.findings, f)
		if r.full() {
			break
		}
	}
	return true, nil
}

// findCalls runs the call rules on s; the first rule ranks firstRank.
func findCalls(s string, firstRank int) []match {
	var matches []match
	var newlines []int // computed only when something matched
	for i, rl := range callRules() {
		for _, loc := range rl.re.FindAllStringSubmatchIndex(s, maxFindings+1) {
			start := loc[0]
			if len(loc) > 2 {
				start = loc[2]
			}
			if newlines == nil {
				newlines = newlineOffsets(s)
			}
			line, _ := slices.BinarySearch(newlines, start)
			matches = append(matches, match{line: line + 1, rank: firstRank + i, name: rl.name})
		}
	}
	return matches
}

// newlineOffsets lists where s has '\n': a match at offset o is on line
// 1 + (the number of newlines before o).
func newlineOffsets(s string) []int {
	offsets := []int{}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			offsets = append(offsets, i)
		}
	}
	return offsets
}

// location renders the current path, plus keySegment if set. Segments are
// ASCII, so cutting bytes is safe.
func (r *review) location(keySegment string) string {
	p := strings.Join(r.path, "") + keySegment
	if len(p) > maxPath {
		p = p[:maxPath/4] + "…" + p[len(p)-maxPath*3/4:]
	}
	return p
}

func (r *review) verdict() Verdict {
	findings := r.findings
	if len(findings) > maxFindings {
		findings = append(findings[:maxFindings-1:maxFindings-1], "more findings not listed")
	}
	if findings == nil {
		findings = []string{}
	}
	return Verdict{Approved: len(findings) == 0, Findings: findings}
}
