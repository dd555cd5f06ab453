package security

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLevelsAreOrderedAndEachAddsControls(t *testing.T) {
	prev := 0
	for i, l := range Levels() {
		if i > 0 && !l.AtLeast(Levels()[i-1]) {
			t.Errorf("%s is not above %s", l, Levels()[i-1])
		}
		on := len(l.On())
		if on <= prev {
			t.Errorf("%s switches on %d controls, no more than the level below (%d)", l, on, prev)
		}
		prev = on
		back, err := ParseLevel(strings.ToUpper(l.String()))
		if err != nil || back != l {
			t.Errorf("ParseLevel(%s) = %v, %v", l, back, err)
		}
	}
	if Enhanced.Has(TLSEverywhere) || !Advanced.Has(TLSEverywhere) || !Enterprise.Has(SignedEvents) || Foundation.Has(Audit) {
		t.Error("Has does not follow the levels")
	}
	if _, err := ParseLevel("paranoid"); err == nil || !strings.Contains(err.Error(), "foundation, enhanced") {
		t.Errorf("ParseLevel(paranoid): %v", err)
	}
	var zero Level
	if zero.Valid() || zero.Has(PrincipalCreds) {
		t.Error("the zero Level is a level")
	}
}

func TestEveryControlIsCatalogued(t *testing.T) {
	for _, c := range Controls() {
		if !c.Level().Valid() || c.What() == "" {
			t.Errorf("%s: level %v, what %q", c, c.Level(), c.What())
		}
	}
	if len(Controls()) != len(catalogue) {
		t.Errorf("%d controls in order, %d in the catalogue", len(Controls()), len(catalogue))
	}
}

func TestGate(t *testing.T) {
	allOn := Facts{}
	for _, c := range Controls() {
		allOn[c] = Observation{On: true}
	}
	for _, env := range Environments() {
		for _, l := range Levels() {
			v := Check(l, env, allOn)
			if v.Passed() != (l >= env.Gate()) {
				t.Errorf("%s in %s with every control on: passed %v", l, env, v.Passed())
			}
		}
	}

	// Below the gate: the level itself is missing, with its fix.
	v := Check(Enhanced, Production, allOn)
	if v.Passed() || len(v.Missing) != 1 || !strings.Contains(v.Error(), "--security-level advanced") {
		t.Errorf("enhanced in production: %+v", v)
	}

	// At the gate, a control observed off and one not observed at all are
	// both named with their fixes; controls of higher levels are not.
	facts := Facts{AdminMFA: {On: true}, EncryptionAtRest: {On: false, Detail: "the server stores plaintext"}}
	v = Check(Enhanced, Development, facts)
	text := v.Error()
	if v.Passed() || !strings.Contains(text, "encryption-at-rest") || !strings.Contains(text, "the server stores plaintext") || !strings.Contains(text, "jetstream { cipher, key }") {
		t.Errorf("enhanced without encryption:\n%s", text)
	}
	facts[EncryptionAtRest] = Observation{On: true}
	if v := Check(Enhanced, Development, facts); !v.Passed() {
		t.Errorf("enhanced with its controls on: %s", v.Error())
	}
	delete(facts, AdminMFA)
	if v := Check(Enhanced, Development, facts); v.Passed() || !strings.Contains(v.Error(), "admin-mfa: MFA (TOTP) on commands that mint creds or change tenants: could not be checked") {
		t.Errorf("MFA unobserved: %s", v.Error())
	}
	// Planned controls are never required.
	if v := Check(Advanced, Production, Facts{AdminMFA: {On: true}, EncryptionAtRest: {On: true}, TLSEverywhere: {On: true}, OutputGate: {On: true}, CredentialMaxAge: {On: true}}); !v.Passed() {
		t.Errorf("advanced with every built control on: %s", v.Error())
	}
	if err := Check(Foundation, Development, nil).Err(); err == nil {
		t.Error("foundation passed the development gate")
	}
}

func TestAssess(t *testing.T) {
	cases := []struct {
		usage Usage
		want  Level
		fired int
	}{
		{Usage{}, Foundation, 0},
		{Usage{ActivePrincipals: 9, Executions: 99, Tenants: 1}, Foundation, 0},
		{Usage{ActivePrincipals: 10}, Enhanced, 1},
		{Usage{Executions: 100}, Enhanced, 1},
		{Usage{CodeGenerating: 1}, Enhanced, 1},
		{Usage{Shares: 1}, Enhanced, 1},
		{Usage{Tenants: 2}, Advanced, 1},
		{Usage{ActivePrincipals: 25, Executions: 1000}, Advanced, 4},
		{Usage{Executions: 10000}, Enterprise, 3},
		{Usage{ActivePrincipals: 100}, Enterprise, 3},
	}
	for _, c := range cases {
		got, fired := Assess(c.usage)
		if got != c.want || len(fired) != c.fired {
			t.Errorf("Assess(%+v) = %s, %v; want %s with %d triggers", c.usage, got, fired, c.want, c.fired)
		}
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := ReadSettings(dir)
	if err != nil || s != Default() {
		t.Fatalf("no file: %+v, %v; want the default", s, err)
	}
	want := Settings{Level: Advanced, Environment: Production}
	if err := WriteSettings(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadSettings(dir); err != nil || got != want {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if want.CredentialLifetime() != DefaultMaxCredentialAge || Default().CredentialLifetime() != 0 {
		t.Errorf("credential lifetime: advanced %v, enhanced %v", want.CredentialLifetime(), Default().CredentialLifetime())
	}
	aged := Settings{Level: Enterprise, Environment: EnterpriseEnv, MaxCredentialAge: Duration(time.Hour)}
	if err := WriteSettings(dir, aged); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadSettings(dir); err != nil || got != aged || got.CredentialLifetime() != time.Hour {
		t.Fatalf("read back %+v, %v", got, err)
	}
	raw, _ := json.Marshal(want)
	if string(raw) != `{"level":"advanced","environment":"production"}` {
		t.Errorf("JSON %s", raw)
	}
}
