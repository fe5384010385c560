package ledger

import (
	"regexp"
	"testing"
)

// patternCases are patterns with whether compilePattern takes them (fast) and inputs whose
// answer must be the regexp's.
var patternCases = []struct {
	expr   string
	fast   bool
	inputs []string
}{
	{`^ACC[0-9]{4,}$`, true, []string{"ACC1234", "ACC123", "ACC12345678", "acc1234", "ACC1234x", "xACC1234", "ACC", "", "ACC１２３４"}},
	{`^[A-Z]{3}$`, true, []string{"USD", "US", "USDX", "usd", "U$D"}},
	{`^[a-z0-9_-]{1,8}$`, true, []string{"a", "", "abc-def_", "abc-def_9", "ABC"}},
	{`^P\d+$`, true, []string{"P1", "P", "P12a", "p1"}},
	{`^x?y*z+$`, true, []string{"z", "xyz", "xxz", "yyyz", "x", "xz", ""}},
	{`^$`, true, []string{"", "a"}},
	{`^ab{2,3}c$`, true, []string{"abbc", "abbbc", "abc", "abbbbc"}},
	{`^[0-9]{1,3}[0-9]$`, false, []string{"1", "12", "1234", "12345"}}, // overlapping sets: regexp
	{`^[A-Z]*A$`, false, []string{"A", "BA", "AA", "AB"}},              // same
	{`^[a-z]?[a-z]$`, false, []string{"a", "ab", "abc"}},               // same
	{`ACC[0-9]+`, false, []string{"xACC1y", "ACC", "ACC1"}},            // unanchored: a search
	{`^(USD|EUR)$`, false, []string{"USD", "EUR", "GBP"}},              // alternation
	{`^(?i)acc$`, false, []string{"ACC", "acc", "aCc", "ac"}},          // case folding
	{`^[^0-9]+$`, false, []string{"abc", "a1", "é"}},                   // a class beyond ASCII
	{`^.{2}$`, false, []string{"ab", "é1", "a"}},                       // any character
	{`^é+$`, false, []string{"é", "éé", "e"}},                          // non-ASCII literal
	{`^[A-Z]{2}[0-9]{2,}[a-z]*$`, true, []string{"AB12", "AB12abc", "AB1", "ab12", "AB12ABC"}},
	{`^[ab]*[bc]$`, false, []string{"b", "ab", "abb", "c", "aac"}}, // overlapping
	{`^a*b?a$`, false, []string{"a", "aa", "aba", "ab"}},           // a* overlaps a after an optional b
}

func TestCompilePattern(t *testing.T) {
	for _, tc := range patternCases {
		p := compilePattern(tc.expr)
		if (p != nil) != tc.fast {
			t.Errorf("compilePattern(%q) fast = %v, want %v", tc.expr, p != nil, tc.fast)
			continue
		}
		if p == nil {
			continue
		}
		re := regexp.MustCompile(tc.expr)
		for _, in := range tc.inputs {
			if got, want := p.match([]byte(in)), re.MatchString(in); got != want {
				t.Errorf("pattern %q on %q: fast %v, regexp %v", tc.expr, in, got, want)
			}
		}
	}
}

// FuzzPatternMatch: wherever compilePattern takes a pattern, its answer is the regexp's,
// for any pattern and any input.
func FuzzPatternMatch(f *testing.F) {
	for _, tc := range patternCases {
		for _, in := range tc.inputs {
			f.Add(tc.expr, in)
		}
	}
	f.Fuzz(func(t *testing.T, expr, in string) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return
		}
		p := compilePattern(expr)
		if p == nil {
			return
		}
		if got, want := p.match([]byte(in)), re.MatchString(in); got != want {
			t.Fatalf("pattern %q on %q: fast %v, regexp %v", expr, in, got, want)
		}
	})
}
