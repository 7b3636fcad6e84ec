package iampolicy

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, s string
		fold, want bool
	}{
		{"*", "", false, true},
		{"*", "anything:at/all", false, true},
		{"", "", false, true},
		{"", "a", false, false},
		{"abc", "abc", false, true},
		{"abc", "abcd", false, false},
		{"abc", "ABC", false, false},
		{"abc", "ABC", true, true},
		{"ABC", "abc", true, true},
		{"kinesis:Get*", "kinesis:GetRecords", false, true},
		{"kinesis:Get*", "kinesis:GetRecords", true, true},
		{"kinesis:get*", "KINESIS:GETRECORDS", true, true},
		{"kinesis:Get*", "kinesis:Ge", false, false},
		{"?", "", false, false},
		{"?", "é", false, true}, // one character, two bytes
		{"??", "é", false, false},
		{"*?", "é", false, true},
		{"a*b*c", "aXXbYYc", false, true},
		{"a*b*c", "aXXbYY", false, false},
		{"a*b?c", "ab1cb2c", false, true},
		{"*orders*", "arn:aws:kinesis:us-east-1:1:stream/orders/consumer/x:1", false, true},
		{"arn:aws:kinesis:*:*:stream/orders", "arn:aws:kinesis:us-east-1:111122223333:stream/orders", false, true},
		{"arn:aws:kinesis:*:*:stream/orders", "arn:aws:kinesis:us-east-1:111122223333:stream/orders2", false, false},
		{"arn:*:stream/*/consumer/*", "arn:aws:kinesis:r:1:stream/s/consumer/c:123", false, true},
		{"**a", "ba", false, true},
		{"a**", "a", false, true},
		{"*a*a*a*a*b", strings.Repeat("a", 64), false, false},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.pattern, tt.s, tt.fold); got != tt.want {
			t.Errorf("MatchPattern(%q, %q, %v) = %v, want %v", tt.pattern, tt.s, tt.fold, got, tt.want)
		}
		p := compilePattern(tt.pattern, tt.fold)
		if got := p.match(tt.s); got != tt.want {
			t.Errorf("compiled %q (kind %d) matches %q = %v, want %v", tt.pattern, p.kind, tt.s, got, tt.want)
		}
	}
}

// refMatch is an obviously correct (exponential) matcher over runes.
func refMatch(p, s []rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if refMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(s) > 0 && refMatch(p[1:], s[1:])
	default:
		return len(s) > 0 && p[0] == s[0] && refMatch(p[1:], s[1:])
	}
}

// TestPatternAgainstReference compares the compiled matcher with refMatch on
// random short strings over a small alphabet, where wildcards collide often.
func TestPatternAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := []rune("ab:/é*?")
	gen := func(n int, wild bool) string {
		var b strings.Builder
		for range rng.IntN(n) {
			r := alpha[rng.IntN(len(alpha))]
			if !wild && (r == '*' || r == '?') {
				r = 'a'
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	for range 20000 {
		p, s := gen(8, true), gen(10, false)
		want := refMatch([]rune(p), []rune(s))
		cp := compilePattern(p, false)
		if got := cp.match(s); got != want {
			t.Fatalf("pattern %q (kind %d) vs %q: got %v, want %v", p, cp.kind, s, got, want)
		}
		// Folding (ASCII only): an upper-cased subject matches the same way.
		upper := strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' {
				return r - ('a' - 'A')
			}
			return r
		}, s)
		fp := compilePattern(p, true)
		if got := fp.match(upper); got != want {
			t.Fatalf("folded pattern %q vs %q: got %v, want %v", p, upper, got, want)
		}
	}
}

func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "KiNeSiS:Put*": "kinesis:put*", "ÉA": "Éa"} {
		if got := lowerASCII(in); got != want {
			t.Errorf("lowerASCII(%q) = %q, want %q", in, got, want)
		}
		if !utf8.ValidString(lowerASCII(in)) {
			t.Errorf("lowerASCII(%q) is not valid UTF-8", in)
		}
	}
}
