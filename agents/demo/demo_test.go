package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/equilateral-agents/equilateral/agents/demo"
)

// Test secrets, split so that secret scanners do not flag this repository.
const (
	accessKey  = "AKIA" + "IOSFODNN7EXAMPLE"
	otherKey   = "AKIA" + "ABCDEFGHIJKLMNOP"
	privateKey = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
)

// runAgent runs the agent for capability on input, marshaled to JSON
// unless it is already a string of JSON.
func runAgent(t testing.TB, capability string, input any) (any, error) {
	t.Helper()
	agent, ok := demo.Lookup(capability)
	if !ok {
		t.Fatalf("no demo agent for %q", capability)
	}
	raw, ok := input.(string)
	if !ok {
		b, err := json.Marshal(input)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
	}
	return agent.Run(context.Background(), json.RawMessage(raw))
}

// mustRun is runAgent for inputs that must be accepted.
func mustRun[T any](t testing.TB, capability string, input any) T {
	t.Helper()
	out, err := runAgent(t, capability, input)
	if err != nil {
		t.Fatalf("%s: %v", capability, err)
	}
	v, ok := out.(T)
	if !ok {
		t.Fatalf("%s: output is %T", capability, out)
	}
	return v
}

func review(t testing.TB, input any) demo.Verdict {
	t.Helper()
	v := mustRun[demo.Verdict](t, "review", input)
	if v.Findings == nil {
		t.Fatal("findings is nil, want an array")
	}
	if v.Approved != (len(v.Findings) == 0) {
		t.Fatalf("approved = %v with %d findings", v.Approved, len(v.Findings))
	}
	return v
}

func TestAgentsAndLookup(t *testing.T) {
	want := [][2]string{{"planner", "plan"}, {"coder", "code"}, {"reviewer", "review"}, {"summarizer", "summarize"}}
	agents := demo.Agents()
	if len(agents) != len(want) {
		t.Fatalf("%d agents, want %d", len(agents), len(want))
	}
	for i, a := range agents {
		if a.Name != want[i][0] || a.Capability != want[i][1] || a.Description == "" || a.Run == nil {
			t.Errorf("agent %d = %q/%q, want %q/%q with a description and Run", i, a.Name, a.Capability, want[i][0], want[i][1])
		}
		got, ok := demo.Lookup(a.Capability)
		if !ok || got.Name != a.Name {
			t.Errorf("Lookup(%q) = %q, %v", a.Capability, got.Name, ok)
		}
	}
	if _, ok := demo.Lookup("deploy"); ok {
		t.Error(`Lookup("deploy") found an agent`)
	}
	agents[0].Name = "changed"
	if demo.Agents()[0].Name != "planner" {
		t.Error("changing the slice from Agents changed the package's agents")
	}
}

func TestPlanner(t *testing.T) {
	tests := []struct {
		feature     string
		wantFeature string
		wantParts   []string
	}{
		{"password reset", "password reset", []string{"password reset"}},
		{"login and logout", "login and logout", []string{"login", "logout"}},
		{"signup, login and password reset", "signup, login and password reset", []string{"signup", "login", "password reset"}},
		{"export, and import", "export, and import", []string{"export", "import"}},
		{"Search AND filter", "Search AND filter", []string{"Search", "filter"}},
		{"brand pages and sandbox", "brand pages and sandbox", []string{"brand pages", "sandbox"}},
		{"login and Login, LOGIN", "login and Login, LOGIN", []string{"login"}},
		{"  rate\n limits\t", "rate limits", []string{"rate limits"}},
		{"a,,b", "a,,b", []string{"a", "b"}},
		{"and", "and", []string{"and"}},
		{", ,", ", ,", []string{", ,"}},
	}
	for _, tt := range tests {
		t.Run(tt.feature, func(t *testing.T) {
			p := mustRun[demo.Plan](t, "plan", map[string]string{"feature": tt.feature})
			if p.Feature != tt.wantFeature {
				t.Errorf("feature = %q, want %q", p.Feature, tt.wantFeature)
			}
			var want []demo.Step
			for _, part := range tt.wantParts {
				want = append(want,
					demo.Step{Title: "Define the data model for " + part},
					demo.Step{Title: "Implement " + part},
					demo.Step{Title: "Write tests for " + part},
				)
			}
			want = append(want, demo.Step{Title: "Document " + tt.wantFeature})
			for i := range want {
				want[i].N = i + 1
			}
			if !reflect.DeepEqual(p.Steps, want) {
				t.Errorf("steps = %+v\nwant %+v", p.Steps, want)
			}
		})
	}
}

func TestPlannerOutputJSON(t *testing.T) {
	p := mustRun[demo.Plan](t, "plan", `{"feature": "password reset"}`)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"feature":"password reset","steps":[` +
		`{"n":1,"title":"Define the data model for password reset"},` +
		`{"n":2,"title":"Implement password reset"},` +
		`{"n":3,"title":"Write tests for password reset"},` +
		`{"n":4,"title":"Document password reset"}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// checkGo fails unless every .go file is gofmt-formatted Go source.
func checkGo(t testing.TB, c demo.Code) {
	t.Helper()
	for _, f := range c.Files {
		if !strings.HasSuffix(f.Path, ".go") {
			continue
		}
		if !strings.HasPrefix(f.Content, "package feature\n") {
			t.Errorf("%s does not start with the package clause", f.Path)
		}
		formatted, err := format.Source([]byte(f.Content))
		if err != nil {
			t.Errorf("%s does not parse: %v\n%s", f.Path, err, f.Content)
			continue
		}
		if string(formatted) != f.Content {
			t.Errorf("%s is not gofmt-formatted:\n%s", f.Path, f.Content)
		}
	}
}

func TestCoderSafeCodeIsApproved(t *testing.T) {
	tests := []struct {
		feature string
		path    string
		funcs   int
	}{
		{"password reset", "password_reset.go", 4},
		{"login and logout", "login_and_logout.go", 7},
		{"Rotate secret keys, revoke tokens", "rotate_secret_keys_revoke_tokens.go", 7},
		{"load test", "load_test_feature.go", 4},
		{"build for linux arm64", "build_for_linux_arm64_feature.go", 4},
		{"Café menü", "caf_men.go", 4},
		{"日本語", "feature.go", 4},
		{"err not implemented, login", "err_not_implemented_login.go", 7},
		{"x\x00y\u2028z\ufeff", "x_y_z.go", 4},
		{strings.Repeat("word ", 30), "word_word_word_word_word_word_word_word_word_word_word_word.go", 4},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c := mustRun[demo.Code](t, "code", map[string]string{"feature": tt.feature})
			if c.Language != "go" || len(c.Files) != 1 {
				t.Fatalf("language %q, %d files, want go and 1", c.Language, len(c.Files))
			}
			if c.Files[0].Path != tt.path {
				t.Errorf("path = %q, want %q", c.Files[0].Path, tt.path)
			}
			if n := strings.Count(c.Files[0].Content, "\nfunc "); n != tt.funcs {
				t.Errorf("%d functions, want %d", n, tt.funcs)
			}
			checkGo(t, c)
			v := review(t, map[string]any{"code": c, "feature": tt.feature})
			if !v.Approved {
				t.Errorf("safe code rejected: %q\n%s", v.Findings, c.Files[0].Content)
			}
		})
	}
}

func TestCoderFromPlan(t *testing.T) {
	p := mustRun[demo.Plan](t, "plan", map[string]string{"feature": "login and logout"})
	fromPlan := mustRun[demo.Code](t, "code", map[string]any{"plan": p})
	fromFeature := mustRun[demo.Code](t, "code", map[string]any{"feature": "login and logout"})
	if !reflect.DeepEqual(fromPlan, fromFeature) {
		t.Errorf("from the plan:\n%+v\nfrom the feature:\n%+v", fromPlan, fromFeature)
	}

	// The top-level feature names the file and decides the variant; the
	// plan's steps are kept.
	both := mustRun[demo.Code](t, "code", map[string]any{"plan": p, "feature": "unsafe session"})
	if both.Feature != "unsafe session" || both.Files[0].Path != "unsafe_session.go" {
		t.Errorf("feature %q, path %q", both.Feature, both.Files[0].Path)
	}
	if !strings.Contains(both.Files[0].Content, "func ImplementLogout() error") {
		t.Errorf("the plan's steps are missing:\n%s", both.Files[0].Content)
	}
	if !strings.Contains(both.Files[0].Content, accessKey) {
		t.Error(`"unsafe session" did not give the secret variant`)
	}

	// A hand-written plan: titles cleaned, clashing names made unique,
	// steps renumbered.
	hand := mustRun[demo.Code](t, "code", `{"plan": {"feature": "misc", "steps": [
		{"n": 7, "title": "login"}, {"n": 7, "title": "Login!"}, {"n": 1, "title": "42 things\nto do"},
		{"title": "Err not implemented"}, {"title": "!!!"}]}}`)
	checkGo(t, hand)
	for _, want := range []string{
		"// Login2 is step 1: login\nfunc Login2() error",
		"// Login3 is step 2: Login!\nfunc Login3() error",
		"// Step42ThingsToDo is step 3: 42 things to do\n",
		"// ErrNotImplemented2 is step 4: Err not implemented\n",
		"// Step is step 5: !!!\nfunc Step() error",
	} {
		if !strings.Contains(hand.Files[0].Content, want) {
			t.Errorf("missing %q in\n%s", want, hand.Files[0].Content)
		}
	}
}

func TestCoderUnsafe(t *testing.T) {
	tests := []struct {
		feature  string
		paths    []string
		contains []string
		findings []string
	}{
		{
			feature:  "unsafe login",
			paths:    []string{"unsafe_login.go"},
			contains: []string{`const apiKey = "` + accessKey + `"`, `password := "hunter2-`},
			findings: []string{
				"hard-coded AWS access key in code.files[0].content (line 30)",
				"hard-coded secret in code.files[0].content (line 34)",
			},
		},
		{
			feature:  "Password reset, UNSAFE",
			paths:    []string{"password_reset_unsafe.go"},
			contains: []string{accessKey},
			findings: []string{
				"hard-coded AWS access key in code.files[0].content (line 45)",
				"hard-coded secret in code.files[0].content (line 49)",
			},
		},
		{
			feature:  "unsafe eval",
			paths:    []string{"unsafe_eval.go", "script.js"},
			contains: []string{`exec.Command("sh", "-c", userInput)`, "eval(userInput)"},
			findings: []string{
				"shell command via exec.Command sh -c in code.files[0].content (line 34)",
				"dangerous call eval() in code.files[1].content (line 2)",
			},
		},
		{
			feature: "unsafe eval, please",
			paths:   []string{"unsafe_eval_please.go", "script.js"},
			findings: []string{
				"shell command via exec.Command sh -c in code.files[0].content (line 49)",
				"dangerous call eval() in code.files[1].content (line 2)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.feature, func(t *testing.T) {
			c := mustRun[demo.Code](t, "code", map[string]string{"feature": tt.feature})
			var paths []string
			var all strings.Builder
			for _, f := range c.Files {
				paths = append(paths, f.Path)
				all.WriteString(f.Content)
			}
			if !slices.Equal(paths, tt.paths) {
				t.Errorf("paths = %q, want %q", paths, tt.paths)
			}
			for _, s := range tt.contains {
				if !strings.Contains(all.String(), s) {
					t.Errorf("code does not contain %q", s)
				}
			}
			checkGo(t, c)
			v := review(t, map[string]any{"code": c, "feature": tt.feature})
			if v.Approved || !slices.Equal(v.Findings, tt.findings) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(v.Findings, "\n"), strings.Join(tt.findings, "\n"))
			}
		})
	}
}

// The orchestrator's gate request: the gated task's input and output.
func TestReviewerAsGate(t *testing.T) {
	gate := func(feature string) map[string]any {
		p := mustRun[demo.Plan](t, "plan", map[string]string{"feature": feature})
		input := map[string]any{"plan": p}
		c := mustRun[demo.Code](t, "code", input)
		return map[string]any{"capability": "code", "input": input, "output": c, "task_id": "t-123"}
	}

	if v := review(t, gate("password reset")); !v.Approved {
		t.Errorf("safe code held: %q", v.Findings)
	}

	v := review(t, gate("unsafe eval"))
	want := []string{
		"shell command via exec.Command sh -c in output.files[0].content (line 34)",
		"dangerous call eval() in output.files[1].content (line 2)",
	}
	if !slices.Equal(v.Findings, want) {
		t.Errorf("findings = %q, want %q", v.Findings, want)
	}

	// The key assigned to apiKey is one finding: the AWS key rule takes
	// precedence over the generic one on its line.
	v = review(t, gate("unsafe login"))
	if v.Approved || len(v.Findings) != 2 || !strings.HasPrefix(v.Findings[0], "hard-coded AWS access key in ") {
		t.Fatalf("findings = %q, want the access key and the password", v.Findings)
	}
	for _, f := range v.Findings {
		if !strings.Contains(f, "in output.files[0].content (line ") {
			t.Errorf("finding %q is not located in the output", f)
		}
	}
}

func TestReviewerNeverEchoesSecrets(t *testing.T) {
	c := mustRun[demo.Code](t, "code", map[string]string{"feature": "unsafe login"})
	inputs := []any{
		map[string]any{"code": c},
		map[string]any{"config": "aws_access_key_id = " + otherKey + "\ndb_password: 's3cr3t-value!'\n"},
		map[string]any{accessKey: "the key is the key", "nested": map[string]any{otherKey: []string{"x"}}},
		map[string]any{"env": map[string]string{"API_TOKEN=\"tok-123456789\"": "set"}},
		map[string]any{"pem": privateKey},
	}
	secrets := []string{accessKey, otherKey, "IOSFODNN7EXAMPLE", "hunter2", "s3cr3t", "tok-123456789", "MIIEow"}
	for i, input := range inputs {
		v := review(t, input)
		if v.Approved {
			t.Errorf("input %d approved", i)
		}
		for _, f := range v.Findings {
			for _, s := range secrets {
				if strings.Contains(f, s) {
					t.Errorf("input %d: finding %q shows a secret", i, f)
				}
			}
		}
	}

	// A key that is a secret is shown by its position among the sorted keys.
	v := review(t, map[string]any{accessKey: "x", "b": map[string]any{"ok": 1, "pem": privateKey}})
	want := []string{
		"hard-coded AWS access key in {key 0} (line 1)",
		"private key block in b.pem (line 1)",
	}
	if !slices.Equal(v.Findings, want) {
		t.Errorf("findings = %q, want %q", v.Findings, want)
	}
}

func TestReviewerProseIsNotAFinding(t *testing.T) {
	for _, s := range []string{
		"unsafe eval",
		"unsafe eval, please",
		"password reset",
		"store the password hash, never the password",
		"don't call eval or exec on user input; avoid os.system and shell=True",
		"token: use a short-lived one",
		"api_key = os.Getenv(\"API_KEY\")",
		"password == \"hunter2-x\"",
		"secret := \"short\"",
		"rm -rf /tmp/build",
		"result = re.exec(line); cmd := exec.Command(\"git\", \"status\")",
		"evaluate(x); medieval (times)",
		"-----BEGIN PUBLIC KEY-----",
		"AKIA123",
	} {
		v := review(t, map[string]string{"feature": s})
		if !v.Approved {
			t.Errorf("%q: findings %q", s, v.Findings)
		}
	}
}

func TestReviewerRules(t *testing.T) {
	tests := []struct {
		code string
		want []string
	}{
		{"key = \"" + accessKey + "\"", []string{"hard-coded AWS access key in code (line 1)"}},
		{privateKey, []string{"private key block in code (line 1)"}},
		{"\n\n-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3Bl\n", []string{"private key block in code (line 3)"}},
		{"-----BEGIN " + "PRIVATE KEY-----", []string{"private key block in code (line 1)"}},
		{"-----BEGIN " + "PGP PRIVATE KEY BLOCK-----", []string{"private key block in code (line 1)"}},
		{`password := "hunter2"`, []string{"hard-coded secret in code (line 1)"}},
		{`DB_PASSWORD = 'correct horse'`, []string{"hard-coded secret in code (line 1)"}},
		{`"apiKey": "abcdef123"`, []string{"hard-coded secret in code (line 1)"}},
		{"passwd=`letmein`", []string{"hard-coded secret in code (line 1)"}},
		{`const ACCESS_KEY = "xyzxyzxyz"`, []string{"hard-coded secret in code (line 1)"}},
		{`secretKey: "qwerty12"`, []string{"hard-coded secret in code (line 1)"}},
		{"x = eval(input())", []string{"dangerous call eval() in code (line 1)"}},
		{"window.eval (s)", []string{"dangerous call eval() in code (line 1)"}},
		{"def f():\nexec(code)", []string{"dangerous call exec() in code (line 2)"}},
		{"os.system('ls ' + d)", []string{"dangerous call os.system() in code (line 1)"}},
		{"subprocess.run(cmd.split(), check=True,\n    shell=True)", []string{"subprocess call with shell=True in code (line 1)"}},
		{"subprocess.run(cmd, shell=False)", nil},
		{"require('child_process').exec(cmd)", []string{"dangerous call child_process.exec() in code (line 1)"}},
		{"child_process.execSync(cmd)", []string{"dangerous call child_process.exec() in code (line 1)"}},
		{`exec.Command("bash", "-c", s)`, []string{"shell command via exec.Command sh -c in code (line 1)"}},
		{`exec.CommandContext(ctx, "/bin/sh", "-c", s)`, []string{"shell command via exec.Command sh -c in code (line 1)"}},
		{`exec.Command("sh", s)`, nil},
		{"Runtime.getRuntime().exec(cmd);", []string{"dangerous call Runtime.getRuntime().exec() in code (line 1)"}},
		{"cleanup:\n\trm -rf /", []string{"destructive command rm -rf / in code (line 2)"}},
		{"sudo rm -fr /* ; echo", []string{"destructive command rm -rf / in code (line 1)"}},
		{"sh -c 'rm -rf --no-preserve-root /'", []string{"destructive command rm -rf / in code (line 1)"}},
		{
			"eval(a)\neval(a)\nx = eval(b); os.system(c)",
			[]string{
				"dangerous call eval() in code (line 1)",
				"dangerous call eval() in code (line 2)",
				"dangerous call eval() in code (line 3)",
				"dangerous call os.system() in code (line 3)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			v := review(t, map[string]string{"code": tt.code})
			if len(v.Findings) != len(tt.want) || (len(tt.want) > 0 && !slices.Equal(v.Findings, tt.want)) {
				t.Errorf("findings = %q, want %q", v.Findings, tt.want)
			}
		})
	}
}

func TestReviewerPathsAndOrder(t *testing.T) {
	v := review(t, `{
		"z": "eval(x)",
		"a": [{"b": "os.system(y)"}, "ok", {"weird key": ["eval(1)\nexec(2)"]}],
		"m": {"n": {"o": 1, "p": null, "q": true, "r": "exec(3)"}}
	}`)
	want := []string{
		"dangerous call os.system() in a[0].b (line 1)",
		"dangerous call eval() in a[2].{key 0}[0] (line 1)",
		"dangerous call exec() in a[2].{key 0}[0] (line 2)",
		"dangerous call exec() in m.n.r (line 1)",
		"dangerous call eval() in z (line 1)",
	}
	if !slices.Equal(v.Findings, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(v.Findings, "\n"), strings.Join(want, "\n"))
	}
}

func TestReviewerCapsFindings(t *testing.T) {
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("eval(%d)", i))
	}
	v := review(t, map[string]string{"code": strings.Join(lines, "\n")})
	if len(v.Findings) != 50 {
		t.Fatalf("%d findings, want 50", len(v.Findings))
	}
	if v.Findings[0] != "dangerous call eval() in code (line 1)" || v.Findings[49] != "more findings not listed" {
		t.Errorf("first %q, last %q", v.Findings[0], v.Findings[49])
	}

	// Exactly 50 are all listed.
	v = review(t, map[string]string{"code": strings.Join(lines[:50], "\n")})
	if len(v.Findings) != 50 || v.Findings[49] != "dangerous call eval() in code (line 50)" {
		t.Errorf("%d findings, last %q", len(v.Findings), v.Findings[len(v.Findings)-1])
	}

	// A deep path is shortened.
	deep := strings.Repeat(`{"level":`, 100) + `"eval(x)"` + strings.Repeat("}", 100)
	v = review(t, deep)
	if len(v.Findings) != 1 || len(v.Findings[0]) > 250 || !strings.Contains(v.Findings[0], "…") {
		t.Errorf("findings = %q", v.Findings)
	}
}

func TestSummarizer(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  demo.Summary
	}{
		{
			"sentences",
			`{"b": "Second part. Not this.", "a": "First part! Also not.", "c": ["Third\nline two", 3, true, null]}`,
			demo.Summary{Summary: "First part! Second part. Third", Words: 11},
		},
		{"repeats", `["Same text.", "Same text.", "Other"]`, demo.Summary{Summary: "Same text. Other", Words: 5}},
		{"a string", `"v1.2 is out. Upgrade now."`, demo.Summary{Summary: "v1.2 is out.", Words: 5}},
		{"no strings", `{"n": 1, "list": []}`, demo.Summary{Summary: "", Words: 0}},
		{"keys are not text", `{"many words in a key": "one"}`, demo.Summary{Summary: "one", Words: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustRun[demo.Summary](t, "summarize", tt.input)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	long := make([]string, 40)
	for i := range long {
		long[i] = fmt.Sprintf("Sentence number %d is here. Rest.", i)
	}
	got := mustRun[demo.Summary](t, "summarize", map[string]any{"list": long})
	if n := len([]rune(got.Summary)); n > 280 || n < 250 || !strings.HasSuffix(got.Summary, "…") {
		t.Errorf("summary of %d characters: %q", n, got.Summary)
	}
	if got.Words != 40*6 {
		t.Errorf("words = %d, want %d", got.Words, 40*6)
	}

	c := mustRun[demo.Code](t, "code", map[string]string{"feature": "password reset"})
	s := mustRun[demo.Summary](t, "summarize", c)
	if want := "password reset package feature password_reset.go go"; s.Summary != want {
		t.Errorf("summary of the coder's output: %q", s.Summary)
	}
}

func TestBadInput(t *testing.T) {
	long := strings.Repeat("x", 2001)
	var parts []string
	for i := range 51 {
		parts = append(parts, fmt.Sprint("part", i))
	}
	manyParts := strings.Join(parts, ", ")
	tests := []struct {
		capability string
		input      string
		says       string
	}{
		{"plan", ``, "JSON object"},
		{"plan", `[]`, "JSON object"},
		{"plan", `"password reset"`, "JSON object"},
		{"plan", `null`, "JSON object"},
		{"plan", `{"feature": "x"`, "JSON object"},
		{"plan", `{}`, `{"feature": "..."}`},
		{"plan", `{"feature": null}`, `{"feature": "..."}`},
		{"plan", `{"feature": 7}`, "string"},
		{"plan", `{"feature": " \n "}`, "non-empty"},
		{"plan", `{"feature": "` + long + `"}`, "at most 2000 characters"},
		{"plan", `{"feature": "` + manyParts + `"}`, "at most 50 parts"},
		{"code", `42`, "JSON object"},
		{"code", `{}`, `{"plan": <planner output>} or {"feature": "..."}`},
		{"code", `{"feature": ""}`, "non-empty"},
		{"code", `{"feature": "` + long + `"}`, "at most 2000 characters"},
		{"code", `{"plan": "password reset"}`, "planner output"},
		{"code", `{"plan": {"feature": "x", "steps": []}}`, "1 to 200 steps"},
		{"code", `{"plan": {"feature": "x", "steps": [{"n": 1, "title": 5}]}}`, "planner output"},
		{"code", `{"plan": {"feature": "x", "steps": [{"n": 1, "title": " "}]}}`, "non-empty"},
		{"code", `{"plan": {"steps": [{"n": 1, "title": "a"}]}}`, "non-empty"},
		{"code", `{"plan": {"feature": "x", "steps": [{"title": "` + long + `"}]}}`, "at most 500"},
		{"review", `["eval(x)"]`, "JSON object"},
		{"review", `"eval(x)"`, "JSON object"},
		{"review", `{"a": 1} {"b": 2}`, "one JSON value"},
		{"review", `{"a": }`, "JSON"},
		{"summarize", `not json`, "JSON"},
		{"summarize", ``, "JSON"},
	}
	for _, tt := range tests {
		name := tt.capability + " " + tt.input
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			_, err := runAgent(t, tt.capability, tt.input)
			if !errors.Is(err, demo.ErrInput) {
				t.Fatalf("err = %v, want ErrInput", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "demo: bad input: "+tt.capability+": ") || !strings.Contains(msg, tt.says) {
				t.Errorf("err = %q, want it to say %q", msg, tt.says)
			}
			if len(msg) > 200 || strings.Contains(msg, "xxxxxxxx") {
				t.Errorf("err repeats the input: %q", msg)
			}
		})
	}

	// Large numbers are valid JSON.
	if _, err := runAgent(t, "review", `{"n": 1e999}`); err != nil {
		t.Errorf("1e999: %v", err)
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, a := range demo.Agents() {
		if _, err := a.Run(ctx, json.RawMessage(`{"feature": "x"}`)); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", a.Name, err)
		}
	}
}

func TestDeterministic(t *testing.T) {
	code, err := json.Marshal(mustRun[demo.Code](t, "code", map[string]string{"feature": "unsafe login and eval"}))
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]string{
		"plan":      {`{"feature": "signup, login and password reset"}`},
		"code":      {`{"feature": "password reset"}`, `{"feature": "unsafe login"}`, `{"feature": "unsafe eval"}`},
		"review":    {`{"code": ` + string(code) + `, "a": {"z": "eval(1)", "y": "exec(2)", "x": {"k1": "os.system(3)", "k2": "eval(4)"}}}`},
		"summarize": {`{"z": "Last.", "a": "First.", "m": {"b": "Middle one. More.", "a": "Middle."}}`},
	}
	for capability, list := range inputs {
		for _, input := range list {
			var first []byte
			for i := range 20 {
				out, err := runAgent(t, capability, input)
				if err != nil {
					t.Fatalf("%s: %v", capability, err)
				}
				b, err := json.Marshal(out)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = b
				} else if string(b) != string(first) {
					t.Fatalf("%s %s: run %d differs:\n%s\n%s", capability, input, i, first, b)
				}
			}
		}
	}
}
