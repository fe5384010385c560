package ledger

import (
	"strconv"
	"time"
)

// GeneratorOptions shape the stream a Generator produces. Fractions are clamped to [0, 1];
// when Duplicates+Malformed exceeds 1, malformed messages take precedence.
type GeneratorOptions struct {
	// Duplicates is the fraction of messages that re-send an earlier transaction: most of them
	// byte for byte (a producer retry: reason duplicate), a fifth of them with the same
	// transaction_id and a different amount (reason conflicting_duplicate).
	Duplicates float64
	// Malformed is the fraction of messages that break a rule, covering every reason code the
	// transform can give (except too_large unless Oversize is set).
	Malformed float64
	// Oversize, when > 0, adds too_large messages among the malformed ones: valid transactions
	// padded with an unknown field to this many bytes. Set it to the consumer's
	// MaxMessageBytes+1 (the broker must accept such a message). Values below the size of a
	// normal message (about 250 bytes) give messages that are not too large at all.
	Oversize int
	// FirstID is the number of the first transaction_id: fresh message i carries
	// TXN%08d of FirstID+i. A producer continuing an earlier run's topic starts after the
	// highest number there, so that its transactions are new ones and not duplicates.
	FirstID int
}

// MaxTransactionNumber is the largest number a generated transaction_id (TXN + 8 digits)
// can carry.
const MaxTransactionNumber = 99_999_999

// TransactionNumber returns n for a generated transaction_id "TXN" + 8 digits, and false
// for anything else.
func TransactionNumber(id []byte) (int, bool) {
	if len(id) != 11 || string(id[:3]) != "TXN" {
		return 0, false
	}
	n := 0
	for _, c := range id[3:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// Message is one generated Kafka record and what the pipeline must make of it.
type Message struct {
	Key   []byte // the transaction_id, as the seed's producer would key it
	Value []byte // nil for a tombstone
	// Index is the message's position in the generated stream (0, 1, ...).
	Index int
	// Want is the outcome the pipeline must reach: "" for a ledger row, else the reason
	// code of its reject (including duplicate and conflicting_duplicate, which Decode accepts
	// and the deduplication stage must catch).
	Want Reason
	// Original is the Index of the message a duplicate repeats, -1 otherwise.
	Original int
}

// Generator produces the seed's stream of financial transactions, deterministically for a seed:
// message i depends only on the seed, i, and the times passed to Next (a duplicate repeats the
// time of its original, as a retry would). Fresh message i carries transaction_id TXN%08d of
// FirstID+i; a duplicate carries its original's. It is not safe for concurrent use.
type Generator struct {
	messagePlan
	next  int
	times [dupWindow]time.Time // event times of the last dupWindow messages, by index
	buf   []byte               // scratch for building a value; copied out per message
}

// dupWindow bounds how far back a duplicate reaches: a producer retries recent messages.
const dupWindow = 1024

// NewGenerator returns a Generator for a seed.
func NewGenerator(seed int64, opts GeneratorOptions) *Generator {
	clamp := func(f float64) float64 { return min(max(f, 0), 1) }
	opts.Duplicates, opts.Malformed = clamp(opts.Duplicates), clamp(opts.Malformed)
	opts.FirstID = min(max(opts.FirstID, 0), MaxTransactionNumber)
	return &Generator{messagePlan: messagePlan{seed: uint64(seed), opts: opts}, buf: make([]byte, 0, 512)}
}

// Next returns the next message. now is the event time of a fresh transaction, written as
// Python's datetime.utcnow().isoformat() writes it: UTC without a zone, with microseconds
// (and without them when they are zero, as Python does). Key and Value share one fresh
// allocation per message, so they may be handed to an asynchronous producer.
func (g *Generator) Next(now time.Time) Message {
	i := g.next
	g.next++
	now = now.UTC().Truncate(time.Microsecond)
	g.times[i%dupWindow] = now

	m := Message{Index: i, Original: -1}
	rng := g.rng(i)
	var t txn
	switch g.kind(i) {
	case kindFresh:
		t = g.txn(i, now)
		g.buf = t.appendJSON(g.buf[:0], -1, "")
	case kindDuplicate:
		orig := g.original(i, &rng)
		if orig < 0 {
			t = g.txn(i, now)
			g.buf = t.appendJSON(g.buf[:0], -1, "")
			break
		}
		t = g.txn(orig, g.times[orig%dupWindow])
		m.Original = orig
		m.Want = ReasonDuplicate
		if rng.intn(5) == 0 {
			m.Want = ReasonConflictingDuplicate
			t.amount = 1000 + (t.amount-1000+1+int64(rng.intn(998_999)))%999_001 // never the same
		}
		g.buf = t.appendJSON(g.buf[:0], -1, "")
	case kindMalformed:
		t = g.txn(i, now)
		var value []byte
		value, m.Want = g.malformed(&t, &rng)
		if m.Want == ReasonTombstone {
			m.Key = append([]byte(nil), t.id[:]...)
			return m
		}
		g.buf = value
	}
	out := make([]byte, len(t.id)+len(g.buf))
	copy(out, t.id[:])
	copy(out[len(t.id):], g.buf)
	m.Key, m.Value = out[:len(t.id):len(t.id)], out[len(t.id):]
	return m
}

type messageKind uint8

const (
	kindFresh messageKind = iota
	kindDuplicate
	kindMalformed
)

// messagePlan decides, from the seed and a message's index alone, what each message of a
// generated stream is (fresh, a duplicate of which earlier one, malformed). Both generators,
// the notebook's and a contract's, draw their streams from it.
type messagePlan struct {
	seed uint64
	opts GeneratorOptions
}

// kind decides, from the seed and the index alone, what message i is; so a duplicate can tell
// whether an earlier index was a fresh transaction without remembering it.
func (g *messagePlan) kind(i int) messageKind {
	r := g.rng(i)
	u := r.float()
	switch {
	case u < g.opts.Malformed:
		return kindMalformed
	case u < g.opts.Malformed+g.opts.Duplicates:
		return kindDuplicate
	}
	return kindFresh
}

// original picks the fresh message, among the last dupWindow, that message i repeats, or -1.
func (g *messagePlan) original(i int, rng *splitMix) int {
	back := min(i, dupWindow-1)
	if back == 0 {
		return -1
	}
	j := i - 1 - rng.intn(back)
	for ; j >= 0 && j > i-dupWindow; j-- {
		if g.kind(j) == kindFresh {
			return j
		}
	}
	return -1
}

var (
	currencies       = [...]string{"USD", "EUR", "GBP"}
	transactionTypes = [...]string{"transfer", "payment", "withdrawal", "deposit"}
)

// txn is a generated transaction before encoding.
type txn struct {
	id       [11]byte // TXN%08d; indexes past 99999999 wrap, as the key must stay fixed-size
	from, to int
	amount   int64 // hundredths
	currency string
	typ      string
	time     time.Time
}

// txn draws the fields of fresh transaction i, from its own random stream so that a duplicate
// can regenerate them.
func (g *Generator) txn(i int, now time.Time) txn {
	r := g.rng(i)
	r.next() // the kind draw
	t := txn{
		from:     1000 + r.intn(9000),
		to:       1000 + r.intn(9000),
		amount:   1000 + int64(r.intn(999_001)), // 10.00 ..= 10000.00
		currency: currencies[r.intn(len(currencies))],
		typ:      transactionTypes[r.intn(len(transactionTypes))],
		time:     now,
	}
	copy(t.id[:], "TXN")
	n := (g.opts.FirstID + i) % (MaxTransactionNumber + 1)
	for k := 10; k >= 3; k-- {
		t.id[k] = byte('0' + n%10)
		n /= 10
	}
	return t
}

// appendJSON writes the transaction as Python's json.dumps writes the seed's dict: keys in
// order, ", " and ": " separators. Field skip is left out and, if raw is not "", field
// replace is written as the raw JSON token raw instead (both -1 for neither).
func (t *txn) appendJSON(b []byte, skip int, raw string) []byte {
	return t.appendJSONWith(b, skip, -1, raw)
}

func (t *txn) appendJSONWith(b []byte, skip, replace int, raw string) []byte {
	b = append(b, '{')
	first := true
	for f := range numFields {
		if f == skip {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, '"')
		b = append(b, fieldNames[f]...)
		b = append(b, `": `...)
		if f == replace {
			b = append(b, raw...)
			continue
		}
		b = append(b, '"')
		switch f {
		case fieldID:
			b = append(b, t.id[:]...)
		case fieldFrom:
			b = append(b, "ACC"...)
			b = strconv.AppendInt(b, int64(t.from), 10)
		case fieldTo:
			b = append(b, "ACC"...)
			b = strconv.AppendInt(b, int64(t.to), 10)
		case fieldAmount:
			b = AppendAmount(b, t.amount)
		case fieldCurrency:
			b = append(b, t.currency...)
		case fieldType:
			b = append(b, t.typ...)
		case fieldTimestamp:
			b = appendISOFormat(b, t.time)
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendISOFormat writes t (UTC) as Python's datetime.isoformat() writes a naive datetime.
func appendISOFormat(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = appendPad(b, y, 4)
	b = append(b, '-')
	b = appendPad(b, int(mo), 2)
	b = append(b, '-')
	b = appendPad(b, d, 2)
	b = append(b, 'T')
	b = appendPad(b, h, 2)
	b = append(b, ':')
	b = appendPad(b, mi, 2)
	b = append(b, ':')
	b = appendPad(b, s, 2)
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		b = appendPad(b, us, 6)
	}
	return b
}

func appendPad(b []byte, v, width int) []byte {
	var tmp [20]byte
	n := len(strconv.AppendInt(tmp[:0], int64(v), 10))
	for ; n < width; n++ {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(v), 10)
}

// A malformed variant: how to break a transaction, and the reason that must result.
type variant struct {
	want  Reason
	field int    // the field to replace (-1: none)
	raw   string // its raw JSON token; "" with field >= 0 means leave the field out
	whole string // for whole-message variants: a tag handled in malformed
}

// malformedVariants covers every reason code Decode gives (too_large is added by Oversize).
var malformedVariants = [...]variant{
	{want: ReasonMalformedJSON, field: -1, whole: "truncated"},
	{want: ReasonMalformedJSON, field: -1, whole: "trailing"},
	{want: ReasonMalformedJSON, field: -1, whole: "array"},
	{want: ReasonMalformedJSON, field: -1, whole: "empty"},
	{want: ReasonMalformedJSON, field: -1, whole: "duplicate key"},
	{want: ReasonMalformedJSON, field: fieldFrom, raw: "\"ACC\xff\xfe12\""}, // not UTF-8
	{want: ReasonMalformedJSON, field: fieldTo, raw: `"ACC\ud800"`},         // lone surrogate
	{want: ReasonTombstone, field: -1, whole: "tombstone"},
	{want: ReasonMissingField, field: fieldAmount},
	{want: ReasonMissingField, field: fieldTimestamp},
	{want: ReasonMissingField, field: fieldCurrency, raw: "null"},
	{want: ReasonBadField, field: fieldAmount, raw: "1234.56"},
	{want: ReasonBadField, field: fieldTo, raw: "4242"},
	{want: ReasonBadField, field: fieldFrom, raw: `""`},
	{want: ReasonBadField, field: fieldFrom, raw: `"ACC\u0007"`},
	{want: ReasonBadAmount, field: fieldAmount, raw: `"10.005"`},
	{want: ReasonBadAmount, field: fieldAmount, raw: `"1e3"`},
	{want: ReasonBadAmount, field: fieldAmount, raw: `"+10.00"`},
	{want: ReasonBadAmount, field: fieldAmount, raw: `".5"`},
	{want: ReasonBadAmount, field: fieldAmount, raw: `"12345678901234567.00"`},
	{want: ReasonBadAmount, field: fieldAmount, raw: `"ten"`},
	{want: ReasonNonPositiveAmount, field: fieldAmount, raw: `"-42.00"`},
	{want: ReasonNonPositiveAmount, field: fieldAmount, raw: `"0.00"`},
	{want: ReasonBadCurrency, field: fieldCurrency, raw: `"usd"`},
	{want: ReasonBadCurrency, field: fieldCurrency, raw: `"EURO"`},
	{want: ReasonBadType, field: fieldType, raw: `"refund"`},
	{want: ReasonBadType, field: fieldType, raw: `"Payment"`},
	{want: ReasonBadTimestamp, field: fieldTimestamp, raw: `"2025-02-30T10:00:00"`},
	{want: ReasonBadTimestamp, field: fieldTimestamp, raw: `"2025-01-16T24:00:00"`},
	{want: ReasonBadTimestamp, field: fieldTimestamp, raw: `"2025-01-16T10:00:00.1234567"`},
	{want: ReasonBadTimestamp, field: fieldTimestamp, raw: `"yesterday"`},
}

// malformed builds a malformed message from t. The returned value aliases g.buf.
func (g *Generator) malformed(t *txn, rng *splitMix) ([]byte, Reason) {
	n := len(malformedVariants)
	if g.opts.Oversize > 0 {
		n++
	}
	k := rng.intn(n)
	b := g.buf[:0]
	if k == len(malformedVariants) {
		// too_large: a valid transaction with an unknown field padding it to Oversize bytes.
		b = t.appendJSON(b, -1, "")
		b = b[:len(b)-1]
		b = append(b, `, "padding": "`...)
		for len(b) < g.opts.Oversize-2 {
			b = append(b, 'x')
		}
		b = append(b, `"}`...)
		return b, ReasonTooLarge
	}
	v := malformedVariants[k]
	switch v.whole {
	case "":
		if v.raw == "" {
			return t.appendJSON(b, v.field, ""), v.want
		}
		return t.appendJSONWith(b, -1, v.field, v.raw), v.want
	case "truncated":
		b = t.appendJSON(b, -1, "")
		return b[:rng.intn(len(b))], v.want // any proper prefix of an object is incomplete
	case "trailing":
		b = t.appendJSON(b, -1, "")
		return append(b, "}"...), v.want
	case "array":
		b = append(b, '[')
		b = t.appendJSON(b, -1, "")
		return append(b, ']'), v.want
	case "empty":
		return b, v.want
	case "duplicate key":
		b = t.appendJSON(b, -1, "")
		b = b[:len(b)-1]
		return append(b, `, "amount": "1.00"}`...), v.want
	case "tombstone":
		return nil, v.want
	}
	panic("ledger: unknown malformed variant " + v.whole)
}

// rng returns message i's own random stream.
func (g *messagePlan) rng(i int) splitMix {
	return splitMix{state: mix64(g.seed) ^ mix64(uint64(i)+0x9e3779b97f4a7c15)}
}

// splitMix is SplitMix64: tiny, fast, well distributed, and seedable per message, which is what
// deterministic random access needs. (math/rand/v2's PCG would do as well, with more ceremony.)
type splitMix struct{ state uint64 }

func (s *splitMix) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	return mix64(s.state)
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n), n > 0 (modulo bias is below 2^-40 for the n used here).
func (s *splitMix) intn(n int) int { return int(s.next() % uint64(n)) }

// float returns a number in [0, 1).
func (s *splitMix) float() float64 { return float64(s.next()>>11) / (1 << 53) }
