package iampolicy

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// MatchPattern reports whether s matches pattern, in which '*' matches any run
// of characters (including none, and including ':' and '/') and '?' matches
// exactly one character. With foldCase, ASCII letters match regardless of
// case (IAM matches action names that way); otherwise the match is exact
// (resource ARNs and StringLike).
func MatchPattern(pattern, s string, foldCase bool) bool {
	if foldCase {
		pattern = lowerASCII(pattern)
	}
	return globMatch(pattern, s, foldCase)
}

// patKind is the shape of a compiled pattern: most patterns in real policies
// are "*", a literal, or a literal followed by one '*', and those need no
// backtracking matcher.
type patKind uint8

const (
	patAny    patKind = iota // "*": everything
	patExact                 // no wildcard
	patPrefix                // literal then a single trailing '*'
	patStars                 // literals separated by '*', no '?', not folded
	patGlob                  // anything else
)

// pattern is a compiled wildcard pattern. When fold is set, lit holds the
// pattern with ASCII letters in lower case.
type pattern struct {
	kind patKind
	fold bool
	lit  string // the pattern (patGlob), or its literal part (patExact, patPrefix), or the prefix (patStars)

	// patStars: lit, then mids in order (each found with strings.Index,
	// leftmost first, which is all a '*'-only pattern needs), then suffix.
	mids   []string
	suffix string
}

func compilePattern(p string, fold bool) pattern {
	if fold {
		p = lowerASCII(p)
	}
	switch i := strings.IndexAny(p, "*?"); {
	case p == "*":
		return pattern{kind: patAny}
	case i < 0:
		return pattern{kind: patExact, fold: fold, lit: p}
	case i == len(p)-1 && p[i] == '*':
		return pattern{kind: patPrefix, fold: fold, lit: p[:i]}
	case !fold && !strings.Contains(p, "?"):
		parts := strings.Split(p, "*")
		mids := slices.DeleteFunc(parts[1:len(parts)-1], func(m string) bool { return m == "" })
		return pattern{kind: patStars, lit: parts[0], mids: mids, suffix: parts[len(parts)-1]}
	default:
		return pattern{kind: patGlob, fold: fold, lit: p}
	}
}

func (p *pattern) match(s string) bool {
	switch p.kind {
	case patAny:
		return true
	case patExact:
		if p.fold {
			return equalFoldASCII(p.lit, s)
		}
		return p.lit == s
	case patPrefix:
		if len(s) < len(p.lit) {
			return false
		}
		if p.fold {
			return equalFoldASCII(p.lit, s[:len(p.lit)])
		}
		return s[:len(p.lit)] == p.lit
	case patStars:
		if len(s) < len(p.lit)+len(p.suffix) || !strings.HasPrefix(s, p.lit) || !strings.HasSuffix(s, p.suffix) {
			return false
		}
		rest := s[len(p.lit) : len(s)-len(p.suffix)]
		for _, m := range p.mids {
			i := strings.Index(rest, m)
			if i < 0 {
				return false
			}
			rest = rest[i+len(m):]
		}
		return true
	default:
		return globMatch(p.lit, s, p.fold)
	}
}

// patterns is an OR of compiled patterns.
type patterns []pattern

func (ps patterns) match(s string) bool {
	for i := range ps {
		if ps[i].match(s) {
			return true
		}
	}
	return false
}

// globMatch matches s against p ('*' any run, '?' one character) with the
// usual single-backtrack-point algorithm: on a mismatch it retries from the
// most recent '*', which then swallows one more character. Because a later
// '*' can absorb anything an earlier one could, only the latest '*' ever
// needs revisiting, so the cost is O(len(p)*len(s)) at worst, without
// recursion or allocation. With fold, p must already be lower case (ASCII).
func globMatch(p, s string, fold bool) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch c := p[pi]; c {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				_, w := utf8.DecodeRuneInString(s[si:])
				pi++
				si += w
				continue
			default:
				b := s[si]
				if fold {
					b = lowerByte(b)
				}
				if c == b {
					pi++
					si++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' swallow one more character and retry after it.
		if s[starS] < utf8.RuneSelf {
			starS++
		} else {
			_, w := utf8.DecodeRuneInString(s[starS:])
			starS += w
		}
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func lowerByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

// lowerASCII lowers ASCII letters only, so that byte offsets are unchanged
// (strings.ToLower may change the length of non-ASCII text).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

// equalFoldASCII reports whether lower (already lower case) equals s with
// ASCII letters folded.
func equalFoldASCII(lower, s string) bool {
	if len(lower) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower[i] != lowerByte(s[i]) {
			return false
		}
	}
	return true
}
