package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/equilateral-agents/equilateral/security"
)

// These tests run the real binary with real TOTP codes, computed as an
// authenticator app does from the secret that enrolment printed.

// runEnv is run with extra environment variables.
func runEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(equilateralBinary(t), args...)
	cmd.Env = append(append(os.Environ(), "NATS_URL=", "EQUILATERAL_DATA_DIR=", "EQ_OTP="), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout.String(), stderr.String(), 0}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return res
}

// refused checks r is the MFA refusal: exit 1, naming every way to give a
// code, and saying why.
func (r result) refused(t *testing.T, why string) {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("want a refusal (exit 1), got exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"refused", "--otp", "EQ_OTP", "admin session", why} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("refusal does not say %q:\n%s", want, r.stderr)
		}
	}
}

// authenticator is an admin's app: the secret from the enrolment URI.
type authenticator struct {
	secret string
	last   int64 // step of the last code handed out
}

var uriLine = regexp.MustCompile(`otpauth://totp/\S+`)

// app reads the otpauth:// URI an enrolment printed.
func app(t *testing.T, enrollOutput string) *authenticator {
	t.Helper()
	uri := uriLine.FindString(enrollOutput)
	key, err := otp.NewKeyFromURL(uri)
	if err != nil || key.Secret() == "" {
		t.Fatalf("no otpauth URI in the enrolment output (%v):\n%s", err, enrollOutput)
	}
	return &authenticator{secret: key.Secret()}
}

// next is a code not handed out before: of the current step, else of the
// next (which the one-step skew accepts), else it waits for the clock.
// Never the previous step, which a step change before the command checks
// it would put out of reach.
func (a *authenticator) next(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		now := time.Now()
		step := max(now.Unix()/30, a.last+1)
		if step <= now.Unix()/30+1 {
			a.last = step
			return a.at(t, time.Unix(step*30, 0))
		}
		if now.After(deadline) {
			t.Fatal("the clock does not move")
		}
		time.Sleep(100 * time.Millisecond) // polls the clock for the next step
	}
}

func (a *authenticator) at(t *testing.T, when time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(a.secret, when, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrong is a code of none of the steps near now.
func (a *authenticator) wrong(t *testing.T) string {
	t.Helper()
	near := map[string]bool{}
	for d := -3; d <= 3; d++ {
		near[a.at(t, time.Now().Add(time.Duration(d)*30*time.Second))] = true
	}
	for n := 0; ; n++ {
		if c := fmt.Sprintf("%06d", (314159+n*7919)%1000000); !near[c] {
			return c
		}
	}
}

// initWithAdmin makes a data dir with admin alice and returns alice's app.
func initWithAdmin(t *testing.T, extra ...string) (string, *authenticator) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "eq")
	res := run(t, append([]string{"init", "--data-dir", dir, "--admin", "alice"}, extra...)...).ok(t)
	return dir, app(t, res.stdout)
}

// names lists the "name" fields of a --json listing.
func names(t *testing.T, r result) []string {
	t.Helper()
	var items []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(r.ok(t).stdout), &items); err != nil {
		t.Fatalf("listing: %v\n%s", err, r.stdout)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// TestAdminMFACodes: at enhanced with an admin enrolled, against the real
// server, a tenant or credential change without a code, with a wrong code
// or with a code used before is refused and changes nothing; a fresh code
// works, from --otp or EQ_OTP.
func TestAdminMFACodes(t *testing.T) {
	dir, alice := initWithAdmin(t)
	url, _ := startServer(t, dir)
	admin := func(env []string, args ...string) result {
		return runEnv(t, env, append(args, "--data-dir", dir, "--server", url)...)
	}
	tenants := func() []string { return names(t, admin(nil, "tenant", "list", "--json")) }

	admin(nil, "tenant", "create", "acme").refused(t, "no code given")
	if got := tenants(); len(got) != 0 {
		t.Fatalf("tenant created without a code: %v", got)
	}
	admin(nil, "tenant", "create", "acme", "--otp", alice.wrong(t)).refused(t, "wrong code")
	if got := tenants(); len(got) != 0 {
		t.Fatalf("tenant created on a wrong code: %v", got)
	}

	code := alice.next(t)
	admin(nil, "tenant", "create", "acme", "--otp", code).ok(t)
	if got := tenants(); strings.Join(got, ",") != "acme" {
		t.Fatalf("tenants %v after create with a code", got)
	}

	// The same code again: refused, and nothing is minted.
	creds := filepath.Join(dir, "creds", "acme", "coder.creds")
	admin(nil, "agent", "create", "coder", "--tenant", "acme", "--capability", "code", "--otp", code).refused(t, "already used")
	if exists(creds) {
		t.Fatal("a replayed code wrote creds")
	}
	if got := names(t, admin(nil, "agent", "list", "--tenant", "acme", "--json")); len(got) != 0 {
		t.Fatalf("agent created on a replayed code: %v", got)
	}
	// EQ_OTP works as --otp does.
	admin([]string{"EQ_OTP=" + code}, "agent", "create", "coder", "--tenant", "acme", "--capability", "code").refused(t, "already used")
	admin([]string{"EQ_OTP=" + alice.next(t)}, "agent", "create", "coder", "--tenant", "acme", "--capability", "code").ok(t)
	if !exists(creds) {
		t.Fatal("agent create with a fresh code wrote no creds")
	}
	// Reading needs no code.
	if got := names(t, admin(nil, "agent", "list", "--tenant", "acme", "--json")); strings.Join(got, ",") != "coder" {
		t.Fatalf("agents %v", got)
	}
	admin(nil, "tenant", "publish", "acme").ok(t)
	// Revoking is a credential change too.
	admin(nil, "agent", "revoke", "coder", "--tenant", "acme").refused(t, "no code given")
	if list := admin(nil, "agent", "list", "--tenant", "acme").ok(t); strings.Contains(list.stdout, "revoked") {
		t.Fatalf("revoked without a code:\n%s", list.stdout)
	}
}

// TestAdminMFASession: one code opens a session in which several commands
// run without a code; a code given is still checked; a session file
// written or edited by hand is refused; --end closes it.
func TestAdminMFASession(t *testing.T) {
	dir, alice := initWithAdmin(t)
	admin := func(args ...string) result {
		return run(t, append(args, "--data-dir", dir)...)
	}
	if r := admin("admin", "session"); r.code != 1 || !strings.Contains(r.stderr, "no admin session is open") {
		t.Fatalf("admin session without a code or session: exit %d, %s", r.code, r.stderr)
	}
	if r := admin("admin", "session", "--otp", "000000", "--for", "13h"); r.code != 2 {
		t.Fatalf("a 13h session: exit %d, want a usage error", r.code)
	}
	code := alice.next(t)
	open := admin("admin", "session", "--otp", code, "--for", "10m").ok(t)
	if !strings.Contains(open.stdout, "admin session of alice open until") {
		t.Fatalf("admin session says:\n%s", open.stdout)
	}
	if r := admin("admin", "session").ok(t); !strings.Contains(r.stdout, "admin session of alice") {
		t.Fatalf("admin session without a code does not show the open one:\n%s", r.stdout)
	}

	for _, args := range [][]string{
		{"tenant", "create", "acme", "--offline"},
		{"tenant", "create", "beta", "--offline"},
		{"agent", "create", "coder", "--tenant", "acme", "--capability", "code", "--offline"},
		{"client", "create", "web", "--tenant", "acme", "--offline"},
		{"agent", "rotate", "coder", "--tenant", "acme", "--offline"},
		{"agent", "revoke", "coder", "--tenant", "acme", "--offline"},
		{"tenant", "delete", "beta", "--offline"},
	} {
		admin(args...).ok(t)
	}
	if got := names(t, admin("tenant", "list", "--json")); strings.Join(got, ",") != "acme" {
		t.Fatalf("tenants %v after the session's commands", got)
	}
	// A code given is checked, not passed over for the session: the
	// session's own code is spent.
	admin("client", "create", "cli2", "--tenant", "acme", "--offline", "--otp", code).refused(t, "already used")

	// Forged sessions: hand-written, and the real one edited.
	sessionFile := filepath.Join(dir, "admins", "session.json")
	real, err := os.ReadFile(sessionFile)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var fields map[string]string
	json.Unmarshal(real, &fields)
	fields["expires_at"] = time.Now().Add(11 * time.Hour).UTC().Format(time.RFC3339)
	edited, _ := json.Marshal(fields)
	for name, forged := range map[string]string{
		"hand-written": `{"admin":"alice","opened_at":"` + time.Now().UTC().Format(time.RFC3339) + `","expires_at":"` + later + `","mac":"` + strings.Repeat("5a", 32) + `"}`,
		"edited":       string(edited),
	} {
		if err := os.WriteFile(sessionFile, []byte(forged), 0o600); err != nil {
			t.Fatal(err)
		}
		admin("client", "create", "forged", "--tenant", "acme", "--offline").refused(t, "session invalid")
		if exists(filepath.Join(dir, "creds", "acme", "forged.creds")) {
			t.Fatalf("%s session: creds written", name)
		}
	}
	os.WriteFile(sessionFile, real, 0o600)
	admin("client", "create", "cli3", "--tenant", "acme", "--offline").ok(t)

	admin("admin", "session", "--end").ok(t)
	admin("client", "create", "cli4", "--tenant", "acme", "--offline").refused(t, "no code given")
	if got := names(t, admin("client", "list", "--tenant", "acme", "--json")); strings.Join(got, ",") != "cli3,web" {
		t.Fatalf("clients %v: want cli3 and web only", got)
	}
}

// TestAdminEnrollNeedsCode: the first admin needs no code, every later one
// does; remove needs one too; a new admin's codes work.
func TestAdminEnrollNeedsCode(t *testing.T) {
	dir, alice := initWithAdmin(t)
	admin := func(args ...string) result {
		return run(t, append(args, "--data-dir", dir)...)
	}
	admins := func() string { return strings.Join(names(t, admin("admin", "list", "--json")), ",") }

	admin("admin", "enroll", "bob").refused(t, "no code given")
	if got := admins(); got != "alice" {
		t.Fatalf("admins %s after a refused enroll", got)
	}
	enrolled := admin("admin", "enroll", "bob", "--otp", alice.next(t)).ok(t)
	bob := app(t, enrolled.stdout)
	if !strings.Contains(enrolled.stdout, "█") || !strings.Contains(enrolled.stdout, "Equilateral:bob@equilateral") {
		t.Fatalf("enroll printed no QR code or URI for bob@equilateral:\n%s", enrolled.stdout)
	}
	if r := admin("admin", "enroll", "bob", "--otp", bob.next(t)); r.code != 1 || !strings.Contains(r.stderr, "already enrolled") {
		t.Fatalf("bob twice: exit %d, %s", r.code, r.stderr)
	}
	// --json: {name, uri}, no QR code.
	asJSON := admin("admin", "enroll", "carol", "--otp", bob.next(t), "--json").ok(t)
	var e struct{ Name, URI string }
	if err := json.Unmarshal([]byte(asJSON.stdout), &e); err != nil || e.Name != "carol" || !strings.HasPrefix(e.URI, "otpauth://totp/") || strings.Contains(asJSON.stdout, "█") {
		t.Fatalf("enroll --json: %v\n%s", err, asJSON.stdout)
	}
	carol := app(t, e.URI)
	admin("tenant", "create", "acme", "--offline", "--otp", carol.next(t)).ok(t)

	admin("admin", "remove", "carol").refused(t, "no code given")
	admin("admin", "remove", "carol", "--otp", alice.next(t)).ok(t)
	if got := admins(); got != "alice,bob" {
		t.Fatalf("admins %s after removing carol", got)
	}
	admin("tenant", "create", "beta", "--offline", "--otp", carol.next(t)).refused(t, "wrong code")
	if r := admin("admin", "enroll", "Bad/Name", "--otp", "000000"); r.code != 2 {
		t.Fatalf("a bad admin name: exit %d, want a usage error", r.code)
	}
}

// TestAdminMFANoAdminWarns: at enhanced with no admin enrolled the guarded
// commands run with one warning line; after the first enrolment they need
// a code, also in a data dir from before security.json (enhanced).
func TestAdminMFANoAdminWarns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir).ok(t)
	s, err := security.ReadSettings(dir)
	if err != nil || s != security.Default() || !exists(security.SettingsFile(dir)) {
		t.Fatalf("init wrote %+v, %v; want the default enhanced, development in security.json", s, err)
	}
	r := run(t, "tenant", "create", "acme", "--data-dir", dir, "--offline").ok(t)
	if strings.Count(r.stderr, mfaOffWarning+"\n") != 1 {
		t.Fatalf("want the warning once on stderr, got:\n%s", r.stderr)
	}
	if r := run(t, "tenant", "list", "--data-dir", dir).ok(t); strings.Contains(r.stderr, "MFA") {
		t.Fatalf("a read-only command warned: %s", r.stderr)
	}
	first := run(t, "admin", "enroll", "alice", "--data-dir", dir).ok(t)
	if strings.Contains(first.stderr, "warning") {
		t.Fatalf("the first enroll warned: %s", first.stderr)
	}
	run(t, "tenant", "create", "beta", "--data-dir", dir, "--offline").refused(t, "no code given")
	os.Remove(security.SettingsFile(dir))
	run(t, "tenant", "create", "beta", "--data-dir", dir, "--offline").refused(t, "no code given")
	if got := names(t, run(t, "tenant", "list", "--data-dir", dir, "--json")); strings.Join(got, ",") != "acme" {
		t.Fatalf("tenants %v", got)
	}
}

// TestAdminMFAFoundation: at foundation no code is asked for, with admins
// enrolled, and nothing warns about MFA.
func TestAdminMFAFoundation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eq")
	in := run(t, "init", "--data-dir", dir, "--security-level", "foundation", "--admin", "alice").ok(t)
	if !strings.Contains(in.stderr, "needs security level enhanced") {
		t.Fatalf("init at foundation in development does not warn about the gate: %s", in.stderr)
	}
	if s, _ := security.ReadSettings(dir); s.Level != security.Foundation || s.Environment != security.Development {
		t.Fatalf("settings %+v", s)
	}
	for _, args := range [][]string{
		{"tenant", "create", "acme", "--offline"},
		{"agent", "create", "coder", "--tenant", "acme", "--capability", "code", "--offline"},
		{"admin", "enroll", "bob"},
	} {
		r := run(t, append(args, "--data-dir", dir)...).ok(t)
		if strings.Contains(r.stderr, "MFA") {
			t.Fatalf("%v at foundation: %s", args, r.stderr)
		}
	}
	if !exists(filepath.Join(dir, "creds", "acme", "coder.creds")) {
		t.Fatal("agent create at foundation wrote no creds")
	}
}

// TestInitSecurityFlags: bad values are usage errors and leave no data dir.
func TestInitSecurityFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--security-level", "paranoid"},
		{"--environment", "staging"},
		{"--admin", "Alice"},
		{"--admin", "session"},
	} {
		dir := filepath.Join(t.TempDir(), "eq")
		if r := run(t, append([]string{"init", "--data-dir", dir}, args...)...); r.code != 2 || exists(dir) {
			t.Errorf("init %v: exit %d (want 2), data dir made: %v; %s", args, r.code, exists(dir), r.stderr)
		}
	}
	dir := filepath.Join(t.TempDir(), "eq")
	run(t, "init", "--data-dir", dir, "--security-level", "advanced", "--environment", "production").ok(t)
	if s, _ := security.ReadSettings(dir); s.Level != security.Advanced || s.Environment != security.Production {
		t.Fatalf("settings %+v", s)
	}
}

// TestOTPFlagOnGuardedCommands: every command that mints or rotates creds
// or changes a tenant takes --otp, with one help text naming EQ_OTP; the
// read-only ones do not.
func TestOTPFlagOnGuardedCommands(t *testing.T) {
	commands := leaves(newRootCommand())
	guarded := []string{
		"tenant create", "tenant delete",
		"agent create", "agent revoke", "agent rotate",
		"client create", "client revoke", "client rotate",
		"admin enroll", "admin remove",
	}
	usage := ""
	for _, path := range guarded {
		cmd := commands["equilateral "+path]
		if cmd == nil {
			t.Fatalf("no command %s", path)
		}
		f := cmd.Flags().Lookup("otp")
		if f == nil {
			t.Errorf("%s has no --otp", path)
			continue
		}
		if !strings.Contains(f.Usage, "(env EQ_OTP)") || f.DefValue != "" || (usage != "" && f.Usage != usage) {
			t.Errorf("%s --otp: help %q, default %q", path, f.Usage, f.DefValue)
		}
		usage = f.Usage
	}
	for _, path := range []string{"tenant list", "tenant publish", "agent list", "client list", "admin list"} {
		if commands["equilateral "+path].Flags().Lookup("otp") != nil {
			t.Errorf("read-only %s takes --otp", path)
		}
	}
}

// TestWriteQR: the terminal QR code is the code's modules, dark on light,
// two rows per line, with a 4-module light quiet zone all round.
func TestWriteQR(t *testing.T) {
	const content = "otpauth://totp/Equilateral:alice@equilateral?algorithm=SHA1&digits=6&issuer=Equilateral&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	var out bytes.Buffer
	if err := writeQR(&out, content, false); err != nil {
		t.Fatal(err)
	}
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		t.Fatal(err)
	}
	want := qrModules(code)
	size := len(want) + 2*quietZone
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != (size+1)/2 {
		t.Fatalf("%d lines for %d module rows", len(lines), size)
	}
	// Read the half blocks back into modules.
	got := make([][]bool, 2*len(lines))
	for i, line := range lines {
		cells := []rune(line)
		if len(cells) != size {
			t.Fatalf("line %d: %d cells, want %d", i, len(cells), size)
		}
		got[2*i], got[2*i+1] = make([]bool, size), make([]bool, size)
		for x, c := range cells {
			got[2*i][x] = c == '█' || c == '▀'
			got[2*i+1][x] = c == '█' || c == '▄'
		}
	}
	for y := range got {
		for x := range got[y] {
			my, mx := y-quietZone, x-quietZone
			inside := my >= 0 && my < len(want) && mx >= 0 && mx < len(want)
			if inside && got[y][x] != want[my][mx] {
				t.Fatalf("module (%d,%d) dark=%v, want %v", mx, my, got[y][x], want[my][mx])
			}
			if !inside && got[y][x] {
				t.Fatalf("quiet zone dark at (%d,%d)", x, y)
			}
		}
	}
	// The finder pattern's corner is dark: dark means ink, not background.
	if !want[0][0] || !got[quietZone][quietZone] {
		t.Fatal("the top-left finder pattern is not dark")
	}
	// In colour, black on white explicitly, reset at every line's end.
	out.Reset()
	writeQR(&out, content, true)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if !strings.HasPrefix(line, "\x1b[30;107m") || !strings.HasSuffix(line, "\x1b[0m") {
			t.Fatalf("colour line %q", line)
		}
	}
}
