// Package ledger holds the transaction model of ledgerstream: the message as producers send
// it, the row it becomes in the ledger table, and the rules between them (decode, validate,
// hash; see Rules.Decode and Hash), plus a seeded Generator of seed-like message streams for
// the produce command and the tests. Everything here is pure: no I/O, no clocks (callers pass
// the time in).
package ledger

import "time"

// Row is one ledger row: a validated transaction and the source position it came from.
// Amount is in hundredths (decimal(18,2) unscaled), never a float.
//
// A row decoded by a custom contract (see Contract) has its columns in Custom, and only
// these of the notebook's fields: TransactionID holds the key's canonical string,
// TransactionHash the row hash, EventTime the report time column (zero when it is null).
type Row struct {
	TransactionID   string
	AccountFrom     string
	AccountTo       string
	Amount          int64 // unscaled, scale 2: 1234 is 12.34
	Currency        string
	TransactionType string
	TransactionHash string
	EventTime       time.Time // UTC

	Custom *Columns // a custom contract's columns; nil for the default contract

	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
}

// Columns are the columns of a row decoded by a custom contract. (A pointer in Row, so that
// rows stay comparable with ==.)
type Columns struct {
	Values []Value // in the contract's field order
	// Strings holds the string columns' values (Value.SetStr says where each lies; read
	// them with Str). A string per row rather than one per value: the values hold no
	// pointer, so the garbage collector does not scan them.
	Strings string
	Extras  string // unknown_fields: keep, the unknown keys as a JSON object; "" when none
}

// Str returns string column i's value ("" for a null).
func (c *Columns) Str(i int) string {
	v := &c.Values[i]
	return c.Strings[v.at : int64(v.at)+v.Int]
}

// Canonical returns the canonical string of column i, of type t (AppendCanonical).
func (c *Columns) Canonical(i int, t Type) string { return string(c.AppendCanonical(nil, i, t)) }

// AppendCanonical appends the canonical string of column i, of type t: what the row hash is
// made of and what report prints (see appendCanonical). A null appends nothing.
func (c *Columns) AppendCanonical(dst []byte, i int, t Type) []byte {
	v := c.Values[i]
	if t.Kind == TypeString {
		if !v.Valid {
			return dst
		}
		return append(dst, c.Str(i)...)
	}
	return appendCanonical(dst, t, v)
}

// Reason is a stable code saying why a message did not become a ledger row.
type Reason string

// The reason codes. They are a public interface (operators filter on them): add, never rename.
const (
	ReasonMalformedJSON        Reason = "malformed_json"
	ReasonMissingField         Reason = "missing_field"
	ReasonBadField             Reason = "bad_field" // a field of the wrong JSON type, or a bad identifier (empty, too long, control characters)
	ReasonBadAmount            Reason = "bad_amount"
	ReasonNonPositiveAmount    Reason = "nonpositive_amount"
	ReasonBadCurrency          Reason = "bad_currency"
	ReasonBadType              Reason = "bad_type"
	ReasonBadTimestamp         Reason = "bad_timestamp"
	ReasonTooLarge             Reason = "too_large"
	ReasonTombstone            Reason = "tombstone"
	ReasonDuplicate            Reason = "duplicate"
	ReasonConflictingDuplicate Reason = "conflicting_duplicate"
	// ReasonLostBeforeProcessing marks a gap, not a message: a range of offsets whose
	// records were deleted from the topic (retention, DeleteRecords) before the pipeline
	// read them. Its row has SourceOffset the first offset lost and LastOffset the last;
	// the operator chose to record it (run --on-gap record) rather than stop.
	ReasonLostBeforeProcessing Reason = "lost_before_processing"

	// The codes of a custom contract's checks (see Contract).
	ReasonPatternMismatch Reason = "pattern_mismatch" // a string that does not match the field's pattern
	ReasonNotInEnum       Reason = "not_in_enum"      // a string that is not one of the field's enum values
	ReasonOutOfRange      Reason = "out_of_range"     // a number outside min/max, or too large for its type
	ReasonBadScale        Reason = "bad_scale"        // a decimal with more fractional digits than its scale
	ReasonBadDate         Reason = "bad_date"         // a date that is not YYYY-MM-DD
	ReasonUnknownField    Reason = "unknown_field"    // a key the contract does not name, with unknown_fields: reject
)

// Reasons lists every reason code, in the order above.
var Reasons = []Reason{ReasonMalformedJSON, ReasonMissingField, ReasonBadField, ReasonBadAmount, ReasonNonPositiveAmount,
	ReasonBadCurrency, ReasonBadType, ReasonBadTimestamp, ReasonTooLarge, ReasonTombstone, ReasonDuplicate,
	ReasonConflictingDuplicate, ReasonLostBeforeProcessing,
	ReasonPatternMismatch, ReasonNotInEnum, ReasonOutOfRange, ReasonBadScale, ReasonBadDate, ReasonUnknownField}

// Reject says why a message was refused.
type Reject struct {
	Reason  Reason
	Message string
	// TransactionID is set when one could be read from the message.
	TransactionID string
}

// Error makes a Reject usable as an error.
func (r *Reject) Error() string { return string(r.Reason) + ": " + r.Message }

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// RejectRow is one row of the rejects table: a message that did not become a ledger row,
// kept whole (up to MaxRejectValueBytes) with its source position so that an operator can
// see why and replay it.
type RejectRow struct {
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Key             []byte // nil when the message had no key
	Value           []byte // nil for a tombstone; cut to MaxRejectValueBytes
	ValueSize       int64  // the whole value's size
	ValueSHA256     string // lower-case hex SHA-256 of the whole value ("" for a tombstone)
	Headers         []Header
	KafkaTimestamp  time.Time
	Reason          Reason
	Message         string
	TransactionID   string // "" when none could be read
	// LastOffset is, in a gap row (IsGap), the last offset of the range lost; SourceOffset
	// is its first. Zero in every other row.
	LastOffset int64
}

// IsGap reports whether the row records a range of offsets lost before processing
// rather than one refused message.
func (r *RejectRow) IsGap() bool { return r.Reason == ReasonLostBeforeProcessing }

// Offsets is how many offsets the row accounts for: one for a refused message, the
// range's length for a gap.
func (r *RejectRow) Offsets() int64 {
	if r.IsGap() {
		return r.LastOffset - r.SourceOffset + 1
	}
	return 1
}

// MaxRejectValueBytes is how much of an oversized value the rejects table keeps.
const MaxRejectValueBytes = 64 << 10
