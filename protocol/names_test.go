package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "acme", "0", "plan-code_review", "a1", strings.Repeat("x", 64)}
	for _, name := range good {
		if err := ValidateName("agent", name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	bad := []string{"", "-a", "_a", "Acme", "a.b", "a b", "a*", "a>", "ä", strings.Repeat("x", 65), "a\nb", "$sys", "a/b"}
	for _, name := range bad {
		err := ValidateName("agent", name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", name, err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("error for %q spans lines: %q", name, err)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"acme", "", "a.b", "Z", "a-b_c", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName("tenant", name)
		if err != nil {
			return
		}
		// Whatever passes must be one token that is safe in a subject.
		if strings.ContainsAny(name, ".*> \t\r\n") || len(name) > MaxNameLen || name == "" {
			t.Fatalf("accepted unsafe name %q", name)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("accepted character %q in %q", r, name)
			}
		}
	})
}

func TestEventTypesAndSources(t *testing.T) {
	for _, typ := range []string{TypeTaskSubmitted, TypeTaskDeadLettered, "io.equilateral.a.b.c.v12"} {
		if err := ValidateEventType(typ); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	for _, typ := range []string{"", "io.equilateral.task.v1", "com.example.task.done.v1", "io.equilateral.task.done", "io.equilateral.Task.done.v1", "io.equilateral.task.done.v", "io.equilateral.task.done.vx"} {
		if ValidateEventType(typ) == nil {
			t.Errorf("%q accepted", typ)
		}
	}
	tenant, name, err := ParseSource(Source("acme", "coder"))
	if err != nil || tenant != "acme" || name != "coder" {
		t.Fatalf("ParseSource: %s %s %v", tenant, name, err)
	}
	for _, src := range []string{"", "eq://acme", "eq://acme/", "eq:///coder", "http://acme/coder", "eq://acme/coder/x", "eq://ACME/coder"} {
		if _, _, err := ParseSource(src); err == nil {
			t.Errorf("%q accepted", src)
		}
	}
}
