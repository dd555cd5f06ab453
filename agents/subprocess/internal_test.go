package subprocess

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseResult(t *testing.T) {
	tests := []struct {
		out, result, problem string
	}{
		{`{"a":1}`, `{"a":1}`, ""},
		{" \n\t[1, 2]\r\n", `[1, 2]`, ""},
		{`"text"`, `"text"`, ""},
		{`null`, `null`, ""},
		{``, ``, "stdout is empty (the result must be one JSON value)"},
		{"  \n", ``, "stdout is empty (the result must be one JSON value)"},
		{`hello`, ``, "stdout is not JSON: invalid character 'h' looking for beginning of value at offset 0"},
		{"  \x1b[1m", ``, `stdout is not JSON: invalid character '\x1b' looking for beginning of value at offset 2`},
		{`{"a":1} {"b":2}`, ``, "stdout has more than one JSON value"},
		{"1\n2\n", ``, "stdout has more than one JSON value"},
		{`{"a":1}x`, ``, "stdout has data after the JSON value at offset 7"},
		{`{"a":`, ``, "stdout is not JSON: unexpected end of input"},
		{`{"a" 1}`, ``, "stdout is not JSON: invalid character '1' after object key at offset 5"},
	}
	for _, tt := range tests {
		result, problem := parseResult([]byte(tt.out))
		if string(result) != tt.result || problem != tt.problem {
			t.Errorf("parseResult(%q) = %s, %q; want %s, %q", tt.out, result, problem, tt.result, tt.problem)
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 100, "plain"},
		{"  tab\there \r", 100, "tab here"},
		{"\x1b[31mred\x1b[0m\x07", 100, "[31mred[0m"},
		{"bidi \u202eevil\u202c line\u2028sep", 100, "bidi evil linesep"},
		{"bad \xff utf8", 100, "bad \uFFFD utf8"},
		{"abcdefghij", 8, "abcde…"},
		{"ééééé", 8, "éé…"}, // no rune cut in half
	}
	for _, tt := range tests {
		if got := sanitize(tt.in, tt.max); got != tt.want {
			t.Errorf("sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("hello \x1b[1m world\x00", 20)
	f.Add(strings.Repeat("é", 100), 7)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 4 || max > 4096 {
			return
		}
		got := sanitize(s, max)
		if len(got) > max || !utf8.ValidString(got) {
			t.Fatalf("sanitize(%q, %d) = %q: too long or invalid", s, max, got)
		}
		if i := strings.IndexFunc(got, func(r rune) bool {
			return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
		}); i >= 0 {
			t.Fatalf("sanitize(%q) = %q keeps a control character", s, got)
		}
	})
}

func FuzzParseResult(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `1 2`, `[`, `"x"  `, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		result, problem := parseResult(out)
		if (result == nil) == (problem == "") {
			t.Fatalf("parseResult(%q) = %s, %q: want exactly one", out, result, problem)
		}
		if result != nil && !json.Valid(result) {
			t.Fatalf("parseResult(%q) = invalid JSON %s", out, result)
		}
		if len(problem) > 200 {
			t.Fatalf("problem too long: %q", problem)
		}
	})
}

func TestStderrLines(t *testing.T) {
	s := newStderrReader(64, redactor{"hunter2-password"})
	long := strings.Repeat("x", 200)
	input := "one\npartial {\"a\":1}\n\n  \npartial [1,\npartial " + long + "\nlogin hunter2-password\nno newline at end"
	go s.run(strings.NewReader(input))
	var got []string
	for u := range s.updates {
		if u.Partial != nil {
			got = append(got, "P:"+string(u.Partial))
		} else {
			got = append(got, "M:"+u.Message)
		}
	}
	want := []string{
		"M:one",
		`P:{"a":1}`,
		"M:partial [1,",
		"M:partial " + long[:128], // lines are cut at maxPartial + len(partialPrefix) + 64 bytes
		"M:login [redacted]",
		"M:no newline at end",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("updates\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.lastMessage != "no newline at end" || s.memoryHint {
		t.Errorf("last %q, memory hint %v", s.lastMessage, s.memoryHint)
	}
}

func FuzzStderrLine(f *testing.F) {
	f.Add([]byte("partial {\"a\":1}"), false)
	f.Add([]byte("partial nope\r"), true)
	f.Fuzz(func(t *testing.T, line []byte, cut bool) {
		s := newStderrReader(1024, nil)
		u, ok := s.parse(line, cut)
		if !ok {
			return
		}
		if (u.Partial == nil) == (u.Message == "") {
			t.Fatalf("parse(%q) = %+v: want exactly one field", line, u)
		}
		if u.Partial != nil && !json.Valid(u.Partial) {
			t.Fatalf("parse(%q) = invalid partial %s", line, u.Partial)
		}
		if len(u.Message) > maxProgress {
			t.Fatalf("parse(%q): message of %d bytes", line, len(u.Message))
		}
	})
}

func TestShimArgsRoundTrip(t *testing.T) {
	l := Limits{CPUTime: 1500e6, Memory: 1 << 28, OpenFiles: 32, Processes: 7}
	args := append(l.shimArgs(), "errfd=3", "--", "/bin/prog", "prog", "--flag", "--")
	req, err := parseShimArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{CPUTime: 2e9, Memory: 1 << 28, OpenFiles: 32, Processes: 7}
	if req.limits != want || req.errFD != 3 || req.program != "/bin/prog" || strings.Join(req.argv, " ") != "prog --flag --" {
		t.Errorf("parsed %+v", req)
	}
	for _, bad := range [][]string{{"--", "/bin/prog"}, {"cpu=x", "--", "/p", "p"}, {"rss=1", "--", "/p", "p"}, {"cpu=1"}} {
		if _, err := parseShimArgs(bad); err == nil {
			t.Errorf("parseShimArgs(%q) accepted", bad)
		}
	}
}

func TestNewPlanRefusesWhatItCannotProvide(t *testing.T) {
	full := Support{LandlockABI: 7, Namespaces: true, FreshProc: true}
	tests := []struct {
		name    string
		sandbox Sandbox
		support Support
		refused string // in the error; "" = accepted
	}{
		{"strictest", Sandbox{}, full, ""},
		{"no Landlock", Sandbox{}, Support{Namespaces: true, FreshProc: true}, "Landlock is not available"},
		{"no Landlock, network on", Sandbox{Network: true}, Support{}, "Landlock is not available"},
		{"no namespaces, network off", Sandbox{}, Support{LandlockABI: 7}, "network off needs a network namespace"},
		{"no namespaces, network on", Sandbox{Network: true}, Support{LandlockABI: 7}, ""},
		{"disabled without Landlock", Sandbox{Disabled: true}, Support{}, ""},
		{"disabled with allowed paths", Sandbox{Disabled: true, AllowRead: []string{"/usr"}}, full, "need the sandbox"},
		{"missing allowed path", Sandbox{AllowWrite: []string{"/no/such/dir"}}, full, "no such file"},
		{"unknown user", Sandbox{User: "no-such-user-here"}, full, "no-such-user-here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newPlan(tt.sandbox, os.TempDir(), tt.support) // searchable by the default user
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.landlock == tt.sandbox.Disabled || p.network != (tt.sandbox.Network || tt.sandbox.Disabled) {
					t.Errorf("plan %+v", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("error %v, want one about %q", err, tt.refused)
			}
			if strings.Contains(tt.refused, "available") || strings.Contains(tt.refused, "needs") {
				if !errors.Is(err, ErrSandboxUnavailable) || !strings.Contains(err.Error(), "this machine: ") {
					t.Errorf("error %v is not ErrSandboxUnavailable with what Probe found", err)
				}
			}
		})
	}
}

func TestLookupUser(t *testing.T) {
	for spec, want := range map[string][2]int{
		"65534":      {65534, 65534},
		"1000:50":    {1000, 50},
		"root":       {0, 0},
		"root:65534": {0, 65534},
	} {
		uid, gid, err := lookupUser(spec)
		if err != nil || uid != want[0] || gid != want[1] {
			t.Errorf("lookupUser(%q) = %d, %d, %v; want %v", spec, uid, gid, err, want)
		}
	}
	for _, bad := range []string{"", "4294967295", "-1", "1000:no-such-group-here", "no-such-user-here"} {
		if _, _, err := lookupUser(bad); err == nil {
			t.Errorf("lookupUser(%q) accepted", bad)
		}
	}
}

func TestReachable(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked", "root")
	if err := os.MkdirAll(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(locked), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := reachable(filepath.Dir(dir), 65534, 65534); err != nil && !strings.Contains(err.Error(), "mode") {
			t.Errorf("reachable: %v", err)
		}
	}
	err := reachable(locked, 64123, 64123)
	if err == nil || !strings.Contains(err.Error(), filepath.Dir(locked)+" is mode 0700") {
		t.Errorf("reachable(%s) = %v; want it to name the locked directory", locked, err)
	}
}

func TestShimArgsCarryThePlan(t *testing.T) {
	p := plan{landlock: true, namespaces: true, freshProc: true, dropCaps: true, setUser: true, uid: 64123, gid: 100,
		read: []string{"/srv/a=b"}, write: []string{"/srv/out"}}
	args := append(p.shimArgs(), "tmp=/tmp/eq-task-1", "errfd=3", "--", "/bin/sh", "sh")
	req, err := parseShimArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(req.plan, p) || req.tempDir != "/tmp/eq-task-1" {
		t.Errorf("parsed %+v, want %+v", req.plan, p)
	}

	// In a user namespace, uid and gid are the agent's, to map, not to
	// switch to.
	p = plan{landlock: true, namespaces: true, userNS: true, uid: 1000, gid: 1000}
	req, err = parseShimArgs(append(p.shimArgs(), "--", "/bin/sh", "sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(req.plan, p) {
		t.Errorf("parsed %+v, want %+v", req.plan, p)
	}
}
