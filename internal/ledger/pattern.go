package ledger

import (
	"encoding/binary"
	"math/bits"
	"regexp/syntax"
)

// asciiPattern is a fast matcher for the patterns contracts mostly declare: anchored at both
// ends, a sequence of ASCII characters or classes, each repeated a fixed or bounded number
// of times ('^ACC[0-9]{4,}$', '^[A-Z]{3}$', '^[a-z0-9_-]{1,64}$'). It matches in one pass
// over the bytes, without backtracking, where the regexp engine costs ten times as much per
// message. compilePattern builds it only for patterns where that one greedy pass gives
// exactly the regexp's answer; any other pattern keeps the regexp.
type asciiPattern struct {
	items []patternItem
	// prefix is the literal the pattern starts with (its first items of one byte taken
	// once), compared at once; rest are the items after it. For a prefix of at most eight
	// bytes, word and mask compare a text's first eight with it in one go.
	prefix     string
	rest       []patternItem
	word, mask uint64
}

// patternItem is one position of the sequence: a set of ASCII bytes, taken min to max times
// (max < 0: unbounded).
type patternItem struct {
	set      [2]uint64 // bit c: byte c (< 128) is in the set
	min, max int
}

func (it *patternItem) has(c byte) bool { return c < 128 && it.set[c>>6]&(1<<(c&63)) != 0 }

// compilePattern returns the fast matcher of the RE2 pattern expr, or nil when expr is not
// of the simple form (see asciiPattern), when the regexp stays the judge.
//
// A greedy pass is exact when every item that may take a variable count is disjoint from
// every item after it up to (and including) the first that must take at least one byte: a
// byte of its set that it leaves could then be taken by nothing else, so the match must
// take all it can, as the greedy pass does.
func compilePattern(expr string) *asciiPattern {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	var subs []*syntax.Regexp
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	} else {
		subs = []*syntax.Regexp{re}
	}
	if len(subs) < 2 || subs[0].Op != syntax.OpBeginText || subs[len(subs)-1].Op != syntax.OpEndText {
		return nil // unanchored patterns search; only whole-string matches are simple
	}
	p := &asciiPattern{}
	for _, s := range subs[1 : len(subs)-1] {
		items, ok := patternItems(s)
		if !ok {
			return nil
		}
		p.items = append(p.items, items...)
	}
	for i, it := range p.items {
		if it.min == it.max {
			continue
		}
		for _, next := range p.items[i+1:] {
			if it.set[0]&next.set[0] != 0 || it.set[1]&next.set[1] != 0 {
				return nil
			}
			if next.min > 0 {
				break
			}
		}
	}
	var prefix []byte
	for _, it := range p.items {
		c, ok := it.single()
		if !ok || it.min != 1 || it.max != 1 {
			break
		}
		prefix = append(prefix, c)
	}
	p.prefix, p.rest = string(prefix), p.items[len(prefix):]
	if len(prefix) <= 8 {
		var b [8]byte
		copy(b[:], prefix)
		p.word = binary.LittleEndian.Uint64(b[:])
		p.mask = 1<<(8*len(prefix)) - 1
		if len(prefix) == 8 {
			p.mask = ^uint64(0)
		}
	}
	return p
}

// single returns the byte of a set of one byte.
func (it *patternItem) single() (byte, bool) {
	lo, hi := it.set[0], it.set[1]
	switch {
	case hi == 0 && lo != 0 && lo&(lo-1) == 0:
		return byte(bits.TrailingZeros64(lo)), true
	case lo == 0 && hi != 0 && hi&(hi-1) == 0:
		return byte(64 + bits.TrailingZeros64(hi)), true
	}
	return 0, false
}

// patternItems turns one element of the pattern's top-level sequence into items, or reports
// that it is not simple.
func patternItems(re *syntax.Regexp) ([]patternItem, bool) {
	if re.Flags&syntax.FoldCase != 0 {
		return nil, false
	}
	switch re.Op {
	case syntax.OpLiteral:
		items := make([]patternItem, 0, len(re.Rune))
		for _, r := range re.Rune {
			if r >= 128 {
				return nil, false
			}
			it := patternItem{min: 1, max: 1}
			it.set[r>>6] |= 1 << (r & 63)
			items = append(items, it)
		}
		return items, true
	case syntax.OpCharClass:
		it := patternItem{min: 1, max: 1}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi >= 128 {
				return nil, false
			}
			for r := lo; r <= hi; r++ {
				it.set[r>>6] |= 1 << (r & 63)
			}
		}
		return []patternItem{it}, true
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		if re.Flags&syntax.NonGreedy != 0 {
			// Whole-string matches do not depend on greediness, but keep it plain.
			return nil, false
		}
		sub, ok := patternItems(re.Sub[0])
		if !ok || len(sub) != 1 {
			return nil, false
		}
		it := sub[0]
		switch re.Op {
		case syntax.OpStar:
			it.min, it.max = 0, -1
		case syntax.OpPlus:
			it.min, it.max = 1, -1
		case syntax.OpQuest:
			it.min, it.max = 0, 1
		default:
			if re.Max >= 0 && re.Max < re.Min {
				return nil, false
			}
			it.min, it.max = re.Min, re.Max
		}
		return []patternItem{it}, true
	}
	return nil, false
}

// match reports whether the whole of s matches.
func (p *asciiPattern) match(s []byte) bool {
	switch {
	case len(s) < len(p.prefix):
		return false
	case len(s) >= 8 && len(p.prefix) <= 8:
		if binary.LittleEndian.Uint64(s)&p.mask != p.word {
			return false
		}
	case string(s[:len(p.prefix)]) != p.prefix:
		return false
	}
	pos := len(p.prefix)
	for i := range p.rest {
		it := &p.rest[i]
		start := pos
		if it.max < 0 {
			for pos < len(s) && it.has(s[pos]) {
				pos++
			}
		} else {
			for pos-start < it.max && pos < len(s) && it.has(s[pos]) {
				pos++
			}
		}
		if pos-start < it.min {
			return false
		}
	}
	return pos == len(s)
}
