package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits on a plan handed to the coder.
const (
	maxSteps      = 200
	maxTitle      = 500
	maxIdentifier = 64
	maxFileBase   = 60
)

// Code is the coder's output.
type Code struct {
	Feature  string `json:"feature"`
	Language string `json:"language"`
	Files    []File `json:"files"`
}

// File is one generated source file.
type File struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// The fake credentials of the unsafe variant. The access key id is AWS's
// documented example; both are split so that secret scanners do not flag
// this repository.
const (
	exampleAccessKey = "AKIA" + "IOSFODNN7EXAMPLE"
	examplePassword  = "hunter2" + "-correct-horse"
)

var (
	unsafeWord = regexp.MustCompile(`(?i)\bunsafe\b`)
	evalWord   = regexp.MustCompile(`(?i)\beval\b`)
)

type variant int

const (
	safeCode variant = iota
	secretCode
	evalCode
)

func variantOf(feature string) variant {
	switch {
	case !unsafeWord.MatchString(feature):
		return safeCode
	case evalWord.MatchString(feature):
		return evalCode
	default:
		return secretCode
	}
}

func runCoder(ctx context.Context, input json.RawMessage) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	obj, err := decodeObject("code", input)
	if err != nil {
		return nil, err
	}
	top, hasTop, err := stringField("code", obj, "feature")
	if err != nil {
		return nil, err
	}
	raw, hasPlan := obj["plan"]
	hasPlan = hasPlan && !isNull(raw)
	if !hasPlan && !hasTop {
		return nil, badInput("code", `input must be {"plan": <planner output>} or {"feature": "..."}`)
	}
	if !hasPlan {
		f, err := feature("code", top)
		if err != nil {
			return nil, err
		}
		p, err := plan("code", f)
		if err != nil {
			return nil, err
		}
		return code(p), nil
	}
	p, err := decodePlan(raw)
	if err != nil {
		return nil, err
	}
	if hasTop && cleanText(top) != "" {
		p.Feature = top
	}
	if p.Feature, err = feature("code", p.Feature); err != nil {
		return nil, err
	}
	return code(p), nil
}

// decodePlan reads a planner output; steps are renumbered by position.
func decodePlan(raw json.RawMessage) (Plan, error) {
	const expected = `"plan" must be a planner output {"feature": "...", "steps": [{"n": 1, "title": "..."}, ...]}`
	trimmed := strings.TrimLeft(string(raw), " \t\r\n")
	if !strings.HasPrefix(trimmed, "{") {
		return Plan{}, badInput("code", expected)
	}
	var p Plan
	if err := json.Unmarshal(raw, &p); err != nil {
		return Plan{}, badInput("code", expected)
	}
	if len(p.Steps) == 0 || len(p.Steps) > maxSteps {
		return Plan{}, badInput("code", fmt.Sprintf(`"plan" must have 1 to %d steps`, maxSteps))
	}
	for i := range p.Steps {
		title := p.Steps[i].Title
		if utf8.RuneCountInString(title) > maxTitle {
			return Plan{}, badInput("code", fmt.Sprintf("plan step titles must be at most %d characters", maxTitle))
		}
		if title = cleanText(title); title == "" {
			return Plan{}, badInput("code", "plan step titles must be non-empty strings")
		}
		p.Steps[i] = Step{N: i + 1, Title: title}
	}
	return p, nil
}

func code(p Plan) Code {
	kind := variantOf(p.Feature)
	files := []File{{Path: fileBase(p.Feature) + ".go", Content: goSource(p, kind)}}
	if kind == evalCode {
		files = append(files, File{Path: "script.js", Content: evalScript})
	}
	return Code{Feature: p.Feature, Language: "go", Files: files}
}

// goSource writes the Go file: one stub per step, plus the unsafe code the
// feature asked for. The output is gofmt-formatted.
func goSource(p Plan, kind variant) string {
	var b strings.Builder
	b.WriteString("package feature\n\n")
	if kind == evalCode {
		b.WriteString("import (\n\t\"errors\"\n\t\"os/exec\"\n)\n\n")
	} else {
		b.WriteString("import \"errors\"\n\n")
	}
	b.WriteString("// ErrNotImplemented is returned by every step until it is written.\n")
	b.WriteString("var ErrNotImplemented = errors.New(\"not implemented\")\n")

	// The names the file declares itself are taken before the steps'.
	taken := map[string]bool{"ErrNotImplemented": true, "Login": true, "RunUserCommand": true}
	for _, s := range p.Steps {
		name := identifier(s.Title)
		for k := 2; taken[name]; k++ {
			name = fmt.Sprintf("%s%d", identifier(s.Title), k)
		}
		taken[name] = true
		fmt.Fprintf(&b, "\n// %s is step %d: %s\nfunc %s() error {\n\treturn ErrNotImplemented\n}\n", name, s.N, s.Title, name)
	}

	switch kind {
	case secretCode:
		b.WriteString("\n// Hard-coded credentials, written because the feature asked for unsafe\n")
		b.WriteString("// code: a review gate must refuse this file.\n")
		fmt.Fprintf(&b, "const apiKey = %q\n", exampleAccessKey)
		b.WriteString("\n// Login returns credentials kept in the source.\nfunc Login() (string, string) {\n")
		fmt.Fprintf(&b, "\tpassword := %q\n", examplePassword)
		b.WriteString("\treturn apiKey, password\n}\n")
	case evalCode:
		b.WriteString("\n// RunUserCommand hands its input to a shell, written because the feature\n")
		b.WriteString("// asked for unsafe code: a review gate must refuse this file.\n")
		b.WriteString("func RunUserCommand(userInput string) ([]byte, error) {\n")
		b.WriteString("\treturn exec.Command(\"sh\", \"-c\", userInput).Output()\n}\n")
	}
	return b.String()
}

// evalScript is the second file of the eval variant.
const evalScript = `function run(userInput) {
  return eval(userInput);
}

module.exports = { run };
`

// identifier turns a step title into an exported Go name: ASCII letters
// and digits, each word capitalized.
func identifier(title string) string {
	var b strings.Builder
	wordStart := true
	for i := 0; i < len(title) && b.Len() < maxIdentifier; i++ {
		c := title[i]
		if !isASCIIAlnum(c) {
			wordStart = true
			continue
		}
		if wordStart && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
		wordStart = false
	}
	name := b.String()
	if name == "" || ('0' <= name[0] && name[0] <= '9') {
		name = "Step" + name
	}
	return name
}

// fileBase is the feature in snake_case: lower-case ASCII letters and
// digits, words joined by underscores.
func fileBase(feature string) string {
	words := strings.FieldsFunc(strings.ToLower(feature), func(r rune) bool {
		return r >= utf8.RuneSelf || !isASCIIAlnum(byte(r))
	})
	var name string
	for _, w := range words {
		next := w
		if name != "" {
			next = name + "_" + w
		}
		if len(next) > maxFileBase {
			break
		}
		name = next
	}
	if name == "" {
		return "feature"
	}
	// The go tool treats name_test.go as a test and name_linux.go,
	// name_arm64.go as platform-specific: never end like that.
	last := name[strings.LastIndexByte(name, '_')+1:]
	if last == "test" || buildSuffixes[last] {
		name += "_feature"
	}
	return name
}

func isASCIIAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// buildSuffixes are the GOOS and GOARCH values the go tool knows, as file
// name suffixes.
var buildSuffixes = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true,
	"hurd": true, "illumos": true, "ios": true, "js": true, "linux": true, "nacl": true,
	"netbsd": true, "openbsd": true, "plan9": true, "solaris": true, "wasip1": true,
	"windows": true, "zos": true,
	"386": true, "amd64": true, "amd64p32": true, "arm": true, "armbe": true, "arm64": true,
	"arm64be": true, "loong64": true, "mips": true, "mipsle": true, "mips64": true,
	"mips64le": true, "mips64p32": true, "mips64p32le": true, "ppc": true, "ppc64": true,
	"ppc64le": true, "riscv": true, "riscv64": true, "s390": true, "s390x": true,
	"sparc": true, "sparc64": true, "wasm": true,
}
