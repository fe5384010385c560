package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Defaults of Rules.
const (
	DefaultMaxMessageBytes = 1 << 20 // 1 MiB
	// MaxIdentifierBytes bounds transaction_id, account_from and account_to.
	MaxIdentifierBytes = 256
)

// DefaultTransactionTypes returns the transaction types of the seed's producer.
func DefaultTransactionTypes() []string {
	return []string{"transfer", "payment", "withdrawal", "deposit"}
}

// Rules are the configurable parts of the transform. A zero Rules behaves as DefaultRules.
// Rules are read-only once in use, so one value may serve any number of goroutines.
type Rules struct {
	// MaxMessageBytes is the largest message value accepted; larger ones are too_large
	// without being parsed. Zero or less means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// TransactionTypes lists the accepted transaction_type values (exact, case-sensitive).
	// Empty means DefaultTransactionTypes.
	TransactionTypes []string
	// Contract, when not nil and not the default contract, decodes messages instead of the
	// notebook's rules (after the tombstone, size and UTF-8 checks, which are shared).
	Contract *Contract
}

// DefaultRules returns the rules of docs/design.md §3: 1 MiB messages, the four seed transaction types.
func DefaultRules() Rules {
	return Rules{MaxMessageBytes: DefaultMaxMessageBytes, TransactionTypes: DefaultTransactionTypes()}
}

var defaultTypes = DefaultTransactionTypes()

// Decode turns a Kafka message value into a ledger row, or says why it cannot be one. The
// row's source fields are left zero for the caller; ProcessingTime is not the transform's
// business either. Exactly one of the results is meaningful: the Reject is nil when the Row is
// valid. (Return it as an error only after checking it for nil, or a nil *Reject becomes a
// non-nil error.)
//
// The checks, in the order they run (the first failure is the one reported):
//
//   - a nil value is a tombstone (an empty, non-nil value is malformed_json);
//   - more than MaxMessageBytes is too_large, before any parsing;
//   - the value must be valid UTF-8 holding exactly one JSON object (RFC 8259, white space
//     around it allowed), with no key twice at its top level and no \u escape that is a lone
//     surrogate: else malformed_json. Unknown keys are ignored, whatever their values;
//   - each field, in schema order, must be present and not null (missing_field), and a JSON
//     string (bad_field; this includes amount sent as a JSON number);
//   - transaction_id, account_from, account_to: non-empty, at most 256 bytes, no control
//     characters (C0, DEL, C1) after unescaping: else bad_field;
//   - amount: see parseAmount (bad_amount, nonpositive_amount);
//   - currency: three ASCII upper-case letters (bad_currency);
//   - transaction_type: one of TransactionTypes (bad_type);
//   - timestamp: see parseTimestamp (bad_timestamp).
//
// Every reject after the transaction_id has been read carries it in Reject.TransactionID.
//
// Cost: the row's strings share one allocation (the id, accounts, currency and hash are
// decoded into a stack buffer and converted to a string once; TransactionType points into
// Rules). Nothing else is allocated for a valid message without unknown fields.
func (r *Rules) Decode(value []byte) (Row, *Reject) { return r.decode(value, nil) }

// A Decoder is Rules.Decode with its working state kept from one message to the next, for a
// goroutine that decodes a stream of them: Rules.Decode, by a custom contract, takes that
// state from a pool and gives it back for every message (about 20 ns). A Decoder is not
// safe for concurrent use; its rows are the same as Rules.Decode's.
type Decoder struct {
	rules *Rules
	state *cdecoder // a custom contract's, made on its first message
}

// NewDecoder returns a Decoder by r. r must not change while the Decoder is in use.
func (r *Rules) NewDecoder() *Decoder { return &Decoder{rules: r} }

// Decode is Rules.Decode.
func (dec *Decoder) Decode(value []byte) (Row, *Reject) { return dec.rules.decode(value, dec) }

// decode is Rules.Decode, by dec's working state when dec is not nil.
func (r *Rules) decode(value []byte, dec *Decoder) (Row, *Reject) {
	if value == nil {
		return Row{}, &Reject{Reason: ReasonTombstone, Message: "message has a null value (a tombstone)"}
	}
	limit := r.MaxMessageBytes
	if limit <= 0 {
		limit = DefaultMaxMessageBytes
	}
	if len(value) > limit {
		return Row{}, &Reject{Reason: ReasonTooLarge, Message: fmt.Sprintf("message is %d bytes, more than the limit of %d", len(value), limit)}
	}
	// No UTF-8 pass first: the scan checks the strings, the only place where a message that
	// scans may hold anything but ASCII, and a scan error says first whether the message is
	// UTF-8 at all (the reject of a message that is not, wherever its first error lies).
	if c := r.Contract; c != nil && !c.isDefault {
		var row Row
		if dec == nil {
			rej := c.decode(value, &row)
			return row, rej
		}
		if dec.state == nil {
			dec.state = c.newDecoder()
		}
		rej := dec.state.decode(value, &row)
		dec.state.value = nil // not kept alive until the next message
		return row, rej
	}
	d := decoder{value: value}
	if err := scanMessage(value, &d.f); err != nil {
		if !utf8.Valid(value) {
			return Row{}, notUTF8(value)
		}
		return Row{}, d.reject(ReasonMalformedJSON, "message is not acceptable JSON: "+err.Error())
	}
	for i := range numFields {
		switch k := d.f[i].kind; k {
		case kindString:
		case kindAbsent:
			return Row{}, d.reject(ReasonMissingField, "missing required field "+strconv.Quote(fieldNames[i]))
		case kindNull:
			return Row{}, d.reject(ReasonMissingField, "required field "+strconv.Quote(fieldNames[i])+" is null")
		default:
			return Row{}, d.reject(ReasonBadField, fmt.Sprintf("field %q must be a JSON string, got %s", fieldNames[i], k))
		}
	}

	// buf collects id|from|to|amount|currency, the hash input, then the hex hash; one string
	// conversion at the end gives all the row's strings. Sized for the largest valid input:
	// 3 identifiers of 256 bytes, a 20-byte amount, 3 letters, 4 separators and 64 hex digits.
	var buf [3*MaxIdentifierBytes + 20 + 3 + 4 + 64]byte
	b := buf[:0]
	var bounds [numFields][2]int
	for i := fieldID; i <= fieldTo; i++ {
		if i > fieldID {
			b = append(b, HashSeparator)
		}
		start := len(b)
		var msg string
		b, msg = d.appendIdentifier(b, i)
		if msg != "" {
			return Row{}, d.reject(ReasonBadField, msg)
		}
		bounds[i] = [2]int{start, len(b)}
	}

	var scratch [64]byte
	amount := d.text(scratch[:0], fieldAmount)
	hundredths, reason, msg := parseAmount(amount)
	if reason != "" {
		return Row{}, d.reject(reason, msg)
	}
	b = append(b, HashSeparator)
	b = append(b, amount...) // valid, so at most 20 bytes: the original string, for the hash

	b = append(b, HashSeparator)
	cur := d.text(scratch[:0], fieldCurrency)
	if !isCurrency(cur) {
		return Row{}, d.reject(ReasonBadCurrency, "currency "+quoteClip(cur)+" is not three upper-case letters (ISO 4217)")
	}
	bounds[fieldCurrency] = [2]int{len(b), len(b) + 3}
	b = append(b, cur...)

	typ := d.text(scratch[:0], fieldType)
	types := r.TransactionTypes
	if len(types) == 0 {
		types = defaultTypes
	}
	txType := ""
	for _, t := range types {
		if string(typ) == t {
			txType = t
			break
		}
	}
	if txType == "" {
		return Row{}, d.reject(ReasonBadType, fmt.Sprintf("transaction_type %s is not one of %q", quoteClip(typ), types))
	}

	ts, msg := parseTimestamp(d.text(scratch[:0], fieldTimestamp))
	if msg != "" {
		return Row{}, d.reject(ReasonBadTimestamp, msg)
	}

	sum := sha256.Sum256(b)
	hashAt := len(b)
	b = appendHashHex(b, &sum)
	s := string(b)
	return Row{
		TransactionID:   s[bounds[fieldID][0]:bounds[fieldID][1]],
		AccountFrom:     s[bounds[fieldFrom][0]:bounds[fieldFrom][1]],
		AccountTo:       s[bounds[fieldTo][0]:bounds[fieldTo][1]],
		Amount:          hundredths,
		Currency:        s[bounds[fieldCurrency][0]:bounds[fieldCurrency][1]],
		TransactionType: txType,
		TransactionHash: s[hashAt:],
		EventTime:       ts,
	}, nil
}

// decoder is the state of one Decode call, kept on the stack.
type decoder struct {
	value []byte
	f     [numFields]span
}

// text returns the content of string field i, decoding escapes into dst if it has any.
func (d *decoder) text(dst []byte, i int) []byte {
	sp := d.f[i]
	raw := d.value[sp.start:sp.end]
	if !sp.esc {
		return raw
	}
	return unescape(dst, raw)
}

// appendIdentifier appends the decoded identifier field i to b, or says why it is not one.
func (d *decoder) appendIdentifier(b []byte, i int) ([]byte, string) {
	sp := d.f[i]
	// An escape yields at least one byte per six, so a longer raw string cannot fit: refuse it
	// before decoding, so that hostile input never grows the buffer.
	if n := sp.end - sp.start; n > 6*MaxIdentifierBytes || !sp.esc && n > MaxIdentifierBytes {
		return b, fmt.Sprintf("field %q is longer than %d bytes", fieldNames[i], MaxIdentifierBytes)
	}
	start := len(b)
	if sp.esc {
		b = unescape(b, d.value[sp.start:sp.end])
	} else {
		b = append(b, d.value[sp.start:sp.end]...)
	}
	id := b[start:]
	switch {
	case len(id) == 0:
		return b, fmt.Sprintf("field %q is empty", fieldNames[i])
	case len(id) > MaxIdentifierBytes:
		return b, fmt.Sprintf("field %q is longer than %d bytes", fieldNames[i], MaxIdentifierBytes)
	}
	if at, r := controlChar(id); at >= 0 {
		return b, fmt.Sprintf("field %q has control character %U at byte %d", fieldNames[i], r, at)
	}
	return b, ""
}

// reject builds a Reject, with the transaction id when the message has a readable one.
func (d *decoder) reject(reason Reason, msg string) *Reject {
	rej := &Reject{Reason: reason, Message: msg}
	if sp := d.f[fieldID]; sp.kind == kindString {
		var buf [MaxIdentifierBytes]byte
		if id, bad := d.appendIdentifier(buf[:0], fieldID); bad == "" {
			rej.TransactionID = string(id)
		}
	}
	return rej
}

// controlChar finds the first control character (C0, DEL or C1) in valid UTF-8.
func controlChar(s []byte) (int, rune) {
	i := 0
	// Eight bytes at a time while they are all printable ASCII, as identifiers mostly are.
	for i+8 <= len(s) && notPrintable(binary.LittleEndian.Uint64(s[i:])) == 0 {
		i += 8
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			continue
		}
		switch {
		case c < 0x20 || c == 0x7f:
			return i, rune(c)
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
			return i, rune(s[i+1])
		}
	}
	return -1, 0
}

// notPrintable is not zero when some byte of w is not printable ASCII: below 0x20, 0x7f
// (DEL) or above. (Which byte is not exact: borrows may flag more; callers only test it.)
func notPrintable(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	return ((w-ones*0x20)&^w|w)&highs | delBytes(w)
}

func isCurrency(s []byte) bool {
	return len(s) == 3 && isUpper(s[0]) && isUpper(s[1]) && isUpper(s[2])
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// notUTF8 is the reject of a message that is not valid UTF-8.
func notUTF8(value []byte) *Reject {
	return &Reject{Reason: ReasonMalformedJSON, Message: fmt.Sprintf("message is not valid UTF-8 (first invalid byte at %d)", firstInvalidUTF8(value))}
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// quoteClip quotes a field value for a message, clipped so that a hostile megabyte does not
// end up in every reject row. It copies before formatting so that b never escapes (callers
// pass stack buffers).
func quoteClip(b []byte) string {
	const max = 64
	if len(b) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		return strconv.Quote(string(b[:cut])) + "..."
	}
	return strconv.Quote(string(b))
}
