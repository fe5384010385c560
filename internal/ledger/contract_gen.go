package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MessageSource is a stream of generated messages, each with what the pipeline must make of
// it: the notebook's Generator, or a ContractGenerator for a team's own contract.
type MessageSource interface {
	Next(now time.Time) Message
	// KeyNumber returns the number of a key this source generates (the n of FirstID+n's
	// message), and false for any other key: a producer continuing a topic starts after the
	// highest.
	KeyNumber(key []byte) (int, bool)
	// KeyText is the key of number n, as the messages carry it.
	KeyText(n int) string
}

// KeyNumber is TransactionNumber: the notebook's keys are TXN + 8 digits.
func (g *Generator) KeyNumber(key []byte) (int, bool) { return TransactionNumber(key) }

// KeyText is TXN + n in 8 digits.
func (g *Generator) KeyText(n int) string { return fmt.Sprintf("TXN%08d", n) }

// KeyText is the key of number n in this generator's numbering.
func (g *ContractGenerator) KeyText(n int) string {
	return strings.Trim(string(g.gens[g.c.FieldIndex(g.c.Key)].appendKey(nil, n)), `"`)
}

// KeyNumber returns the number a key of this generator's numbering carries.
func (g *ContractGenerator) KeyNumber(key []byte) (int, bool) {
	k := g.c.FieldIndex(g.c.Key)
	fg := &g.gens[k]
	if fg.f.Type.Kind == TypeString {
		var n int
		if _, err := fmt.Sscanf(string(key), fg.keyFormat, &n); err != nil || fmt.Sprintf(fg.keyFormat, n) != string(key) || n > MaxTransactionNumber {
			return 0, false
		}
		return n, true
	}
	// Numeric keys: the unscaled value is origin + n*step; the texts of keys 0 and 1 give
	// both, and the round trip below rejects any text this numbering would not write.
	unscaled := func(b []byte) (*big.Int, bool) {
		b = bytes.Replace(bytes.Trim(b, `"`), []byte("."), nil, 1)
		return new(big.Int).SetString(string(b), 10)
	}
	z, _ := unscaled(fg.appendKey(nil, 0))
	o, _ := unscaled(fg.appendKey(nil, 1))
	v, ok := unscaled(key)
	if !ok {
		return 0, false
	}
	step := new(big.Int).Sub(o, z)
	q, r := new(big.Int).QuoRem(new(big.Int).Sub(v, z), step, new(big.Int))
	if r.Sign() != 0 || !q.IsInt64() || q.Int64() < 0 || q.Int64() > MaxTransactionNumber {
		return 0, false
	}
	n := int(q.Int64())
	if !bytes.Equal(bytes.Trim(fg.appendKey(nil, n), `"`), key) {
		return 0, false
	}
	return n, true
}

// NewGeneratorFor returns the generator of contract c's messages: the notebook's Generator
// for the default contract (or a nil c), else a ContractGenerator.
func NewGeneratorFor(c *Contract, seed int64, opts GeneratorOptions) (MessageSource, error) {
	if c == nil || c.IsDefault() {
		return NewGenerator(seed, opts), nil
	}
	return NewContractGenerator(c, seed, opts)
}

// ContractGenerator produces messages for any contract, deterministically for a seed as the
// notebook's Generator does (message i depends on the seed, i and the times passed to Next):
// valid messages whose every field passes its checks (enum values, strings matching the
// pattern, numbers within the bounds and the type, decimals at the column's scale, nested
// objects along the paths; optional fields sometimes absent or null), and with
// GeneratorOptions the same shares of duplicates (byte for byte, a fifth of them with the
// same key and another value of a hash column: conflicting_duplicate) and of messages that
// break one rule of the contract, each with the reason the decoder must give.
//
// Keys count: a string key is TXN%08d of FirstID+i (or another numbering its pattern and
// lengths accept), a numeric key the lowest value its bounds allow plus FirstID+i. The
// Kafka key is the key's text. Not safe for concurrent use.
type ContractGenerator struct {
	c *Contract
	messagePlan
	next  int
	times [dupWindow]time.Time
	gens  []fieldGen
	tree  *genNode
	// conflict is the hash column a conflicting duplicate changes (-1: none can change, so
	// every duplicate is byte for byte); extra is the unknown key some messages carry.
	conflict  int
	extra     string
	malformed []cvariant
	toks      [][]byte // per field: its JSON token in the message being built; nil = absent
	arena     []byte
	buf       []byte
}

// fieldGen draws one field's valid values.
type fieldGen struct {
	f   *Field
	key bool
	// keyFormat numbers a string key (a format with one %d).
	keyFormat string
	// lo and span give numbers: lo + draw % span, unscaled at the field's scale; bigLo and
	// bigSpan when they do not fit 64 bits.
	lo            int64
	span          uint64
	bigLo, bigSpn *big.Int
	pattern       *patternGen
	minLen        int
	maxLen        int
}

// genNode is one JSON object of the message: its keys in the contract's order of first
// use, each a field (field >= 0) or a nested object.
type genNode struct {
	keys     []string
	field    []int
	children []*genNode
}

// A contract malformation: what to break and the reason that must result.
type cvariant struct {
	want  Reason
	field int    // the field broken; -1 for the whole message
	raw   string // the field's JSON token instead of a valid one; "" = absent
	whole string // whole-message variants, as the notebook generator's
	// parent, for a nested field: the depth of the path prefix sent as a scalar.
	parent int
}

// NewContractGenerator returns a generator for contract c; it fails, naming the field, when
// a field's valid values cannot be generated (a key the generator cannot number, a pattern
// beyond the simple ones, bounds that leave no value).
func NewContractGenerator(c *Contract, seed int64, opts GeneratorOptions) (*ContractGenerator, error) {
	clamp := func(f float64) float64 { return min(max(f, 0), 1) }
	opts.Duplicates, opts.Malformed = clamp(opts.Duplicates), clamp(opts.Malformed)
	opts.FirstID = min(max(opts.FirstID, 0), MaxTransactionNumber)
	g := &ContractGenerator{c: c, messagePlan: messagePlan{seed: uint64(seed), opts: opts}, conflict: -1, tree: &genNode{}}
	var errs []error
	for i := range c.Fields {
		fg, err := newFieldGen(&c.Fields[i], c.Fields[i].Name == c.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("generate field %q: %w", c.Fields[i].Name, err))
		}
		g.gens = append(g.gens, fg)
		g.tree.add(c.Fields[i].Path, i)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, name := range c.Hash {
		i := c.FieldIndex(name)
		if i >= 0 && name != c.Key && g.gens[i].canChange() {
			g.conflict = i
			break
		}
	}
	g.extra = "note"
	for slices.Contains(g.tree.keys, g.extra) {
		g.extra += "_"
	}
	g.malformed = g.variants()
	g.toks = make([][]byte, len(c.Fields))
	g.buf = make([]byte, 0, 512)
	return g, nil
}

func (n *genNode) add(path []string, field int) {
	k := slices.Index(n.keys, path[0])
	if len(path) == 1 {
		n.keys, n.field, n.children = append(n.keys, path[0]), append(n.field, field), append(n.children, nil)
		return
	}
	if k < 0 {
		n.keys, n.field, n.children = append(n.keys, path[0]), append(n.field, -1), append(n.children, &genNode{})
		k = len(n.keys) - 1
	}
	n.children[k].add(path[1:], field)
}

// newFieldGen works out how to draw valid values of f.
func newFieldGen(f *Field, key bool) (fieldGen, error) {
	fg := fieldGen{f: f, key: key, minLen: f.MinLength, maxLen: f.MaxLength}
	switch f.Type.Kind {
	case TypeString:
		if key {
			if f.Enum != nil {
				return fg, errors.New("a key with an enum cannot be numbered (keys must differ)")
			}
			for _, format := range []string{"TXN%08d", "%08d", "ID%08d", "id%08d", "K%08d", "k%08d", "%d"} {
				s := fmt.Sprintf(format, 12345678)
				if fg.lengthOK(len(s)) && (f.Pattern == nil || f.Pattern.MatchString(s) && f.Pattern.MatchString(fmt.Sprintf(format, 0))) {
					fg.keyFormat = format
					return fg, nil
				}
			}
			return fg, fmt.Errorf("no numbering of keys (TXN%%08d, %%08d, ID%%08d, …) matches pattern %s and lengths %d..%d", f.Pattern, f.MinLength, f.MaxLength)
		}
		if f.Enum != nil {
			return fg, nil
		}
		if f.Pattern != nil {
			p, err := newPatternGen(f.Pattern.String())
			if err != nil {
				return fg, err
			}
			fg.pattern = p
			rng := splitMix{state: 1}
			for range 20 { // the pattern's values must pass the length checks too
				if s := p.generate(nil, &rng); !fg.lengthOK(len(s)) || !f.Pattern.Match(s) {
					return fg, fmt.Errorf("pattern %s: generated %q, which it or the lengths (%d..%d) refuse", f.Pattern, s, f.MinLength, f.MaxLength)
				}
			}
		}
		return fg, nil
	case TypeLong, TypeInt, TypeDecimal:
		return fg, fg.numberRange()
	case TypeBoolean, TypeDate, TypeTimestampTz, TypeTimestamp:
		if key {
			return fg, fmt.Errorf("a %s key cannot be numbered (keys must differ)", f.Type)
		}
		return fg, nil
	}
	return fg, fmt.Errorf("unknown type %s", f.Type)
}

func (fg *fieldGen) lengthOK(n int) bool {
	return n >= fg.minLen && (fg.maxLen == 0 || n <= fg.maxLen)
}

// numberRange sets the range numbers are drawn from (unscaled at the field's scale): the
// type's limits and the bounds, and within them 1 to 1,000,000 for integers and 10 to
// 10,000 for decimals, as the notebook's amounts (or a range of that width next to a bound
// that excludes it). A key takes the lowest allowed value plus its number.
func (fg *fieldGen) numberRange() error {
	f := fg.f
	scale := 0
	var typeLo, typeHi *big.Int
	switch f.Type.Kind {
	case TypeInt:
		typeLo, typeHi = big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)
	case TypeLong:
		typeLo, typeHi = big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	case TypeDecimal:
		scale = f.Type.Scale
		typeHi = new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(f.Type.Precision)), nil), big.NewInt(1))
		typeLo = new(big.Int).Neg(typeHi)
	}
	unit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	lo, hi := new(big.Int).Set(typeLo), new(big.Int).Set(typeHi)
	one := big.NewInt(1)
	var hasLo, hasHi bool
	for k, b := range f.bounds {
		if b == nil {
			continue
		}
		v := b.big()
		switch k {
		case 0:
			hasLo = true
			if v.Cmp(lo) > 0 {
				lo.Set(v)
			}
		case 1:
			hasHi = true
			if v.Cmp(hi) < 0 {
				hi.Set(v)
			}
		case 2:
			hasLo = true
			if v.Add(v, one); v.Cmp(lo) > 0 {
				lo.Set(v)
			}
		case 3:
			hasHi = true
			if v.Sub(v, one); v.Cmp(hi) < 0 {
				hi.Set(v)
			}
		}
	}
	if lo.Cmp(hi) > 0 {
		return fmt.Errorf("its type and bounds leave no value")
	}
	defLo, defHi := big.NewInt(1), big.NewInt(1_000_000)
	if f.Type.Kind == TypeDecimal {
		defLo, defHi = big.NewInt(10), big.NewInt(10_000)
	}
	defLo.Mul(defLo, unit)
	defHi.Mul(defHi, unit)
	width := new(big.Int).Sub(defHi, defLo)
	switch {
	case fg.key:
		// lowest allowed value, then counting: keep lo, hi as the type and bounds say
		if !hasLo {
			lo.Set(unit) // a key counts from 1
		}
	case defLo.Cmp(lo) >= 0 && defHi.Cmp(hi) <= 0:
		lo, hi = defLo, defHi
	case defHi.Cmp(lo) < 0 || hasLo && !hasHi:
		// everything lies above the default range: a range of its width from the bound
		hi = minBig(hi, new(big.Int).Add(lo, width))
	case defLo.Cmp(hi) > 0 || hasHi && !hasLo:
		lo = maxBig(lo, new(big.Int).Sub(hi, width))
	default:
		lo, hi = maxBig(lo, defLo), minBig(hi, defHi)
	}
	if fg.key {
		// The key is lo + its number: the whole numbering must fit.
		if top := new(big.Int).Add(lo, new(big.Int).Mul(big.NewInt(MaxTransactionNumber), unit)); top.Cmp(hi) > 0 {
			return fmt.Errorf("its bounds leave too few values to number keys")
		}
	}
	span := new(big.Int).Add(new(big.Int).Sub(hi, lo), one)
	if lo.IsInt64() && span.IsUint64() && new(big.Int).Add(lo, span).IsInt64() {
		fg.lo, fg.span = lo.Int64(), span.Uint64()
		return nil
	}
	fg.bigLo, fg.bigSpn = lo, span
	return nil
}

func minBig(a, b *big.Int) *big.Int {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}

func maxBig(a, b *big.Int) *big.Int {
	if a.Cmp(b) > 0 {
		return a
	}
	return b
}

// canChange reports whether the field has more than one valid value, so a conflicting
// duplicate can send another.
func (fg *fieldGen) canChange() bool {
	switch fg.f.Type.Kind {
	case TypeString:
		return fg.f.Enum == nil || len(fg.f.Enum) > 1
	case TypeLong, TypeInt, TypeDecimal:
		return fg.span > 1 || fg.bigSpn != nil
	}
	return false // booleans have two values, but a conflict on them is a flip: allowed below
}

// appendNumber appends the JSON token of the unscaled value lo + r % span: a JSON number
// for integers, a JSON string at the column's scale for decimals (exact, as the notebook
// sends amounts).
func (fg *fieldGen) appendNumber(b []byte, r uint64) []byte {
	if fg.bigLo == nil {
		var tmp [24]byte
		return fg.appendUnscaled(b, strconv.AppendInt(tmp[:0], fg.lo+int64(r%fg.span), 10))
	}
	v := new(big.Int).Mod(new(big.Int).SetUint64(r), fg.bigSpn)
	return fg.appendUnscaled(b, v.Add(v, fg.bigLo).Append(nil, 10))
}

// appendUnscaled appends the token of an unscaled value given by its decimal digits.
func (fg *fieldGen) appendUnscaled(b, digits []byte) []byte {
	if fg.f.Type.Kind != TypeDecimal {
		return append(b, digits...)
	}
	scale := fg.f.Type.Scale
	b = append(b, '"')
	if digits[0] == '-' {
		b = append(b, '-')
		digits = digits[1:]
	}
	if len(digits) <= scale { // below 1: 0.05
		b = append(b, '0')
		if scale > 0 {
			b = append(b, '.')
		}
		for range scale - len(digits) {
			b = append(b, '0')
		}
		return append(append(b, digits...), '"')
	}
	b = append(b, digits[:len(digits)-scale]...)
	if scale > 0 {
		b = append(b, '.')
		b = append(b, digits[len(digits)-scale:]...)
	}
	return append(b, '"')
}

// appendKey appends key number n's JSON token: counted from the lowest value allowed.
func (fg *fieldGen) appendKey(b []byte, n int) []byte {
	if fg.f.Type.Kind == TypeString {
		b = append(b, '"')
		b = fmt.Appendf(b, fg.keyFormat, n)
		return append(b, '"')
	}
	v := big.NewInt(int64(n))
	if fg.f.Type.Kind == TypeDecimal {
		v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(fg.f.Type.Scale)), nil))
	}
	if fg.bigLo != nil {
		v.Add(v, fg.bigLo)
	} else {
		v.Add(v, big.NewInt(fg.lo))
	}
	return fg.appendUnscaled(b, v.Append(nil, 10))
}

// appendValue appends a valid JSON token for the field, drawn from rng; now is the time of
// temporal fields.
func (fg *fieldGen) appendValue(b []byte, rng *splitMix, now time.Time) []byte {
	f := fg.f
	switch f.Type.Kind {
	case TypeString:
		b = append(b, '"')
		switch {
		case f.Enum != nil:
			b = appendJSONString(b, f.Enum[rng.intn(len(f.Enum))])
		case fg.pattern != nil:
			// Simple patterns always give a match; a draw that does not (an anchor in the
			// middle, say) is drawn again.
			var s []byte
			for range 16 {
				if s = fg.pattern.generate(s[:0], rng); f.Pattern.Match(s) && fg.lengthOK(len(s)) {
					break
				}
			}
			b = appendJSONString(b, string(s))
		default:
			lo, hi := max(fg.minLen, 6), max(fg.minLen, 14)
			if fg.maxLen > 0 {
				hi = min(hi, fg.maxLen)
				lo = min(lo, hi)
			}
			n := lo + rng.intn(hi-lo+1)
			for range n {
				b = append(b, alnum[rng.intn(len(alnum))])
			}
		}
		return append(b, '"')
	case TypeLong, TypeInt, TypeDecimal:
		return fg.appendNumber(b, rng.next())
	case TypeBoolean:
		if rng.intn(2) == 0 {
			return append(b, "false"...)
		}
		return append(b, "true"...)
	case TypeDate:
		return append(now.UTC().AppendFormat(append(b, '"'), "2006-01-02"), '"')
	case TypeTimestampTz:
		return append(now.UTC().AppendFormat(append(b, '"'), "2006-01-02T15:04:05.000000Z"), '"')
	case TypeTimestamp:
		return append(now.UTC().AppendFormat(append(b, '"'), "2006-01-02T15:04:05.000000"), '"')
	}
	return b
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// appendJSONString appends s escaped for the inside of a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x7f:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// Next returns the next message. now is the time of a fresh message's temporal fields.
func (g *ContractGenerator) Next(now time.Time) Message {
	i := g.next
	g.next++
	now = now.UTC().Truncate(time.Microsecond)
	g.times[i%dupWindow] = now
	m := Message{Index: i, Original: -1}
	rng := g.rng(i)
	var value []byte
	switch g.kind(i) {
	case kindFresh:
		value = g.build(i, now, nil)
	case kindDuplicate:
		orig := g.original(i, &rng)
		if orig < 0 {
			value = g.build(i, now, nil)
			break
		}
		m.Original = orig
		m.Want = ReasonDuplicate
		conflict := g.conflict >= 0 && rng.intn(5) == 0
		value = g.build(orig, g.times[orig%dupWindow], func() {
			if conflict {
				m.Want = ReasonConflictingDuplicate
				g.change(orig)
			}
		})
	case kindMalformed:
		value, m.Want = g.malformedMessage(i, now, &rng)
		if m.Want == ReasonTombstone {
			m.Key = g.keyOf()
			return m
		}
	}
	key := g.keyOf()
	out := make([]byte, len(key)+len(value))
	copy(out, key)
	copy(out[len(key):], value)
	m.Key, m.Value = out[:len(key):len(key)], out[len(key):]
	return m
}

// keyOf is the key's text in the message last built (the Kafka key).
func (g *ContractGenerator) keyOf() []byte {
	k := g.c.FieldIndex(g.c.Key)
	if k < 0 || g.toks[k] == nil {
		return nil
	}
	t := g.toks[k]
	if t[0] == '"' {
		t = t[1 : len(t)-1]
	}
	return t
}

// fill draws message i's field tokens into g.toks: the key by number, the others from
// message i's random stream; optional fields are absent one time in ten and null one time
// in twenty.
func (g *ContractGenerator) fill(i int, now time.Time) {
	rng := g.rng(i)
	rng.next() // the kind draw
	g.arena = g.arena[:0]
	at := make([][2]int, len(g.gens))
	for k := range g.gens {
		fg := &g.gens[k]
		start := len(g.arena)
		switch {
		case fg.key:
			g.arena = fg.appendKey(g.arena, (g.opts.FirstID+i)%(MaxTransactionNumber+1))
		case !fg.f.Required && rng.intn(10) == 0:
			at[k] = [2]int{-1, -1}
			continue
		case !fg.f.Required && rng.intn(20) == 0:
			g.arena = append(g.arena, "null"...)
		default:
			g.arena = fg.appendValue(g.arena, &rng, now)
		}
		at[k] = [2]int{start, len(g.arena)}
	}
	for k, a := range at {
		g.toks[k] = nil
		if a[0] >= 0 {
			g.toks[k] = g.arena[a[0]:a[1]:a[1]]
		}
	}
}

// build writes message i as of now; edit, when not nil, may change g.toks first.
func (g *ContractGenerator) build(i int, now time.Time, edit func()) []byte {
	g.fill(i, now)
	if edit != nil {
		edit()
	}
	rng := g.rng(i)
	rng.next()
	extra := g.c.UnknownFields != UnknownReject && rng.intn(10) == 0
	g.buf = g.writeObject(g.buf[:0], g.tree, extra)
	return g.buf
}

// change gives the conflict column of message orig (filled in g.toks) another valid value.
func (g *ContractGenerator) change(orig int) {
	fg := &g.gens[g.conflict]
	old := string(g.toks[g.conflict])
	rng := g.rng(orig)
	rng.state ^= 0x5bd1e995
	for range 32 {
		t := fg.appendValue(nil, &rng, g.times[orig%dupWindow])
		if string(t) != old && string(t) != "null" {
			g.toks[g.conflict] = t
			return
		}
	}
	// An optional conflict column may have been absent or null, or the draws kept
	// repeating it: the first value that differs, by counting.
	for r := uint64(0); ; r++ {
		var t []byte
		if fg.f.Enum != nil {
			t = append(appendJSONString([]byte{'"'}, fg.f.Enum[int(r)%len(fg.f.Enum)]), '"')
		} else if fg.f.Type.Kind == TypeString {
			t = append(append([]byte{'"'}, old...), "x\""...)
			if fg.pattern == nil && fg.lengthOK(len(t)-2) {
				g.toks[g.conflict] = t
				return
			}
			t = fg.appendValue(nil, &splitMix{state: r}, time.Time{})
		} else {
			t = fg.appendNumber(nil, r)
		}
		if string(t) != old {
			g.toks[g.conflict] = t
			return
		}
	}
}

// writeObject writes node n of the message from g.toks; an object with nothing in it is
// left out (all its fields are optional and absent).
func (g *ContractGenerator) writeObject(b []byte, n *genNode, extra bool) []byte {
	b = append(b, '{')
	first := true
	for k, key := range n.keys {
		var tok []byte
		var child []byte
		if f := n.field[k]; f >= 0 {
			if tok = g.toks[f]; tok == nil {
				continue
			}
		} else {
			child = g.writeObject(nil, n.children[k], false)
			if len(child) == 2 {
				continue
			}
			tok = child
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, '"')
		b = appendJSONString(b, key)
		b = append(b, `": `...)
		b = append(b, tok...)
	}
	if extra {
		if !first {
			b = append(b, ", "...)
		}
		b = append(b, `"`+g.extra+`": "sent by the generator"`...)
	}
	return append(b, '}')
}

// variants lists the ways to break a message under c, each with its reason.
func (g *ContractGenerator) variants() []cvariant {
	vs := []cvariant{
		{want: ReasonMalformedJSON, field: -1, whole: "truncated"},
		{want: ReasonMalformedJSON, field: -1, whole: "trailing"},
		{want: ReasonMalformedJSON, field: -1, whole: "array"},
		{want: ReasonMalformedJSON, field: -1, whole: "empty"},
		{want: ReasonMalformedJSON, field: -1, whole: "duplicate key"},
		{want: ReasonTombstone, field: -1, whole: "tombstone"},
	}
	if g.c.UnknownFields == UnknownReject {
		vs = append(vs, cvariant{want: ReasonUnknownField, field: -1, whole: "unknown"})
	}
	for i := range g.gens {
		fg := &g.gens[i]
		f := fg.f
		if f.Required {
			vs = append(vs, cvariant{want: ReasonMissingField, field: i}, cvariant{want: ReasonMissingField, field: i, raw: "null"})
		}
		for depth := 1; depth < len(f.Path); depth++ {
			vs = append(vs, cvariant{want: ReasonBadField, field: i, parent: depth, raw: "7"})
		}
		switch f.Type.Kind {
		case TypeString:
			vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: "42"})
			if f.Enum != nil {
				if s, ok := fg.stringRefused(func(s string) bool { return !slices.Contains(f.Enum, s) }); ok {
					vs = append(vs, cvariant{want: ReasonNotInEnum, field: i, raw: s})
				}
			} else if f.Pattern != nil {
				if s, ok := fg.stringRefused(func(s string) bool { return !f.Pattern.MatchString(s) }); ok {
					vs = append(vs, cvariant{want: ReasonPatternMismatch, field: i, raw: s})
				}
			}
			if f.MaxLength > 0 && f.MaxLength < 1<<16 {
				vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: `"` + strings.Repeat("x", f.MaxLength+1) + `"`})
			}
			if g.c.strict[i] && fg.lengthOK(4) {
				vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: `"ab\u0007c"`})
			}
		case TypeLong, TypeInt, TypeDecimal:
			vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: "true"})
			switch f.Type.Kind {
			case TypeInt:
				vs = append(vs, cvariant{want: ReasonOutOfRange, field: i, raw: "2147483648"})
			case TypeLong:
				vs = append(vs, cvariant{want: ReasonOutOfRange, field: i, raw: "9223372036854775808"})
				vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: "1.5"})
			case TypeDecimal:
				s := f.Type.Scale
				vs = append(vs, cvariant{want: ReasonOutOfRange, field: i, raw: `"1` + strings.Repeat("0", f.Type.Precision-s) + `"`})
				vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: `"1e3"`})
				if s < 30 {
					vs = append(vs, cvariant{want: ReasonBadScale, field: i, whole: "scale"})
				}
			}
			for k, b := range f.bounds {
				if b == nil || fg.key {
					continue
				}
				v := b.big()
				switch k {
				case 0:
					v.Sub(v, big.NewInt(1))
				case 1:
					v.Add(v, big.NewInt(1))
				}
				if tok := g.unscaledText(fg, v); tok != "" {
					vs = append(vs, cvariant{want: ReasonOutOfRange, field: i, raw: tok})
				}
			}
		case TypeBoolean:
			vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: `"yes"`})
		case TypeDate:
			vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: "20250116"},
				cvariant{want: ReasonBadDate, field: i, raw: `"2025-02-30"`})
		case TypeTimestampTz, TypeTimestamp:
			vs = append(vs, cvariant{want: ReasonBadField, field: i, raw: "1737021600"},
				cvariant{want: ReasonBadTimestamp, field: i, raw: `"2025-01-16T24:00:00"`},
				cvariant{want: ReasonBadTimestamp, field: i, raw: `"yesterday"`})
			if f.Type.Kind == TypeTimestamp {
				vs = append(vs, cvariant{want: ReasonBadTimestamp, field: i, raw: `"2025-01-16T10:00:00Z"`})
			}
		}
	}
	return vs
}

// unscaledText is the JSON token of unscaled value v of a number field, "" when the type
// cannot hold it (then the type's own limit is the out-of-range case).
func (g *ContractGenerator) unscaledText(fg *fieldGen, v *big.Int) string {
	switch fg.f.Type.Kind {
	case TypeInt:
		if !v.IsInt64() || v.Int64() < math.MinInt32 || v.Int64() > math.MaxInt32 {
			return ""
		}
	case TypeLong:
		if !v.IsInt64() {
			return ""
		}
	}
	save := *fg
	fg.bigLo, fg.bigSpn = v, big.NewInt(1)
	t := string(fg.appendNumber(nil, 0))
	*fg = save
	return t
}

// stringRefused finds a string of valid length, without control characters, that refused
// says the field's check refuses; as a JSON token.
func (fg *fieldGen) stringRefused(refused func(string) bool) (string, bool) {
	cands := []string{"~", "zz", "~~~~", "0", "a", "ZZZZZZ", "not-valid", "x0x0x0x0x0x0"}
	if fg.f.Enum != nil {
		cands = append([]string{fg.f.Enum[0] + "x", strings.ToLower(fg.f.Enum[0])}, cands...)
	}
	for n := fg.minLen; n <= fg.minLen+2; n++ {
		cands = append(cands, strings.Repeat("~", max(n, 1)))
	}
	for _, s := range cands {
		if fg.lengthOK(len(s)) && refused(s) {
			return string(append(appendJSONString([]byte{'"'}, s), '"')), true
		}
	}
	return "", false
}

// malformedMessage builds message i broken by one variant.
func (g *ContractGenerator) malformedMessage(i int, now time.Time, rng *splitMix) ([]byte, Reason) {
	v := g.malformed[rng.intn(len(g.malformed))]
	g.fill(i, now)
	// The other fields are all present, so that only the broken one can be refused.
	for k := range g.gens {
		if g.toks[k] == nil || string(g.toks[k]) == "null" {
			g.toks[k] = g.gens[k].appendValue(nil, rng, now)
		}
	}
	b := g.buf[:0]
	switch v.whole {
	case "tombstone":
		return nil, v.want
	case "truncated":
		b = g.writeObject(b, g.tree, false)
		return b[:rng.intn(len(b))], v.want
	case "trailing":
		return append(g.writeObject(b, g.tree, false), '}'), v.want
	case "array":
		b = g.writeObject(append(b, '['), g.tree, false)
		return append(b, ']'), v.want
	case "empty":
		return b, v.want
	case "duplicate key":
		b = g.writeObject(b, g.tree, false)
		return append(b[:len(b)-1], `, "`+g.tree.keys[0]+`": 1}`...), v.want
	case "unknown":
		return g.writeObject(b, g.tree, true), v.want
	case "scale":
		// One fractional digit more than the scale (not a zero: it is never rounded).
		t := slices.Clip(g.toks[v.field][:len(g.toks[v.field])-1])
		if g.c.Fields[v.field].Type.Scale == 0 {
			t = append(t, '.')
		}
		g.toks[v.field] = append(t, '7', '"')
		return g.writeObject(b, g.tree, false), v.want
	}
	if v.parent > 0 {
		// A prefix of the path sent as a scalar: the field below it cannot be read.
		return g.writeScalarAt(b, g.c.Fields[v.field].Path[:v.parent], v.raw), v.want
	}
	if v.raw == "" {
		g.toks[v.field] = nil
	} else {
		g.toks[v.field] = []byte(v.raw)
	}
	return g.writeObject(b, g.tree, false), v.want
}

// writeScalarAt writes the message with the object at path replaced by the token raw.
func (g *ContractGenerator) writeScalarAt(b []byte, path []string, raw string) []byte {
	// Mark the object's fields absent, write, then put the scalar where the object was.
	n := g.tree
	for _, p := range path[:len(path)-1] {
		n = n.children[slices.Index(n.keys, p)]
	}
	k := slices.Index(n.keys, path[len(path)-1])
	saved := n.children[k]
	n.children[k], n.field[k] = nil, len(g.toks)
	g.toks = append(g.toks, []byte(raw))
	b = g.writeObject(b, g.tree, false)
	g.toks = g.toks[:len(g.toks)-1]
	n.children[k], n.field[k] = saved, -1
	return b
}

// patternGen generates strings matching a regular expression of the simple kinds contract
// patterns are (literals, classes, repetition, alternation, anchors).
type patternGen struct {
	re *syntax.Regexp
}

func newPatternGen(pattern string) (*patternGen, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	re = re.Simplify()
	if err := checkGenerable(re); err != nil {
		return nil, fmt.Errorf("pattern %s: %w: give the field an enum, or produce your own messages", pattern, err)
	}
	return &patternGen{re: re}, nil
}

func checkGenerable(re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpLiteral, syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar,
		syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText, syntax.OpEmptyMatch:
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat, syntax.OpConcat, syntax.OpAlternate:
		for _, s := range re.Sub {
			if err := checkGenerable(s); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s is beyond the generator's simple patterns", re)
	}
	return nil
}

// generate appends a string matching the pattern (anchored or not: the string is the match
// alone, so an unanchored pattern matches it too).
func (p *patternGen) generate(b []byte, rng *splitMix) []byte {
	return genRegexp(b, p.re, rng)
}

func genRegexp(b []byte, re *syntax.Regexp, rng *splitMix) []byte {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && rng.intn(2) == 0 {
				r = []rune(strings.ToUpper(string(r)))[0]
			}
			b = append(b, string(r)...)
		}
	case syntax.OpCharClass:
		// Prefer printable ASCII in the class, so values read well and stay short.
		var total int
		for k := 0; k < len(re.Rune); k += 2 {
			lo, hi := max(re.Rune[k], 0x21), min(re.Rune[k+1], 0x7e)
			if lo <= hi {
				total += int(hi - lo + 1)
			}
		}
		if total == 0 {
			b = append(b, string(re.Rune[0])...)
			break
		}
		n := rng.intn(total)
		for k := 0; k < len(re.Rune); k += 2 {
			lo, hi := max(re.Rune[k], 0x21), min(re.Rune[k+1], 0x7e)
			if lo > hi {
				continue
			}
			if n < int(hi-lo+1) {
				b = append(b, string(lo+rune(n))...)
				break
			}
			n -= int(hi - lo + 1)
		}
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		b = append(b, alnum[rng.intn(len(alnum))])
	case syntax.OpCapture:
		b = genRegexp(b, re.Sub[0], rng)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			b = genRegexp(b, s, rng)
		}
	case syntax.OpAlternate:
		b = genRegexp(b, re.Sub[rng.intn(len(re.Sub))], rng)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := 0, 4
		switch re.Op {
		case syntax.OpPlus:
			lo = 1
		case syntax.OpQuest:
			hi = 1
		case syntax.OpRepeat:
			lo = re.Min
			hi = re.Max
			if hi < 0 {
				hi = lo + 4
			}
		}
		for range lo + rng.intn(hi-lo+1) {
			b = genRegexp(b, re.Sub[0], rng)
		}
	}
	return b
}
