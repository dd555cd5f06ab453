package demo

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFoldSpellsLookAlikesInASCII(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pаssword", "password"},                                     // Cyrillic а
		{"РАSSWОRD", "PASSWORD"},                                     // Cyrillic Р, А, О
		{"ΤΟΚΕΝ", "TOKEN"},                                           // Greek capitals
		{"tοkεn", "token"},                                           // Greek ο, ε
		{"ｐａｓｓｗｏｒｄ＝＂x＂", `password="x"`},                             // fullwidth forms
		{"𝐩𝐚𝐬𝐬𝐰𝐨𝐫𝐝", "password"},                                     // mathematical bold
		{"pass\u200bw\u200co\u200dr\u2060d\ufeff\u00ad", "password"}, // zero-width, format
		{"pa\u0301ss\u034fword\ufe0f", "password"},                   // combining marks
		{"pässwörd", "password"},                                     // precomposed accents
		{"ｼｰｸﾚｯﾄ", "シークレット"},                                         // halfwidth katakana
		{"a\u00a0b\u3000c", "a b c"},                                 // non-breaking and ideographic spaces
		{"x\u3164y", "xy"},                                           // Hangul filler
		{"ı", "i"},                                                   // dotless i
	}
	for _, tt := range tests {
		if got := fold(tt.in); got != tt.want {
			t.Errorf("fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFoldLeavesASCIIAsItIs(t *testing.T) {
	s := "password := \"hunter2\"\r\n\teval(x)\x00\x7f"
	if got := fold(s); got != s {
		t.Errorf("fold(%q) = %q", s, got)
	}
	if n := testing.AllocsPerRun(100, func() { fold(s) }); n != 0 {
		t.Errorf("fold of ASCII allocates %v times", n)
	}
}

func TestFoldChangedLinesKeepsOnlyWhatFoldingChanged(t *testing.T) {
	got, changed := foldChangedLines("l1\nl2\nl3 pаss\nl4\nl5\nl6 ｘ")
	if want := "\nl2\nl3 pass\nl4\nl5\nl6 x"; !changed || got != want {
		t.Errorf("got %q, %v; want %q", got, changed, want)
	}
	for _, s := range []string{"ascii\nonly", "日本語\nstays 日本語"} {
		if got, changed := foldChangedLines(s); changed || got != "" {
			t.Errorf("foldChangedLines(%q) = %q, %v; want nothing", s, got, changed)
		}
	}
}

// FuzzFold: folding, all of a text or its changed lines, keeps every line
// where it was (findings name lines of the text as it is) and never gives
// invalid UTF-8 from valid UTF-8.
func FuzzFold(f *testing.F) {
	for _, seed := range []string{"pаssword\n= 'x'", "ｐａｓｓ\u200b\nword", "a\u2028b\u0085c\r\n", "\xff\n\xfe", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := fold(s)
		if strings.Count(got, "\n") != strings.Count(s, "\n") {
			t.Fatalf("fold(%q) = %q: lines moved", s, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("fold(%q) = %q: invalid UTF-8", s, got)
		}
		if lines, changed := foldChangedLines(s); changed && strings.Count(lines, "\n") != strings.Count(s, "\n") {
			t.Fatalf("foldChangedLines(%q) = %q: lines moved", s, lines)
		}
	})
}

// BenchmarkNewSecretDetector is what the first review in a process pays:
// the rules are compiled once, on first use.
func BenchmarkNewSecretDetector(b *testing.B) {
	for b.Loop() {
		if _, err := newSecretDetector(); err != nil {
			b.Fatal(err)
		}
	}
}
