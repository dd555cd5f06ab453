package demo

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// fold returns what s looks like, in ASCII where it can: the reviewer
// scans this as well as s itself, so that "pаssword" with a Cyrillic а,
// "ｐａｓｓｗｏｒｄ" in fullwidth forms or "pass\u200bword" split by a
// zero-width space do not pass for something other than "password".
//
//   - Compatibility forms are folded (fullwidth and halfwidth forms,
//     mathematical letters, ligatures, superscripts, non-breaking spaces):
//     Unicode's NFKD, the decomposing half of NFKC. Decomposing rather
//     than composing leaves accents as separate marks, which the next step
//     drops, so "pässword" folds too.
//   - Combining marks and format characters are dropped: accents, zero-width
//     spaces and joiners, the word joiner, soft hyphens, byte-order marks,
//     bidirectional controls, variation selectors, tag characters; and the
//     blank letters that render as nothing (Hangul fillers).
//   - Cyrillic, Greek, Armenian and Latin letters that look like a Latin
//     letter become that letter (homoglyphs).
//
// Folding never adds or removes a '\n', so a line of the folded text is the
// same line of s. Plain ASCII is returned as it is.
func fold(s string) string {
	if isASCII(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		if l, ok := homoglyphs[r]; ok {
			return l
		}
		return r
	}, norm.NFKD.String(s))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// invisible reports whether r takes no room of its own: a mark that
// combines with the letter before it, a format character, or a filler.
func invisible(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0': // Hangul fillers
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf)
}

// homoglyphs maps letters of other scripts to the Latin letter they are
// drawn like in common fonts: a small table after Unicode's confusables
// (https://www.unicode.org/Public/security/latest/confusables.txt), for
// the letters that spell the words and prefixes secret rules look for.
// Fullwidth and mathematical forms need no entry: NFKD folds them.
var homoglyphs = map[rune]rune{
	// Cyrillic
	'а': 'a', 'е': 'e', 'к': 'k', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x',
	'ѕ': 's', 'і': 'i', 'ј': 'j', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'һ': 'h', 'ӏ': 'l', 'ь': 'b',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C',
	'Т': 'T', 'Х': 'X', 'У': 'Y', 'Ѕ': 'S', 'І': 'I', 'Ј': 'J', 'Ԛ': 'Q', 'Ԝ': 'W', 'Ӏ': 'l',
	'Һ': 'H', 'Ү': 'Y', 'ү': 'y',
	// Greek
	'α': 'a', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u',
	'χ': 'x', 'γ': 'y', 'ω': 'w',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N',
	'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X', 'ϲ': 'c', 'Ϲ': 'C', 'ϳ': 'j',
	// Armenian
	'օ': 'o', 'ս': 'u', 'ց': 'g', 'հ': 'h', 'ո': 'n', 'Օ': 'O', 'Ս': 'U',
	// Latin letters that look like other Latin letters
	'ı': 'i', 'ȷ': 'j', 'ɑ': 'a', 'ɡ': 'g', 'ɩ': 'i', 'ʟ': 'L',
}

// foldChangedLines is fold(s) restricted to where folding changed
// something: the lines it changed, and the line before and after each (a
// match may run over into the next line); all other lines are left empty,
// so that line n is still line n. Scanning it after s costs in proportion
// to the non-ASCII part of s, not to all of s again. It reports false when
// folding changes nothing.
func foldChangedLines(s string) (string, bool) {
	if isASCII(s) {
		return "", false
	}
	lines := strings.Split(s, "\n")
	changed := make([]bool, len(lines))
	any := false
	for i, line := range lines {
		if folded := fold(line); folded != line {
			lines[i], changed[i], any = folded, true, true
		}
	}
	if !any {
		return "", false
	}
	for i := range lines {
		near := changed[i] || (i > 0 && changed[i-1]) || (i+1 < len(lines) && changed[i+1])
		if !near {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n"), true
}
