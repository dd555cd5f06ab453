package mfa_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/protocol"
)

// dataDir is an empty data dir.
func dataDir(t testing.TB) string {
	t.Helper()
	return t.TempDir()
}

// enroll enrolls name and returns its secret, from the URI the app gets.
func enroll(t testing.TB, dir, name string) string {
	t.Helper()
	e, err := mfa.Enroll(dir, name)
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	key, err := otp.NewKeyFromURL(e.URI)
	if err != nil {
		t.Fatalf("enrollment URI %q: %v", e.URI, err)
	}
	return key.Secret()
}

// code is secret's code at t, as an authenticator app computes it.
func code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrong is a 6-digit code that is none of secret's codes around at.
func wrong(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for d := -2; d <= 2; d++ {
		near[code(t, secret, at.Add(time.Duration(d)*30*time.Second))] = true
	}
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", (123456+n*7919)%1000000)
		if !near[c] {
			return c
		}
	}
}

var now = time.Date(2025, 6, 1, 12, 0, 10, 0, time.UTC) // 10 s into a step

func TestEnrollWritesAnAppKeyInASecretFile(t *testing.T) {
	dir := dataDir(t)
	// A real operator JWT names the data dir in the account.
	okp, _ := nkeys.CreateOperator()
	pub, _ := okp.PublicKey()
	claims := jwt.NewOperatorClaims(pub)
	claims.Name = "acme-ops"
	tok, err := claims.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "operator"), 0o700)
	os.WriteFile(filepath.Join(dir, "operator", "operator.jwt"), []byte(tok), 0o600)

	e, err := mfa.Enroll(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(e.URI)
	if err != nil {
		t.Fatal(err)
	}
	if key.Type() != "totp" || key.Issuer() != "Equilateral" || key.AccountName() != "alice@acme-ops" ||
		key.Algorithm() != otp.AlgorithmSHA1 || key.Digits() != otp.DigitsSix || key.Period() != 30 {
		t.Fatalf("key %s: want totp, issuer Equilateral, alice@acme-ops, SHA1, 6 digits, 30 s", e.URI)
	}
	if e.Account != "alice@acme-ops" || e.Secret != key.Secret() || len(e.Secret) < 32 {
		t.Fatalf("enrollment %+v", e)
	}
	u, _ := url.Parse(e.URI)
	if u.Query().Get("secret") != e.Secret {
		t.Fatalf("URI secret differs from the enrollment's")
	}

	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "admins"):               0o700 | os.ModeDir,
		filepath.Join(dir, "admins", "alice.json"): 0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %s, want %s", path, st.Mode(), want)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "admins", "alice.json"))
	if !strings.Contains(string(raw), e.Secret) {
		t.Fatalf("the stored file does not hold the secret the app got")
	}
	// Two enrollments never share a secret.
	e2, err := mfa.Enroll(dir, "bob")
	if err != nil || e2.Secret == e.Secret {
		t.Fatalf("bob: %v, same secret %v", err, e2.Secret == e.Secret)
	}
}

func TestEnrollAccountWithoutOperatorJWT(t *testing.T) {
	e, err := mfa.Enroll(dataDir(t), "ops")
	if err != nil || e.Account != "ops@equilateral" {
		t.Fatalf("account %q, %v: want ops@equilateral", e.Account, err)
	}
}

func TestEnrollRefusesExistingBadAndReservedNames(t *testing.T) {
	dir := dataDir(t)
	secret := enroll(t, dir, "alice")
	if _, err := mfa.Enroll(dir, "alice"); !errors.Is(err, mfa.ErrAdminExists) {
		t.Fatalf("second alice: %v, want ErrAdminExists", err)
	}
	// The first alice's secret is untouched.
	if _, err := mfa.Verify(dir, code(t, secret, now), now); err != nil {
		t.Fatalf("alice's code after a refused re-enroll: %v", err)
	}
	for _, bad := range []string{"", "Alice", "-x", "a/b", "../x", strings.Repeat("a", 65), "a.b"} {
		if _, err := mfa.Enroll(dir, bad); !errors.Is(err, protocol.ErrInvalidName) {
			t.Errorf("name %q: %v, want ErrInvalidName", bad, err)
		}
	}
	if _, err := mfa.Enroll(dir, "session"); !errors.Is(err, mfa.ErrReservedName) {
		t.Fatalf("name session: %v, want ErrReservedName", err)
	}
	if _, err := mfa.Enroll(filepath.Join(dir, "missing"), "bob"); err == nil {
		t.Fatal("enrolled into a data dir that does not exist")
	}
}

func TestEnrolledAndRemove(t *testing.T) {
	dir := dataDir(t)
	if names, err := mfa.Enrolled(dir); err != nil || len(names) != 0 {
		t.Fatalf("fresh data dir: %v %v", names, err)
	}
	enroll(t, dir, "bob")
	secret := enroll(t, dir, "alice")
	if _, err := mfa.OpenSession(dir, code(t, secret, now), now, 0); err != nil {
		t.Fatal(err)
	}
	names, err := mfa.Enrolled(dir)
	if err != nil || strings.Join(names, ",") != "alice,bob" {
		t.Fatalf("enrolled %v %v, want alice,bob (the session is no admin)", names, err)
	}
	if err := mfa.Remove(dir, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := mfa.Remove(dir, "alice"); !errors.Is(err, mfa.ErrUnknownAdmin) {
		t.Fatalf("second remove: %v, want ErrUnknownAdmin", err)
	}
	if names, _ := mfa.Enrolled(dir); strings.Join(names, ",") != "bob" {
		t.Fatalf("after remove: %v", names)
	}
	// Removing alice ended her session.
	if _, err := mfa.SessionAdmin(dir, now); !errors.Is(err, mfa.ErrNoSession) {
		t.Fatalf("alice's session after her removal: %v, want ErrNoSession", err)
	}
	// Her codes no longer work.
	if _, err := mfa.Verify(dir, code(t, secret, now.Add(30*time.Second)), now); !errors.Is(err, mfa.ErrWrongCode) {
		t.Fatalf("removed admin's code: %v, want ErrWrongCode", err)
	}
}

func TestVerify(t *testing.T) {
	dir := dataDir(t)
	if _, err := mfa.Verify(dir, "123456", now); !errors.Is(err, mfa.ErrNoAdmins) {
		t.Fatalf("no admin: %v, want ErrNoAdmins", err)
	}
	alice := enroll(t, dir, "alice")
	bob := enroll(t, dir, "bob")

	if _, err := mfa.Verify(dir, wrong(t, alice, now), now); !errors.Is(err, mfa.ErrWrongCode) {
		t.Fatalf("wrong code: %v", err)
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef", "12 34 5x"} {
		if _, err := mfa.Verify(dir, bad, now); !errors.Is(err, mfa.ErrWrongCode) {
			t.Errorf("code %q: %v, want ErrWrongCode", bad, err)
		}
	}
	// Two steps away is out of the skew either way.
	for _, d := range []time.Duration{-60 * time.Second, 60 * time.Second} {
		if _, err := mfa.Verify(dir, code(t, alice, now.Add(d)), now); !errors.Is(err, mfa.ErrWrongCode) {
			t.Errorf("code of now%+v: %v, want ErrWrongCode", d, err)
		}
	}

	// One step back, now, one step ahead: each once, in order.
	prev, cur, next := code(t, alice, now.Add(-30*time.Second)), code(t, alice, now), code(t, alice, now.Add(30*time.Second))
	if who, err := mfa.Verify(dir, prev, now); err != nil || who != "alice" {
		t.Fatalf("previous step: %q %v", who, err)
	}
	if _, err := mfa.Verify(dir, prev, now); !errors.Is(err, mfa.ErrReplayedCode) {
		t.Fatalf("replay: %v, want ErrReplayedCode", err)
	}
	// Spaces as apps show them are fine.
	if who, err := mfa.Verify(dir, cur[:3]+" "+cur[3:], now); err != nil || who != "alice" {
		t.Fatalf("current step: %q %v", who, err)
	}
	if who, err := mfa.Verify(dir, next, now); err != nil || who != "alice" {
		t.Fatalf("next step: %q %v", who, err)
	}
	// The step of the last accepted code is persisted: an older code of a
	// step not used yet is refused too, even later on.
	for _, c := range []string{cur, next} {
		if _, err := mfa.Verify(dir, c, now.Add(30*time.Second)); !errors.Is(err, mfa.ErrReplayedCode) {
			t.Fatalf("code %s after next was used: %v, want ErrReplayedCode", c, err)
		}
	}
	// Bob's steps are his own.
	if who, err := mfa.Verify(dir, code(t, bob, now), now); err != nil || who != "bob" {
		t.Fatalf("bob: %q %v", who, err)
	}
	admins, err := mfa.Admins(dir)
	if err != nil || len(admins) != 2 || !admins[0].LastUsedAt.Equal(now.Truncate(30*time.Second).Add(30*time.Second)) {
		t.Fatalf("admins %+v %v: alice last used the next step", admins, err)
	}
}

// TestVerifyConcurrentReplay: of many goroutines given the same code at
// once, exactly one is accepted.
func TestVerifyConcurrentReplay(t *testing.T) {
	dir := dataDir(t)
	secret := enroll(t, dir, "alice")
	c := code(t, secret, now)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = mfa.Verify(dir, c, now)
		}()
	}
	close(start)
	wg.Wait()
	accepted := 0
	for _, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, mfa.ErrReplayedCode):
			t.Errorf("unexpected refusal: %v", err)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of %d concurrent Verify calls accepted the same code, want exactly 1", accepted, n)
	}
}

// TestVerifyConcurrentReplayProcesses: the same across processes, as two
// commands run at once would be.
func TestVerifyConcurrentReplayProcesses(t *testing.T) {
	if dir := os.Getenv("MFA_TEST_VERIFY_DIR"); dir != "" {
		at, _ := time.Parse(time.RFC3339, os.Getenv("MFA_TEST_VERIFY_AT"))
		if _, err := mfa.Verify(dir, os.Getenv("MFA_TEST_VERIFY_CODE"), at); err != nil {
			fmt.Println("refused:", err)
			os.Exit(3)
		}
		fmt.Println("accepted")
		os.Exit(0)
	}
	dir := dataDir(t)
	secret := enroll(t, dir, "alice")
	const n = 6
	cmds := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyConcurrentReplayProcesses$")
		cmd.Env = append(os.Environ(), "MFA_TEST_VERIFY_DIR="+dir,
			"MFA_TEST_VERIFY_CODE="+code(t, secret, now), "MFA_TEST_VERIFY_AT="+now.Format(time.RFC3339))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		cmds[i] = cmd
	}
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	accepted := 0
	for i, cmd := range cmds {
		err := cmd.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil && strings.Contains(outs[i].String(), "accepted"):
			accepted++
		case errors.As(err, &exit) && exit.ExitCode() == 3 && strings.Contains(outs[i].String(), mfa.ErrReplayedCode.Error()):
		default:
			t.Errorf("process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of %d processes accepted the same code, want exactly 1", accepted, n)
	}
}

func TestSession(t *testing.T) {
	dir := dataDir(t)
	if _, err := mfa.SessionAdmin(dir, now); !errors.Is(err, mfa.ErrNoSession) {
		t.Fatalf("no session yet: %v", err)
	}
	secret := enroll(t, dir, "alice")
	if _, err := mfa.OpenSession(dir, wrong(t, secret, now), now, 0); !errors.Is(err, mfa.ErrWrongCode) {
		t.Fatalf("session on a wrong code: %v", err)
	}
	for _, ttl := range []time.Duration{-time.Minute, 12*time.Hour + time.Second} {
		if _, err := mfa.OpenSession(dir, code(t, secret, now), now, ttl); !errors.Is(err, mfa.ErrSessionTTL) {
			t.Fatalf("ttl %s: %v, want ErrSessionTTL", ttl, err)
		}
	}
	c := code(t, secret, now)
	s, err := mfa.OpenSession(dir, c, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Admin != "alice" || s.ExpiresAt.Sub(s.OpenedAt) != 15*time.Minute {
		t.Fatalf("session %+v: want alice for 15m", s)
	}
	// Opening the session spent the code.
	if _, err := mfa.Verify(dir, c, now); !errors.Is(err, mfa.ErrReplayedCode) {
		t.Fatalf("the session's code again: %v, want ErrReplayedCode", err)
	}
	if _, err := mfa.OpenSession(dir, c, now, 0); !errors.Is(err, mfa.ErrReplayedCode) {
		t.Fatalf("a second session on the same code: %v, want ErrReplayedCode", err)
	}
	for _, at := range []time.Duration{0, time.Minute, 14*time.Minute + 59*time.Second} {
		if who, err := mfa.SessionAdmin(dir, now.Add(at)); err != nil || who != "alice" {
			t.Fatalf("at +%s: %q %v", at, who, err)
		}
	}
	if _, err := mfa.SessionAdmin(dir, now.Add(15*time.Minute)); !errors.Is(err, mfa.ErrSessionExpired) {
		t.Fatalf("at expiry: %v, want ErrSessionExpired", err)
	}
	// At most 12 h.
	if s, err := mfa.OpenSession(dir, code(t, secret, now.Add(30*time.Second)), now, 12*time.Hour); err != nil || s.ExpiresAt.Sub(s.OpenedAt) != 12*time.Hour {
		t.Fatalf("12h session: %+v %v", s, err)
	}
	if err := mfa.EndSession(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := mfa.SessionAdmin(dir, now); !errors.Is(err, mfa.ErrNoSession) {
		t.Fatalf("after EndSession: %v", err)
	}
}

// TestSessionForged: a session file written or edited by hand is refused.
func TestSessionForged(t *testing.T) {
	dir := dataDir(t)
	alice := enroll(t, dir, "alice")
	enroll(t, dir, "bob")
	if _, err := mfa.OpenSession(dir, code(t, alice, now), now, time.Hour); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "admins", "session.json")
	good, _ := os.ReadFile(path)
	var f map[string]string
	if err := json.Unmarshal(good, &f); err != nil {
		t.Fatal(err)
	}
	edit := func(k, v string) []byte {
		g := map[string]string{}
		for key, val := range f {
			g[key] = val
		}
		g[k] = v
		raw, _ := json.Marshal(g)
		return raw
	}
	later := now.Add(48 * time.Hour).Format(time.RFC3339)
	cases := map[string][]byte{
		"expiry extended":    edit("expires_at", later),
		"opened later":       edit("opened_at", now.Add(47*time.Hour).Format(time.RFC3339)),
		"another admin":      edit("admin", "bob"),
		"unknown admin":      edit("admin", "mallory"),
		"no mac":             edit("mac", ""),
		"mac of zeros":       edit("mac", strings.Repeat("0", 64)),
		"not hex":            edit("mac", "zz"),
		"hand-written":       []byte(`{"admin":"alice","opened_at":"` + now.Format(time.RFC3339) + `","expires_at":"` + later + `","mac":"` + strings.Repeat("ab", 32) + `"}`),
		"extra field":        append(bytes.Clone(good[:len(good)-2]), []byte(`,"x":1}`)...),
		"empty":              nil,
		"bad admin name":     edit("admin", "../bob"),
		"trailing":           append(bytes.Clone(good), []byte(`{}`)...),
		"admin session file": edit("admin", "session"),
	}
	for name, raw := range cases {
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if who, err := mfa.SessionAdmin(dir, now.Add(time.Minute)); err == nil {
			t.Errorf("%s: accepted as %s", name, who)
		} else if !errors.Is(err, mfa.ErrSessionInvalid) {
			t.Errorf("%s: %v, want ErrSessionInvalid", name, err)
		}
	}
	// The file as written is still good.
	os.WriteFile(path, good, 0o600)
	if who, err := mfa.SessionAdmin(dir, now.Add(time.Minute)); err != nil || who != "alice" {
		t.Fatalf("the real session: %q %v", who, err)
	}
}

// FuzzSessionFile: no session file but the one OpenSession wrote is
// accepted, whatever the bytes.
func FuzzSessionFile(f *testing.F) {
	f.Add([]byte(`{"admin":"alice","opened_at":"2025-06-01T12:00:00Z","expires_at":"2025-06-01T12:15:00Z","mac":"00"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	dir := dataDir(f)
	enroll(f, dir, "alice")
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(filepath.Join(dir, "admins", "session.json"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if who, err := mfa.SessionAdmin(dir, now.Add(time.Minute)); err == nil {
			t.Fatalf("forged session accepted as %q: %q", who, raw)
		}
	})
}

// FuzzVerify: no string but the admin's code is accepted.
func FuzzVerify(f *testing.F) {
	dir := dataDir(f)
	secret := enroll(f, dir, "alice")
	near := map[string]bool{}
	for d := -1; d <= 1; d++ {
		near[code(f, secret, now.Add(time.Duration(d)*30*time.Second))] = true
	}
	f.Add("000000")
	f.Add("12 34 56")
	f.Add("")
	f.Fuzz(func(t *testing.T, c string) {
		norm := strings.NewReplacer(" ", "", "-", "").Replace(c)
		if near[norm] {
			t.Skip()
		}
		if _, err := mfa.Verify(dir, c, now); err == nil {
			t.Fatalf("code %q accepted", c)
		}
	})
}
