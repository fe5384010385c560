package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// maxPathDepth bounds how deep a contract's paths reach (the decoder recurses that deep).
const maxPathDepth = 16

// pathNode is one object level of a contract's paths: the keys it names, each a field (leaf)
// or a deeper object.
type pathNode struct {
	depth int
	id    int // index among the contract's nodes (cdecoder.entered)
	keys  []string
	// ents[i] is what match compares keys[i] with.
	ents   []keyEntry
	kids   []*pathNode // nil entry: keys[i] is a leaf, field leaf[i]
	leaf   []int
	fields []int // every field at or below this node, for a whole subtree missing at once
}

// keyEntry is a key as match compares it: word is its first eight bytes, little-endian,
// with the quote that closes it when the key is shorter, and mask selects them, so that one
// load and compare matches a short key; plain says the key is written in JSON as itself (no
// quote, backslash or control byte). A key that is not plain has a word that nothing
// matches.
type keyEntry struct {
	word, mask uint64
	key        string
	plain      bool
}

// match finds the key at v[i] == '"' among n's plain keys by comparing the message's bytes
// with each, starting at key hint (messages mostly send keys in the contract's order), and
// returns its index and the index after its closing quote; -1 when none matches (an
// unknown key, or one spelled with escapes: scanString's turn).
func (n *pathNode) match(v []byte, i, hint int) (int, int) {
	rest := v[i+1:]
	ents := n.ents
	if len(rest) >= 8 {
		w := binary.LittleEndian.Uint64(rest)
		k := hint
		for range ents {
			if k >= len(ents) {
				k = 0
			}
			e := &ents[k]
			if w&e.mask == e.word {
				key := e.key
				if len(key) < 8 || len(rest) > len(key) && rest[len(key)] == '"' && string(rest[8:len(key)]) == key[8:] {
					return k, i + 2 + len(key)
				}
			}
			k++
		}
		return -1, 0
	}
	for j := range ents {
		k := hint + j
		if k >= len(ents) {
			k -= len(ents)
		}
		e := &ents[k]
		if key := e.key; e.plain && len(rest) > len(key) && rest[len(key)] == '"' && string(rest[:len(key)]) == key {
			return k, i + 2 + len(key)
		}
	}
	return -1, 0
}

// keyWord returns the word and mask match compares the first eight bytes of a message's key
// with: the key's bytes, then its closing quote when it is shorter than eight.
func keyWord(key string) (word, mask uint64) {
	var b [8]byte
	n := copy(b[:], key)
	if n < 8 {
		b[n] = '"'
		n++
	}
	for j := range n {
		mask |= 0xff << (8 * j)
	}
	return binary.LittleEndian.Uint64(b[:]), mask
}

func (n *pathNode) child(key []byte) int {
	for i, k := range n.keys {
		if k == string(key) {
			return i
		}
	}
	return -1
}

// widest is the largest number of keys any level names.
func (n *pathNode) widest() int {
	w := len(n.keys)
	for _, k := range n.kids {
		if k != nil {
			w = max(w, k.widest())
		}
	}
	return w
}

// compile builds the path tree of c's fields.
func (c *Contract) compile() {
	root := &pathNode{}
	nodes := 1
	c.pathNodes = make([][]int, len(c.Fields))
	for fi := range c.Fields {
		n := root
		path := c.Fields[fi].Path
		for d, seg := range path {
			c.pathNodes[fi] = append(c.pathNodes[fi], n.id)
			n.fields = append(n.fields, fi)
			i := n.child([]byte(seg))
			if i < 0 {
				n.keys = append(n.keys, seg)
				n.kids = append(n.kids, nil)
				n.leaf = append(n.leaf, -1)
				// match compares a plain key with the message's bytes, in place of scanString
				// (and its UTF-8 check): only a valid UTF-8 key can be plain.
				plain := utf8.ValidString(seg) && !strings.ContainsFunc(seg, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 })
				e := keyEntry{word: 1, key: seg, plain: plain} // mask 0: no word matches
				if plain {
					e.word, e.mask = keyWord(seg)
				}
				n.ents = append(n.ents, e)
				i = len(n.keys) - 1
			}
			if d == len(path)-1 {
				n.leaf[i] = fi
				break
			}
			if n.kids[i] == nil {
				n.kids[i] = &pathNode{depth: d + 1, id: nodes}
				nodes++
			}
			n = n.kids[i]
		}
	}
	c.root, c.nodes = root, nodes
	c.keep, c.rejectUnknown = c.UnknownFields == UnknownKeep, c.UnknownFields == UnknownReject
	c.keyIndex = c.FieldIndex(c.Key)
	for _, h := range c.Hash {
		c.hashIndex = append(c.hashIndex, c.FieldIndex(h))
	}
	c.timeIndex = c.FieldIndex(c.Report.Time)
	c.strict = make([]bool, len(c.Fields))
	for i := range c.Fields {
		f := &c.Fields[i]
		c.strict[i] = f.Name == c.Key || slices.Contains(c.Hash, f.Name)
		if f.Pattern != nil {
			f.matcher = compilePattern(f.Pattern.String())
		}
		f.leaf, f.want = len(f.Path)-1, jsonKindFor(f.Type.Kind)
		f.checked = c.strict[i] || f.MinLength > 0 || f.MaxLength > 0 || f.Enum != nil || f.Pattern != nil
		if f.Type.Kind == TypeString {
			c.stringFields = append(c.stringFields, i)
		}
	}
}

// fieldSpan is where a field's value lies in a message, or, when the field is not there, how
// far down its path the message went (at: the path index of the value found, which is the
// leaf's for a present field; kind null there, or a non-object where an object was wanted).
// For an absent field at is not set while scanning: cdecoder.absentAt finds it.
type fieldSpan struct {
	span
	at int32
	// printable: a string of printable ASCII without escapes (printableEnd), which has no
	// control character to look for.
	printable bool
	// canonical: a decimal sent as its canonical string, without escapes (build sets it).
	canonical bool
}

// cdecoder is the state of one decode by a custom contract.
type cdecoder struct {
	c       *Contract
	value   []byte
	f       []fieldSpan
	entered []bool // by pathNode.id: the message has that object
	extras  []byte // unknown_fields: keep
	unknown string // unknown_fields: reject, the path of the first unknown key
	path    [maxPathDepth]string
	buf     []byte // a row's string too long for a block, before its conversion
	// block holds the strings of recent rows, and after them room for more: a row's string
	// is written there (rowString) rather than copied to an allocation of its own.
	block   []byte
	text    []byte // an escaped value's text, unescaped to be checked or parsed
	hashIn  []byte // the hash input
	scratch [64]byte

	// The columns of accepted rows are cut from blocks of slabRows rows, so that a row
	// costs one allocation (its strings) rather than three; a rejected message gives its
	// slot back.
	cols  []Columns
	ncols int // cols[:ncols] are taken
	vals  []Value
	nvals int // vals[:nvals] are taken
}

// stringBlock is the size of a block of rows' strings (cdecoder.block): about 80 rows of
// the example contract, so that one string kept alive keeps little else.
const stringBlock = 8 << 10

// slabRows is how many rows' columns one allocation holds.
const slabRows = 64

// slot returns the values of the next row, without taking them (take does).
func (d *cdecoder) slot(n int) []Value {
	if len(d.vals)-d.nvals < n {
		d.vals, d.nvals = make([]Value, slabRows*n), 0
	}
	// Not cleared: decode writes every value of an accepted row.
	return d.vals[d.nvals : d.nvals+n : d.nvals+n]
}

// take takes the slot's values for a row and returns its Columns, zero but for them. (The
// slabs are used by index, not resliced: a slice stored in d costs a write barrier while
// the garbage collector runs, as it mostly does under this allocation rate.)
func (d *cdecoder) take(n int) *Columns {
	if d.ncols == len(d.cols) {
		d.cols, d.ncols = make([]Columns, slabRows), 0
	}
	cols := &d.cols[d.ncols] // zero: each is taken once
	d.ncols++
	cols.Values = d.vals[d.nvals : d.nvals+n : d.nvals+n]
	d.nvals += n
	return cols
}

// newDecoder returns a working state for decoding by c.
func (c *Contract) newDecoder() *cdecoder {
	n := len(c.Fields)
	return &cdecoder{c: c, f: make([]fieldSpan, n), entered: make([]bool, c.nodes)}
}

// decode is Rules.Decode for a custom contract, after the size and UTF-8 checks: it sets
// *row (zero on entry) or returns the reject. (Through a pointer: a Row is 200 bytes, and each
// level returning one would copy it.)
func (c *Contract) decode(value []byte, row *Row) *Reject {
	// The scratch state comes from a pool: on the stack it would escape (the scanner's
	// appends), and a decode per message must not cost four allocations of it.
	d, _ := c.scratch.Get().(*cdecoder)
	if d == nil {
		d = c.newDecoder()
	}
	// No defers here: the function's many returns would make them the runtime's, not
	// open-coded, and they cost more than the lines they save.
	rej := d.decode(value, row)
	d.value = nil // the pool must not keep the message alive
	c.scratch.Put(d)
	return rej
}

// decode is Contract.decode on a scratch state.
func (d *cdecoder) decode(value []byte, row *Row) *Reject {
	d.value = value
	clear(d.f)
	clear(d.entered)
	d.extras, d.unknown = d.extras[:0], ""
	if err := d.scan(); err != nil {
		// A message that is not UTF-8 says so, wherever its first error lies (as the
		// notebook's decoder, which checks UTF-8 before JSON); one that scans is UTF-8.
		if !utf8.Valid(d.value) {
			return notUTF8(d.value)
		}
		return d.reject(ReasonMalformedJSON, "message is not acceptable JSON: "+err.Error())
	}
	if d.unknown != "" {
		return d.reject(ReasonUnknownField, fmt.Sprintf("key %s is not a field of the contract (unknown_fields: reject)", strconv.Quote(d.unknown)))
	}
	return d.build(row)
}

// build makes *row of a scanned message: each field converted and checked, in field
// order, then the row's one string and the hash.
func (d *cdecoder) build(row *Row) *Reject {
	c, value := d.c, d.value

	values := d.slot(len(c.Fields))
	for i := range c.Fields {
		f := &c.Fields[i]
		fs := &d.f[i]
		if fs.kind != f.want || int(fs.at) != f.leaf { // else present, of the type wanted
			if int(fs.at) < f.leaf || fs.kind == kindAbsent || fs.kind == kindNull {
				if fs.kind != kindAbsent && fs.kind != kindNull {
					return d.reject(ReasonBadField, fmt.Sprintf("field %s: %s is a JSON %s, want an object", d.name(i), strconv.Quote(strings.Join(f.Path[:fs.at+1], ".")), fs.kind))
				}
				if !f.Required {
					values[i] = Value{}
					continue
				}
				return d.reject(ReasonMissingField, d.missing(i))
			}
			if want := f.want; fs.kind != want && !(f.Type.Kind == TypeDecimal && fs.kind == kindNumber) {
				return d.reject(ReasonBadField, fmt.Sprintf("field %s must be a JSON %s (type %s), got %s", d.name(i), want, f.Type, fs.kind))
			}
		}
		raw := value[fs.start:fs.end]
		switch f.Type.Kind {
		case TypeString:
			// Checked here, copied to the row's string by rowString.
			if f.checked {
				s := raw
				if fs.esc {
					d.text = unescape(d.text[:0], raw)
					s = d.text
				}
				if reason, msg := d.checkString(i, s, fs.printable); reason != "" {
					return d.reject(reason, msg)
				}
			}
			values[i] = Value{Valid: true}
		case TypeLong, TypeInt:
			n, ok := shortInt(raw)
			var err error
			if !ok {
				n, err = strconv.ParseInt(string(raw), 10, 64) // no allocation: the conversion does not escape
			}
			switch {
			case err != nil && !isIntegerText(raw):
				return d.reject(ReasonBadField, fmt.Sprintf("field %s: %s is not an integer", d.name(i), quoteClip(raw)))
			case err != nil || f.Type.Kind == TypeInt && (n < math.MinInt32 || n > math.MaxInt32):
				return d.reject(ReasonOutOfRange, fmt.Sprintf("field %s: %s does not fit in type %s", d.name(i), quoteClip(raw), f.Type))
			}
			v := dec128{lo: uint64(n)}
			if n < 0 {
				v.hi = -1
			}
			if f.hasBounds && !f.inBounds(v) {
				return d.reject(d.checkBounds(i, v, raw))
			}
			values[i] = Value{Valid: true, Int: n}
		case TypeBoolean:
			values[i] = Value{Valid: true}
			if raw[0] == 't' {
				values[i].Int = 1
			}
		case TypeDecimal:
			text := raw
			if fs.kind == kindString && fs.esc {
				d.text = unescape(d.text[:0], raw)
				text = d.text
			}
			v, frac, ok := parseDecimalText(text)
			if !ok {
				if isDecimalShape(text) {
					return d.reject(ReasonOutOfRange, fmt.Sprintf("field %s: %s does not fit in type %s", d.name(i), quoteClip(text), f.Type))
				}
				return d.reject(ReasonBadField, fmt.Sprintf("field %s: %s is not a plain decimal (digits, optionally '.' and digits; no exponent)", d.name(i), quoteClip(text)))
			}
			if frac > f.Type.Scale {
				return d.reject(ReasonBadScale, fmt.Sprintf("field %s: %s has more than %d fractional digits (scale of %s; it is never rounded)", d.name(i), quoteClip(text), f.Type.Scale, f.Type))
			}
			// Sent as its canonical string ("10.50" for a scale of 2), the text is what
			// the hash is made of (rowString).
			fs.canonical = !fs.esc && isCanonicalDecimal(text, v, frac, f.Type.Scale)
			v, ok = rescale(v, f.Type.Scale-frac)
			if !ok || !fitsPrecision(v, f.Type.Precision) {
				return d.reject(ReasonOutOfRange, fmt.Sprintf("field %s: %s does not fit in type %s (at most %d integer digits)", d.name(i), quoteClip(text), f.Type, f.Type.Precision-f.Type.Scale))
			}
			if f.hasBounds && !f.inBounds(v) {
				return d.reject(d.checkBounds(i, v, text))
			}
			values[i] = Value{Valid: true, Int: int64(v.lo), Hi: v.hi}
		case TypeDate:
			text := raw
			if fs.esc {
				d.text = unescape(d.text[:0], raw)
				text = d.text
			}
			days, ok := parseDate(text)
			if !ok {
				return d.reject(ReasonBadDate, fmt.Sprintf("field %s: %s is not a date YYYY-MM-DD", d.name(i), quoteClip(text)))
			}
			values[i] = Value{Valid: true, Int: days}
		case TypeTimestampTz, TypeTimestamp:
			text := raw
			if fs.esc {
				d.text = unescape(d.text[:0], raw)
				text = d.text
			}
			micros, msg := parseTimestampMicros(text)
			if msg != "" {
				return d.reject(ReasonBadTimestamp, fmt.Sprintf("field %s: %s", d.name(i), msg))
			}
			if f.Type.Kind == TypeTimestamp && hasZone(text) {
				return d.reject(ReasonBadTimestamp, fmt.Sprintf("field %s: %s has a zone, but the column is a timestamp without zone (use timestamptz)", d.name(i), quoteClip(text)))
			}
			values[i] = Value{Valid: true, Int: micros}
		}
	}
	d.rowString(values, row)
	return nil
}

// rowString makes the row of a message whose fields all passed (values set, string
// columns not yet placed): its one string holds the string columns, the key's canonical text
// when the key is not a string, and the hex hash of the hash input, which is gathered apart
// (d.hashIn) so that the row does not keep it.
func (d *cdecoder) rowString(values []Value, row *Row) {
	c, value := d.c, d.value
	// The row's string is written in place in the room of the current block (d.block),
	// when it surely fits there: need bounds it, as a string never grows by unescaping, a
	// numeric key's text has at most 20 bytes and the hash 64.
	need := len(value) + 20 + 2*sha256.Size
	var buf []byte
	inBlock := need <= stringBlock/4
	if inBlock {
		if cap(d.block)-len(d.block) < need {
			d.block = make([]byte, 0, stringBlock)
		}
		buf = d.block[len(d.block):len(d.block)]
	} else {
		buf = d.buf[:0]
	}
	for _, i := range c.stringFields {
		if values[i].Valid {
			start := len(buf)
			buf = appendText(buf, value, &d.f[i])
			values[i].SetStr(start, len(buf)) // buf's offsets are the row string's
		}
	}
	keyStart := len(buf)
	kf := &c.Fields[c.keyIndex]
	if kf.Type.Kind != TypeString {
		buf = appendCanonical(buf, kf.Type, values[c.keyIndex])
	}
	keyEnd := len(buf)

	in := d.hashIn[:0]
	for j, hi := range c.hashIndex {
		if j > 0 {
			in = append(in, HashSeparator)
		}
		hf := &c.Fields[hi]
		fs := &d.f[hi]
		switch {
		case hf.Type.Kind == TypeString:
			v := values[hi]
			in = append(in, buf[v.at:int64(v.at)+v.Int]...)
		case hf.HashAsSent:
			// The text as sent: the hash is made of it.
			in = appendText(in, value, fs)
		case hf.Type.Kind == TypeDecimal && fs.canonical:
			in = append(in, value[fs.start:fs.end]...)
		default:
			in = appendCanonical(in, hf.Type, values[hi])
		}
	}
	d.hashIn = in
	sum := sha256.Sum256(in)
	hashStart := len(buf)
	buf = appendHashHex(buf, &sum)
	var all string
	if inBlock && len(d.block)+len(buf) <= cap(d.block) {
		// The bytes are in the block, which is never written there again: the string
		// can be them.
		all = unsafe.String(unsafe.SliceData(buf), len(buf))
		d.block = d.block[:len(d.block)+len(buf)]
	} else {
		all = string(buf)
		d.buf = buf[:0] // keep what it grew to
	}
	cols := d.take(len(c.Fields))
	cols.Strings = all
	*row = Row{Custom: cols, TransactionID: all[keyStart:keyEnd], TransactionHash: all[hashStart:]}
	if kf.Type.Kind == TypeString {
		row.TransactionID = cols.Str(c.keyIndex)
	}
	if c.timeIndex >= 0 && values[c.timeIndex].Valid {
		if tf := &c.Fields[c.timeIndex]; tf.Type.Kind == TypeDate {
			row.EventTime = time.Unix(values[c.timeIndex].Int*86400, 0).UTC()
		} else {
			row.EventTime = time.UnixMicro(values[c.timeIndex].Int).UTC()
		}
	}
	if len(d.extras) > 0 {
		cols.Extras = string(d.extras)
	}
}

// appendText appends the text of the JSON string (or number) at fs, unescaped.
func appendText(dst, value []byte, fs *fieldSpan) []byte {
	if fs.esc {
		return unescape(dst, value[fs.start:fs.end])
	}
	return append(dst, value[fs.start:fs.end]...)
}

// isCanonicalDecimal reports whether s, a decimal text that parseDecimalText read as v with
// frac fractional digits, is what appendDecimal writes for its value at scale: no '+',
// exactly scale fractional digits, no leading zero, no "-0". (From what the parse found, in
// place of a second pass over the text.)
func isCanonicalDecimal(s []byte, v dec128, frac, scale int) bool {
	if frac != scale || s[0] == '+' {
		return false
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	intDigits := len(s)
	if frac > 0 {
		intDigits -= frac + 1
	}
	return (s[0] != '0' || intDigits == 1) && !(neg && v.hi == 0 && v.lo == 0)
}

// jsonKindFor is the JSON type a column type is sent as (decimals may also be numbers).
func jsonKindFor(k TypeKind) jsonKind {
	switch k {
	case TypeLong, TypeInt:
		return kindNumber
	case TypeBoolean:
		return kindBool
	}
	return kindString
}

// name names field i for a message: its column name and, when it differs, its path.
func (d *cdecoder) name(i int) string {
	f := &d.c.Fields[i]
	p := f.PathString()
	if p == f.Name {
		return strconv.Quote(f.Name)
	}
	return strconv.Quote(f.Name) + " (path " + p + ")"
}

// missing says where the path of required field i stopped.
func (d *cdecoder) missing(i int) string {
	f := &d.c.Fields[i]
	fs := d.f[i]
	if fs.kind == kindAbsent {
		fs.at = int32(d.absentAt(i))
	}
	at := strings.Join(f.Path[:fs.at+1], ".")
	what := "absent"
	if fs.kind == kindNull {
		what = "null"
	}
	if int(fs.at) == len(f.Path)-1 {
		return fmt.Sprintf("missing required field %s: %s is %s", d.name(i), strconv.Quote(at), what)
	}
	return fmt.Sprintf("missing required field %s: object %s is %s", d.name(i), strconv.Quote(at), what)
}

// absentAt is the at of absent field i: the depth of the deepest object of its path that the
// message has (the root's is 0).
func (d *cdecoder) absentAt(i int) int {
	ids := d.c.pathNodes[i]
	for at := len(ids) - 1; at > 0; at-- {
		if d.entered[ids[at]] {
			return at
		}
	}
	return 0
}

// checkString checks string field i's value s (printable: s is printable ASCII).
func (d *cdecoder) checkString(i int, s []byte, printable bool) (Reason, string) {
	f := &d.c.Fields[i]
	switch {
	case f.MinLength > 0 && len(s) < f.MinLength:
		if len(s) == 0 {
			return ReasonBadField, fmt.Sprintf("field %s is empty", d.name(i))
		}
		return ReasonBadField, fmt.Sprintf("field %s: %s is shorter than min_length %d bytes", d.name(i), quoteClip(s), f.MinLength)
	case f.MaxLength > 0 && len(s) > f.MaxLength:
		return ReasonBadField, fmt.Sprintf("field %s is longer than max_length %d bytes", d.name(i), f.MaxLength)
	}
	if d.c.strict[i] && !printable {
		// The key and the hash columns identify a transaction: no invisible characters.
		if at, r := controlChar(s); at >= 0 {
			return ReasonBadField, fmt.Sprintf("field %s has control character %U at byte %d", d.name(i), r, at)
		}
	}
	if f.Enum != nil && !f.inEnum(s) {
		return ReasonNotInEnum, fmt.Sprintf("field %s: %s is not one of enum %q", d.name(i), quoteClip(s), f.Enum)
	}
	if f.Pattern != nil && !f.matchPattern(s) {
		return ReasonPatternMismatch, fmt.Sprintf("field %s: %s does not match pattern %s", d.name(i), quoteClip(s), f.Pattern)
	}
	return "", ""
}

// inEnum reports whether s is one of the field's enum values. (The length and first byte
// are compared first: most values differ there, and the comparison of the rest is a call.)
func (f *Field) inEnum(s []byte) bool {
	for _, e := range f.Enum {
		if len(e) == len(s) && (len(s) == 0 || e[0] == s[0]) && e == string(s) {
			return true
		}
	}
	return false
}

// matchPattern reports whether s matches the field's pattern.
func (f *Field) matchPattern(s []byte) bool {
	if f.matcher != nil {
		return f.matcher.match(s)
	}
	return f.Pattern.Match(s)
}

// inBounds reports whether v, a value of the field's type (unscaled at its scale), is within
// all its bounds; checkBounds says which one it is not.
func (f *Field) inBounds(v dec128) bool {
	for k, b := range f.bounds {
		if b != nil && !boundHolds(k, v.cmp(*b)) {
			return false
		}
	}
	return true
}

// boundHolds reports whether a value that compares c with bound k (of Field.bounds) meets it.
func boundHolds(k, c int) bool {
	switch k {
	case 0:
		return c >= 0
	case 1:
		return c <= 0
	case 2:
		return c > 0
	}
	return c < 0
}

// boundRelations are the bounds' words in a reject's message, in Field.bounds order.
var boundRelations = [4]string{"at least", "at most", "greater than", "less than"}

// checkBounds is the reject of a value of field i outside its bounds (inBounds false), naming
// the first bound it does not meet.
func (d *cdecoder) checkBounds(i int, v dec128, text []byte) (Reason, string) {
	f := &d.c.Fields[i]
	for k, b := range f.bounds {
		if b != nil && !boundHolds(k, v.cmp(*b)) {
			bound := []*Decimal{f.Min, f.Max, f.MinExclusive, f.MaxExclusive}[k]
			return ReasonOutOfRange, fmt.Sprintf("field %s: %s must be %s %s (%s)", d.name(i), quoteClip(text), boundRelations[k], bound.text, boundNames[k])
		}
	}
	return "", ""
}

// reject builds a Reject, with the key when the message has a readable one.
func (d *cdecoder) reject(reason Reason, msg string) *Reject {
	rej := &Reject{Reason: reason, Message: msg}
	if d.c.keyIndex < 0 || len(d.f) <= d.c.keyIndex {
		return rej
	}
	fs := d.f[d.c.keyIndex]
	kf := &d.c.Fields[d.c.keyIndex]
	if int(fs.at) != len(kf.Path)-1 {
		return rej
	}
	raw := d.value[fs.start:fs.end]
	switch {
	case fs.kind == kindString && kf.Type.Kind == TypeString && fs.end-fs.start <= 6*kf.MaxLength:
		var buf [MaxIdentifierBytes]byte
		s := raw
		if fs.esc {
			s = unescape(buf[:0], raw)
		}
		if len(s) > 0 && len(s) <= kf.MaxLength {
			if at, _ := controlChar(s); at < 0 {
				rej.TransactionID = string(s)
			}
		}
	case fs.kind == kindNumber && kf.Type.Kind != TypeString:
		if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			rej.TransactionID = string(raw)
		}
	}
	return rej
}

// shortInt reads a JSON number of at most 18 digits without fraction or exponent, which
// cannot overflow 64 bits; ok is false for anything else (strconv.ParseInt's turn).
func shortInt(b []byte) (n int64, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func isIntegerText(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// isDecimalShape reports whether b is [-+]digits[.digits], whatever its length.
func isDecimalShape(b []byte) bool {
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	intPart, frac, point := 0, 0, false
	for _, c := range b {
		switch {
		case isDigit(c) && point:
			frac++
		case isDigit(c):
			intPart++
		case c == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return intPart > 0 && (!point || frac > 0)
}

// fitsPrecision reports whether the unscaled v has at most p digits.
func fitsPrecision(v dec128, p int) bool {
	if v.negative() {
		v = v.neg()
	}
	if p >= MaxDecimalPrecision {
		return true // parseDecimalText and rescale already bound it to 38 digits
	}
	return v.cmp(pow10x128[p]) < 0
}

// pow10x128[p] is 10^p.
var pow10x128 = func() (t [MaxDecimalPrecision]dec128) {
	t[0] = dec128{lo: 1}
	for i := 1; i < len(t); i++ {
		t[i], _ = t[i-1].mul10Add(0)
	}
	return t
}()

// parseDate parses YYYY-MM-DD into days since 1970-01-01.
func parseDate(s []byte) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := digits4(s[0:4])
	m, ok2 := digits2(s[5:7])
	dd, ok3 := digits2(s[8:10])
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || dd < 1 || dd > daysIn(m, y) {
		return 0, false
	}
	return daysFromCivil(y, m, dd), true
}

// hasZone reports whether a timestamp text (already valid) ends with a zone.
func hasZone(s []byte) bool {
	if len(s) <= 19 {
		return false
	}
	for _, c := range s[19:] {
		if c == 'Z' || c == 'z' || c == '+' || c == '-' {
			return true
		}
	}
	return false
}

// scan validates the message as one JSON object (the rules of scanMessage: RFC 8259, no key
// twice in an object, no lone surrogate) and locates every field of the contract in it.
func (d *cdecoder) scan() *syntaxError {
	v := d.value
	i, err := objectStart(v)
	if err != nil {
		return err
	}
	next, err := d.object(i, d.c.root)
	if err != nil {
		return err
	}
	if i = skipSpace(v, next); i != len(v) {
		return errAt(i, "trailing data after the JSON object")
	}
	return nil
}

// object scans the object at v[i] == '{' whose keys node names, and returns the index after
// it. With unknown_fields: keep, the object's unknown members (and those of its known
// sub-objects) are appended to d.extras as one JSON object, or nothing when there are none.
func (d *cdecoder) object(i int, node *pathNode) (int, *syntaxError) {
	v := d.value
	keep := d.c.keep
	opened := false // d.extras has this object's '{'
	var seen uint64
	// The unknown keys so far, for duplicates: the first few, when written without escapes,
	// as their bounds in the message (no allocation); the others in a map.
	var few [4][2]int32
	nfew := 0
	var unknown map[string]struct{}
	hint := 0
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(v) || v[i] != '"' {
			return 0, unexpected(v, i, "a string (object key)")
		}
		keyAt := i
		var key []byte
		var keyEsc bool
		k, next := node.match(v, i, hint)
		if k >= 0 {
			key, hint = v[i+1:next-1], k+1
		} else {
			var keyBuf [64]byte // here, not above: zeroing it costs every key
			ks, ke, esc, n, err := scanString(v, i)
			if err != nil {
				return 0, err
			}
			key, next, keyEsc = v[ks:ke], n, esc
			if esc {
				key = unescape(keyBuf[:0], key)
			}
			k = node.child(key)
		}
		rawKey := v[keyAt:next]
		i = skipSpace(v, next)
		if i >= len(v) || v[i] != ':' {
			return 0, unexpected(v, i, "':' after object key")
		}
		i = skipSpace(v, i+1)
		if k >= 0 {
			if seen&(1<<k) != 0 {
				return 0, errAt(keyAt, "duplicate key %s", quoteClip(key))
			}
			seen |= 1 << k
		}
		switch {
		case k >= 0 && node.kids[k] == nil: // a field
			fi := node.leaf[k]
			if i < len(v) && v[i] == '"' {
				if e := printableEnd(v, i); e >= 0 {
					d.f[fi] = fieldSpan{span: span{kind: kindString, start: i + 1, end: e}, at: int32(node.depth), printable: true}
					i = e + 1
				} else {
					s, e, esc, next, err := scanString(v, i)
					if err != nil {
						return 0, err
					}
					d.f[fi] = fieldSpan{span: span{kind: kindString, esc: esc, start: s, end: e}, at: int32(node.depth)}
					i = next
				}
			} else {
				start := i
				next, err := skipValue(v, i)
				if err != nil {
					return 0, err
				}
				d.f[fi] = fieldSpan{span: span{kind: kindOf(v[start]), start: start, end: next}, at: int32(node.depth)}
				i = next
			}
		case k >= 0: // an object the contract reaches into
			kid := node.kids[k]
			if i < len(v) && v[i] == '{' {
				d.entered[kid.id] = true // an absent field below is absent down to here (at)
				if d.c.rejectUnknown {
					d.path[node.depth] = node.keys[k] // for the path of an unknown key below
				}
				mark := len(d.extras)
				next, err := d.object(i, kid)
				if err != nil {
					return 0, err
				}
				if keep && len(d.extras) > mark {
					// The sub-object had unknown members: they go under its key. (Written
					// here, not before it, as most sub-objects have none.)
					prefix := d.scratch[:0]
					if opened {
						prefix = append(prefix, ',')
					} else {
						prefix = append(prefix, '{')
						opened = true
					}
					prefix = append(prefix, rawKey...)
					prefix = append(prefix, ':')
					d.extras = slices.Insert(d.extras, mark, prefix...)
				}
				i = next
			} else {
				start := i
				next, err := skipValue(v, i)
				if err != nil {
					return 0, err
				}
				for _, fi := range kid.fields {
					d.f[fi] = fieldSpan{span: span{kind: kindOf(v[start])}, at: int32(node.depth)}
				}
				i = next
			}
		default: // unknown
			_, dup := unknown[string(key)]
			for _, u := range few[:nfew] {
				dup = dup || string(v[u[0]:u[1]]) == string(key)
			}
			if dup {
				return 0, errAt(keyAt, "duplicate key %s", quoteClip(key))
			}
			if !keyEsc && nfew < len(few) && next <= math.MaxInt32 {
				few[nfew] = [2]int32{int32(keyAt + 1), int32(next - 1)}
				nfew++
			} else {
				if unknown == nil {
					unknown = make(map[string]struct{})
				}
				unknown[string(key)] = struct{}{}
			}
			start := i
			next, err := skipValue(v, i)
			if err != nil {
				return 0, err
			}
			switch {
			case keep:
				if opened {
					d.extras = append(d.extras, ',')
				} else {
					d.extras = append(d.extras, '{')
					opened = true
				}
				d.extras = append(d.extras, rawKey...)
				d.extras = append(d.extras, ':')
				d.extras = append(d.extras, v[start:next]...)
			case d.c.rejectUnknown:
				if d.unknown == "" {
					d.unknown = strings.Join(append(d.path[:node.depth:node.depth], string(key)), ".")
				}
			}
			i = next
		}
		i = skipSpace(v, i)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
			continue
		}
		if i < len(v) && v[i] == '}' {
			if opened {
				d.extras = append(d.extras, '}')
			}
			return i + 1, nil
		}
		return 0, unexpected(v, i, "',' or '}' after object value")
	}
}
