package ledger

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a small, strict JSON scanner specialised for transaction messages. It does not
// build a tree: it validates the whole document (RFC 8259 grammar) and records, for each field the
// ledger reads, where its value lies in the input. Only string values with escapes are ever
// copied. encoding/json would cost several allocations per record, and accepts duplicate keys
// and lone surrogates, which a ledger must refuse.

// jsonKind is the JSON type of a value.
type jsonKind uint8

const (
	kindAbsent jsonKind = iota // the key did not appear
	kindString
	kindNull
	kindNumber
	kindBool
	kindObject
	kindArray
)

func (k jsonKind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindNull:
		return "null"
	case kindNumber:
		return "number"
	case kindBool:
		return "boolean"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	}
	return "absent"
}

// The fields the ledger reads, in schema order. Checks run in this order, so a message with
// several faults is always rejected for the same one.
const (
	fieldID = iota
	fieldFrom
	fieldTo
	fieldAmount
	fieldCurrency
	fieldType
	fieldTimestamp
	numFields
)

var fieldNames = [numFields]string{
	"transaction_id", "account_from", "account_to", "amount", "currency", "transaction_type", "timestamp",
}

// fieldIndex maps a decoded key to its field, or -1 for a key the ledger ignores.
func fieldIndex(key []byte) int {
	switch string(key) { // the compiler does not allocate for a switch on string(bytes)
	case "transaction_id":
		return fieldID
	case "account_from":
		return fieldFrom
	case "account_to":
		return fieldTo
	case "amount":
		return fieldAmount
	case "currency":
		return fieldCurrency
	case "transaction_type":
		return fieldType
	case "timestamp":
		return fieldTimestamp
	}
	return -1
}

// span locates one value in the message. For a string, [start, end) is its content between the
// quotes and esc says whether it holds escapes (and so must be decoded before use).
type span struct {
	kind       jsonKind
	esc        bool
	start, end int
}

// maxNesting bounds how deep unknown fields may nest. encoding/json uses 10000; a transaction
// message has no business nesting at all, so a small bound costs nothing and keeps the
// container stack on the goroutine stack.
const maxNesting = 512

// syntaxError describes why a message is not acceptable JSON.
type syntaxError struct {
	msg string
	off int // byte offset of the problem, -1 when not meaningful
}

func (e *syntaxError) Error() string {
	if e.off < 0 {
		return e.msg
	}
	return e.msg + " at byte " + strconv.Itoa(e.off)
}

func errAt(off int, format string, args ...any) *syntaxError {
	return &syntaxError{msg: fmt.Sprintf(format, args...), off: off}
}

// unexpected reports the byte found at d[i] where something else was wanted.
func unexpected(d []byte, i int, want string) *syntaxError {
	if i >= len(d) {
		return &syntaxError{msg: "unexpected end of message, want " + want, off: -1}
	}
	return errAt(i, "invalid character %s, want %s", quoteByte(d[i]), want)
}

func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// isSpace: the first comparison settles the common byte, which is not white space.
func isSpace(c byte) bool { return c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r') }

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// scanMessage validates d as one JSON object and fills f with the fields the ledger reads.
// Unknown keys and their values (of any shape) are validated and skipped. A key that appears
// twice at the top level is an error: which of the two values is meant is ambiguous, and a
// ledger must not guess. Strings are checked for UTF-8 (scanString), so a message that scans
// is UTF-8; one that does not may fail on a byte outside a string first, as a syntax error:
// callers ask utf8.Valid when it fails, to report that instead.
func scanMessage(d []byte, f *[numFields]span) *syntaxError {
	i, err := objectStart(d)
	if err != nil {
		return err
	}
	i = skipSpace(d, i+1)
	var seen uint8
	var unknown map[string]struct{} // made on the first unknown key only: seed messages have none
	if i < len(d) && d[i] == '}' {
		i++
	} else {
		for {
			if i >= len(d) || d[i] != '"' {
				return unexpected(d, i, "a string (object key)")
			}
			keyAt := i
			ks, ke, esc, next, err := scanString(d, i)
			if err != nil {
				return err
			}
			key := d[ks:ke]
			var keyBuf [32]byte
			if esc {
				key = unescape(keyBuf[:0], key)
			}
			idx := fieldIndex(key)
			i = skipSpace(d, next)
			if i >= len(d) || d[i] != ':' {
				return unexpected(d, i, "':' after object key")
			}
			i = skipSpace(d, i+1)
			if idx >= 0 {
				if seen&(1<<idx) != 0 {
					return errAt(keyAt, "duplicate key %q", fieldNames[idx])
				}
				seen |= 1 << idx
				if i < len(d) && d[i] == '"' {
					s, e, esc, next, err := scanString(d, i)
					if err != nil {
						return err
					}
					f[idx] = span{kind: kindString, esc: esc, start: s, end: e}
					i = next
				} else {
					start := i
					next, err := skipValue(d, i)
					if err != nil {
						return err
					}
					f[idx] = span{kind: kindOf(d[start]), start: start, end: next}
					i = next
				}
			} else {
				if unknown == nil {
					unknown = make(map[string]struct{})
				}
				if _, dup := unknown[string(key)]; dup {
					return errAt(keyAt, "duplicate key %s", quoteClip(key))
				}
				unknown[string(key)] = struct{}{}
				next, err := skipValue(d, i)
				if err != nil {
					return err
				}
				i = next
			}
			i = skipSpace(d, i)
			if i < len(d) && d[i] == ',' {
				i = skipSpace(d, i+1)
				continue
			}
			if i < len(d) && d[i] == '}' {
				i++
				break
			}
			return unexpected(d, i, "',' or '}' after object value")
		}
	}
	if i = skipSpace(d, i); i != len(d) {
		return errAt(i, "trailing data after the JSON object")
	}
	return nil
}

// objectStart returns the index of the '{' that opens the message, or why the message is not
// a JSON object.
func objectStart(d []byte) (int, *syntaxError) {
	i := skipSpace(d, 0)
	if i == len(d) {
		if len(d) == 0 {
			return 0, &syntaxError{msg: "empty message", off: -1}
		}
		return 0, &syntaxError{msg: "message is only white space", off: -1}
	}
	if d[i] != '{' {
		what := "a JSON value that is not an object"
		if d[i] == '[' {
			what = "a JSON array"
		}
		if !startsValue(d[i]) {
			return 0, unexpected(d, i, "a JSON object")
		}
		return 0, errAt(i, "message is %s, want a JSON object", what)
	}
	return i, nil
}

func startsValue(c byte) bool {
	switch c {
	case '{', '[', '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// kindOf gives the kind of the value starting with c (c already validated by skipValue).
func kindOf(c byte) jsonKind {
	switch c {
	case '"':
		return kindString
	case 'n':
		return kindNull
	case 't', 'f':
		return kindBool
	case '{':
		return kindObject
	case '[':
		return kindArray
	}
	return kindNumber
}

// scanString scans the string starting at d[i] == '"'. It returns the bounds of the content,
// whether it holds escapes, and the index after the closing quote. It rejects raw control
// characters, unknown escapes, \u escapes that do not form valid UTF-16 (a lone surrogate
// has no Unicode meaning, so it cannot be stored faithfully) and bytes that are not UTF-8
// (errNotUTF8). A message that scans is therefore valid UTF-8: outside its strings the
// grammar admits ASCII only. (The contract decoder relies on that rather than checking the
// whole message first.)
func scanString(d []byte, i int) (start, end int, esc bool, next int, err *syntaxError) {
	start = i + 1
	for j := start; j < len(d); {
		if j+8 <= len(d) {
			// Eight bytes at a time until one of them may need attention.
			if m := specialBytes(binary.LittleEndian.Uint64(d[j:])); m == 0 {
				j += 8
				continue
			} else {
				j += bits.TrailingZeros64(m) / 8
			}
		}
		c := d[j]
		if plainString[c] {
			j++
			continue
		}
		switch {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d[j:])
			if r == utf8.RuneError && n == 1 {
				return 0, 0, false, 0, &syntaxError{msg: errNotUTF8, off: j}
			}
			j += n
		case c == '"':
			return start, j, esc, j + 1, nil
		case c == '\\':
			esc = true
			if j+1 >= len(d) {
				return 0, 0, false, 0, &syntaxError{msg: "unexpected end of message in string escape", off: -1}
			}
			switch d[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				r, ok := hex4(d, j+2)
				if !ok {
					return 0, 0, false, 0, errAt(j, "invalid \\u escape in string")
				}
				j += 6
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 {
						return 0, 0, false, 0, errAt(j-6, "lone low surrogate \\u%04X in string", r)
					}
					var r2 rune = -1
					if j+1 < len(d) && d[j] == '\\' && d[j+1] == 'u' {
						r2, ok = hex4(d, j+2)
						if !ok {
							return 0, 0, false, 0, errAt(j, "invalid \\u escape in string")
						}
					}
					if r2 < 0xDC00 || r2 > 0xDFFF {
						return 0, 0, false, 0, errAt(j-6, "lone high surrogate \\u%04X in string", r)
					}
					j += 6
				}
			default:
				return 0, 0, false, 0, errAt(j, "invalid escape %s in string", quoteByte(d[j+1]))
			}
		case c < 0x20:
			return 0, 0, false, 0, errAt(j, "control character %s in string (must be escaped)", quoteByte(c))
		default:
			j++
		}
	}
	return 0, 0, false, 0, &syntaxError{msg: "unexpected end of message in string", off: -1}
}

// printableEnd returns the index of the quote that closes the string at d[i] == '"' when all
// before it is printable ASCII (0x20 to 0x7e) but the backslash: a string with no escape, no
// UTF-8 to check and no control character. Else it returns -1, and scanString is the judge.
// (Eight bytes at a time, as scanString; the contract decoder's values mostly are such.)
func printableEnd(d []byte, i int) int {
	j := i + 1
	for ; j+8 <= len(d); j += 8 {
		w := binary.LittleEndian.Uint64(d[j:])
		if m := specialBytes(w) | delBytes(w); m != 0 {
			j += bits.TrailingZeros64(m) / 8
			if d[j] == '"' {
				return j
			}
			return -1
		}
	}
	for ; j < len(d); j++ {
		switch c := d[j]; {
		case c == '"':
			return j
		case c < 0x20 || c >= 0x7f || c == '\\':
			return -1
		}
	}
	return -1
}

// delBytes flags (high bit of each byte) the bytes of w that are 0x7f (DEL); as
// specialBytes, only the lowest flag is exact.
func delBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := w ^ (ones * 0x7f)
	return (x - ones) &^ x & highs
}

// errNotUTF8 is scanString's message for a string holding bytes that are not UTF-8.
const errNotUTF8 = "invalid UTF-8 in string"

// plainString marks the bytes that stand for themselves inside a JSON string: ASCII but the
// quote, the backslash and control characters (other bytes start UTF-8 sequences, which
// scanString checks). A table keeps the common path to one load.
var plainString = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// specialBytes flags (high bit of each byte) the bytes of w, little-endian, that are '"', '\\',
// below 0x20 or not ASCII. Borrows can flag a byte above a true hit, never below one, so the
// lowest flag is always exact; callers only rely on that one.
func specialBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := w ^ (ones * '"')
	backslash := w ^ (ones * '\\')
	return ((quote-ones)&^quote | (backslash-ones)&^backslash | (w-ones*0x20)&^w | w) & highs
}

// hex4 decodes the four hex digits at d[i:i+4].
func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape appends the decoded form of a string's content, already validated by scanString.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i+2)
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(s, i+8)
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// skipValue validates the JSON value starting at d[i] and returns the index after it.
// Scalars, what the messages' fields mostly are, are read here directly; containers go to
// skipContainer (whose container stack costs a scalar more than the scalar itself).
func skipValue(d []byte, i int) (int, *syntaxError) {
	if i < len(d) {
		switch c := d[i]; {
		case c == '"':
			_, _, _, next, err := scanString(d, i)
			return next, err
		case c == '-' || isDigit(c):
			return scanNumber(d, i)
		case c == 't' && hasPrefix(d[i:], "true"):
			return i + 4, nil
		case c == 'f' && hasPrefix(d[i:], "false"):
			return i + 5, nil
		case c == 'n' && hasPrefix(d[i:], "null"):
			return i + 4, nil
		}
	}
	return skipContainer(d, i)
}

// skipContainer is skipValue for any value, containers included (and the errors of a value
// that is none). It is iterative, with the open containers kept in a bit stack, so hostile
// nesting cannot exhaust the goroutine stack.
func skipContainer(d []byte, i int) (int, *syntaxError) {
	var stack [maxNesting / 64]uint64 // bit set: the container is an object
	depth := 0
	push := func(obj bool) bool {
		if depth == maxNesting {
			return false
		}
		if obj {
			stack[depth/64] |= 1 << (depth % 64)
		} else {
			stack[depth/64] &^= 1 << (depth % 64)
		}
		depth++
		return true
	}
	inObject := func() bool { return stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }
	// member scans `"key" :` inside an object and leaves i at the value.
	member := func() *syntaxError {
		if i >= len(d) || d[i] != '"' {
			return unexpected(d, i, "a string (object key)")
		}
		_, _, _, next, err := scanString(d, i)
		if err != nil {
			return err
		}
		i = skipSpace(d, next)
		if i >= len(d) || d[i] != ':' {
			return unexpected(d, i, "':' after object key")
		}
		i = skipSpace(d, i+1)
		return nil
	}

	for {
		// A value starts at i.
		if i >= len(d) {
			return 0, &syntaxError{msg: "unexpected end of message, want a value", off: -1}
		}
		switch c := d[i]; c {
		case '"':
			_, _, _, next, err := scanString(d, i)
			if err != nil {
				return 0, err
			}
			i = next
		case '{', '[':
			if !push(c == '{') {
				return 0, errAt(i, "nesting deeper than %d", maxNesting)
			}
			i = skipSpace(d, i+1)
			if i < len(d) && (d[i] == '}' && c == '{' || d[i] == ']' && c == '[') {
				i++
				depth--
				break
			}
			if c == '{' {
				if err := member(); err != nil {
					return 0, err
				}
			}
			continue
		case 't':
			if !hasPrefix(d[i:], "true") {
				return 0, unexpected(d, i, "a value")
			}
			i += 4
		case 'f':
			if !hasPrefix(d[i:], "false") {
				return 0, unexpected(d, i, "a value")
			}
			i += 5
		case 'n':
			if !hasPrefix(d[i:], "null") {
				return 0, unexpected(d, i, "a value")
			}
			i += 4
		default:
			next, err := scanNumber(d, i)
			if err != nil {
				return 0, err
			}
			i = next
		}
		// A value ended at i: close containers until one wants another element.
		for {
			if depth == 0 {
				return i, nil
			}
			i = skipSpace(d, i)
			if i >= len(d) {
				return 0, &syntaxError{msg: "unexpected end of message in nested value", off: -1}
			}
			obj := inObject()
			if d[i] == ',' {
				i = skipSpace(d, i+1)
				if obj {
					if err := member(); err != nil {
						return 0, err
					}
				}
				break
			}
			if obj && d[i] == '}' || !obj && d[i] == ']' {
				i++
				depth--
				continue
			}
			if obj {
				return 0, unexpected(d, i, "',' or '}' in object")
			}
			return 0, unexpected(d, i, "',' or ']' in array")
		}
	}
}

func hasPrefix(d []byte, s string) bool { return len(d) >= len(s) && string(d[:len(s)]) == s }

// scanNumber validates a JSON number (RFC 8259 §6) at d[i] and returns the index after it.
func scanNumber(d []byte, i int) (int, *syntaxError) {
	start := i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		if i == start {
			return 0, unexpected(d, i, "a value")
		}
		return 0, unexpected(d, i, "a digit in number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return 0, unexpected(d, i, "a digit after decimal point in number")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return 0, unexpected(d, i, "a digit in exponent")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return i, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
