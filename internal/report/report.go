// Package report computes the seed notebook's ledger report and validations from ledger rows.
//
// The notebook ("Query: Verify Ledger Integrity" and "Validation") ran four Spark SQL queries
// over the ledger table; this package computes the same figures in one streaming pass:
//
//   - the summary by (transaction_type, currency): COUNT(*), SUM(amount), AVG(amount), with
//     Spark's decimal types and rounding (SUM is decimal(28,2), AVG is decimal(22,6) half up);
//   - the duplicate check: transaction hashes that occur more than once;
//   - the latest 10 transactions by event_timestamp;
//   - the validations: rows > 0, distinct hashes == rows, distinct ids == rows, no amount <= 0.
//
// Feed every row to a [Builder], then call [Builder.Report]; print with [Report.WriteText]
// (laid out as Spark's DataFrame.show() prints) or [Report.WriteJSON], and check with [Validate].
// The package does no I/O of its own beyond the writers it is given: the caller scans the table.
package report

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// LatestN is how many rows the "latest transactions" part of the report keeps: the
// notebook's ORDER BY event_timestamp DESC LIMIT 10.
const LatestN = 10

// maxDuplicateIDExamples bounds how many duplicate transaction ids a report names; the
// count of distinct ids is exact regardless.
const maxDuplicateIDExamples = 5

// Report is the result of one pass over the ledger. Its JSON form is what `report --json`
// prints; decimals are strings.
type Report struct {
	// Rows is COUNT(*) over the table.
	Rows int64 `json:"rows"`
	// DistinctHashes is COUNT(DISTINCT transaction_hash).
	DistinctHashes int64 `json:"distinct_hashes"`
	// DistinctIDs is COUNT(DISTINCT transaction_id).
	DistinctIDs int64 `json:"distinct_transaction_ids"`
	// NonPositiveAmounts is COUNT(*) WHERE amount <= 0.
	NonPositiveAmounts int64 `json:"nonpositive_amounts"`
	// DuplicateIDExamples names up to a few transaction ids that occur more than once,
	// in the order they were first seen twice, so that a failed check points somewhere.
	DuplicateIDExamples []string `json:"duplicate_id_examples"`

	// Summary is the per (transaction_type, currency) summary, by txn_count descending,
	// then transaction_type and currency ascending (Spark leaves ties unordered; a report
	// that changes between runs of the same table is useless for diffing).
	Summary []SummaryRow `json:"summary"`
	// Duplicates are the transaction hashes seen more than once, by count descending then
	// hash ascending. len(Duplicates) is the notebook's "duplicates found".
	Duplicates []Duplicate `json:"duplicates"`
	// Latest are the LatestN rows with the newest event_timestamp, newest first; rows with
	// the same timestamp are ordered by transaction_id, then source position.
	Latest []LatestRow `json:"latest"`

	// FirstProcessed and LastProcessed bound the processing_time of the rows (zero when
	// there are none). The notebook does not print them; they tell how fresh the ledger is.
	// In JSON: first_processing_time and last_processing_time, null when zero (MarshalJSON).
	FirstProcessed time.Time `json:"-"`
	LastProcessed  time.Time `json:"-"`

	// Rejects counts the rejects table's rows by reason; nil when it was not read (the
	// caller fills it from a RejectTally).
	Rejects *RejectSummary `json:"rejects"`

	// Damaged lists the files that could not be read (the caller fills it): their rows
	// are missing from every figure above, and the report is incomplete.
	Damaged []DamagedFile `json:"damaged_files"`

	// For a ledger written with a custom contract: the report section's group_by columns
	// and amount column (Summary rows then have Group), and the columns of Latest rows
	// (which then have Values).
	GroupBy      []string `json:"group_by,omitempty"`
	AmountColumn string   `json:"amount_column,omitempty"`
	Columns      []string `json:"columns,omitempty"`
	// NoAmountCheck says the contract does not require positive amounts: Validate makes
	// no positive_amounts check.
	NoAmountCheck bool `json:"-"`

	// Window is set when the report covers part of the ledger (report --from/--to/--where):
	// every figure above is over the rows in it. Null for the whole ledger.
	Window *Window `json:"window"`
}

// Window says which rows a report covers and how much of the table it read for them.
type Window struct {
	// Filter is the window as a condition: `event_timestamp >= 2025-01-16T00:00:00Z and
	// currency in (EUR)`.
	Filter string `json:"filter"`
	// FilesRead data files were read, of FilesTotal in the snapshot: the others were
	// pruned by their partition values or column bounds without being opened.
	FilesRead  int `json:"data_files_read"`
	FilesTotal int `json:"data_files_total"`
}

// SummaryRow is one row of the summary query.
type SummaryRow struct {
	TransactionType string   `json:"transaction_type,omitempty"`
	Currency        string   `json:"currency,omitempty"`
	Group           []string `json:"group,omitempty"` // a custom contract's group_by values
	Count           int64    `json:"txn_count"`
	Total           Decimal  `json:"total_amount"` // decimal(28,2), exact
	Avg             Decimal  `json:"avg_amount"`   // decimal(22,6), half up
}

// Duplicate is one row of the duplicate check: a transaction hash and how many rows have it.
type Duplicate struct {
	TransactionHash string `json:"transaction_hash"`
	Count           int64  `json:"occurrence_count"`
}

// LatestRow is one row of the latest-transactions query.
type LatestRow struct {
	TransactionID   string    `json:"transaction_id"`
	AccountFrom     string    `json:"account_from"`
	AccountTo       string    `json:"account_to"`
	Amount          Decimal   `json:"amount"`
	Currency        string    `json:"currency"`
	TransactionType string    `json:"transaction_type"`
	EventTime       time.Time `json:"event_timestamp"`
	Values          []string  `json:"values,omitempty"` // a custom contract's columns, canonical strings
}

// Builder accumulates rows into a Report in one pass. The zero value is ready to use.
// A Builder is not safe for concurrent use; give each goroutine its own (there is no
// merge, by design: a table scan is sequential and Add is far faster than decoding).
//
// Memory: the summary and the latest rows take constant space (one accumulator per
// (type, currency) group, LatestN rows). The duplicate and distinct checks cannot: they
// keep one set entry per distinct transaction_hash and per distinct transaction_id, so
// they are O(rows). The sets are kept compact and pointer-free so that the garbage
// collector need not scan them: a canonical hash (64 lower-case hex digits) is stored as
// its 32 decoded bytes, and an id of up to 15 bytes inline in a 16-byte key. Measured:
// about 116 bytes per row at 2^20 rows (the hash tables' slack included), i.e. some
// 120 MB for a million rows. NewBuilder with the expected row count avoids regrowing them.
type Builder struct {
	rows        int64
	nonPositive int64

	groups map[groupKey]*group

	hashes      map[[32]byte]struct{} // canonical hashes seen at least once
	hashDups    map[[32]byte]int64    // canonical hashes seen at least twice: their count
	otherHashes map[string]int64      // any other hash string (never in practice): count

	ids        map[[16]byte]struct{} // ids of at most 15 bytes: length byte, then the bytes
	longIDs    map[string]struct{}   // longer ids
	idExamples []string

	latest []ledger.Row // at most LatestN, newest first (see newer)

	firstProcessed, lastProcessed time.Time

	contract *ledger.Contract // nil: the notebook's rows
	groupAt  []int            // the contract's group_by fields
	amountAt int              // the contract's amount field
	positive bool             // the contract requires amounts > 0
}

// NewContractBuilder is NewBuilder for a ledger written with a custom contract c: the
// summary is by c's report group_by columns over its amount column (exact sums at the
// column's scale, averages with 4 more digits, half up, as Spark's), the latest rows show
// every column, and the positive-amount check is made only when the amount column requires
// amounts above zero. For the default contract it is NewBuilder.
func NewContractBuilder(c *ledger.Contract, expectedRows int) *Builder {
	b := NewBuilder(expectedRows)
	if c.IsDefault() {
		return b
	}
	b.contract = c
	for _, g := range c.Report.GroupBy {
		b.groupAt = append(b.groupAt, c.FieldIndex(g))
	}
	b.amountAt = c.FieldIndex(c.Report.Amount)
	f := &c.Fields[b.amountAt]
	b.positive = f.MinExclusive != nil && f.MinExclusive.Sign() >= 0 || f.Min != nil && f.Min.Sign() > 0
	return b
}

// addContractRow is Add's summary part for a row of a custom contract.
func (b *Builder) addContractRow(row *ledger.Row) {
	var key strings.Builder
	for i, at := range b.groupAt {
		if i > 0 {
			key.WriteByte(0x1f) // unit separator: canonical strings never hold it
		}
		key.WriteString(row.Custom.Canonical(at, b.contract.Fields[at].Type))
	}
	k := groupKey{typ: key.String()}
	g := b.groups[k]
	if g == nil {
		g = &group{}
		b.groups[k] = g
	}
	g.count++
	v := row.Custom.Values[b.amountAt]
	if v.Valid {
		g.sum.addWide(v.Hi, uint64(v.Int))
		if b.positive && (v.Hi < 0 || v.Hi == 0 && v.Int == 0) {
			b.nonPositive++
		}
	}
}

type groupKey struct{ typ, currency string }

type group struct {
	count int64
	sum   int128
}

// Add accounts for one ledger row whose processing_time is processed.
func (b *Builder) Add(row ledger.Row, processed time.Time) {
	if b.groups == nil {
		b.init()
	}
	b.rows++
	if b.contract != nil && row.Custom != nil {
		b.addContractRow(&row)
	} else {
		if row.Amount <= 0 {
			b.nonPositive++
		}
		g := b.groups[groupKey{row.TransactionType, row.Currency}]
		if g == nil {
			// Clone: the caller's strings may alias a scan buffer that is about to be reused.
			g = &group{}
			b.groups[groupKey{strings.Clone(row.TransactionType), strings.Clone(row.Currency)}] = g
		}
		g.count++
		g.sum.add(row.Amount)
	}

	b.addHash(row.TransactionHash)
	b.addID(row.TransactionID)

	if len(b.latest) < LatestN || newer(&row, &b.latest[len(b.latest)-1]) {
		b.insertLatest(row)
	}

	if !processed.IsZero() {
		if b.firstProcessed.IsZero() || processed.Before(b.firstProcessed) {
			b.firstProcessed = processed
		}
		if processed.After(b.lastProcessed) {
			b.lastProcessed = processed
		}
	}
}

// NewBuilder returns a Builder whose sets are sized for about expectedRows rows (an
// Iceberg snapshot's total-records is a good figure). It is only an optimisation: growing
// a set of millions of entries rehashes it many times over, and the zero Builder does so.
func NewBuilder(expectedRows int) *Builder {
	b := &Builder{}
	b.initSized(max(expectedRows, 0))
	return b
}

func (b *Builder) init() { b.initSized(0) }

func (b *Builder) initSized(n int) {
	b.groups = make(map[groupKey]*group)
	b.hashes = make(map[[32]byte]struct{}, n)
	b.hashDups = make(map[[32]byte]int64)
	b.otherHashes = make(map[string]int64)
	b.ids = make(map[[16]byte]struct{}, n)
	b.longIDs = make(map[string]struct{})
}

func (b *Builder) addHash(h string) {
	k, ok := ledger.DecodeHash(h)
	if !ok {
		// Not the canonical form (upper case, wrong length): Spark compares strings, so
		// keep the string itself, lest "AB…" and "ab…" be counted as one hash.
		if n, seen := b.otherHashes[h]; seen {
			b.otherHashes[h] = n + 1
		} else {
			b.otherHashes[strings.Clone(h)] = 1
		}
		return
	}
	// Insert and compare lengths rather than look up then insert: one probe of a table
	// far larger than the CPU caches instead of two, and the common case is a new hash.
	n := len(b.hashes)
	b.hashes[k] = struct{}{}
	if len(b.hashes) > n {
		return
	}
	if c := b.hashDups[k]; c > 0 {
		b.hashDups[k] = c + 1
	} else {
		b.hashDups[k] = 2
	}
}

func (b *Builder) addID(id string) {
	var dup bool
	if len(id) < 16 {
		var k [16]byte
		k[0] = byte(len(id)) // the length keeps "A" and "A\x00" apart
		copy(k[1:], id)
		n := len(b.ids)
		b.ids[k] = struct{}{} // one probe, as in addHash
		dup = len(b.ids) == n
	} else {
		_, dup = b.longIDs[id]
		if !dup {
			b.longIDs[strings.Clone(id)] = struct{}{}
		}
	}
	if dup && len(b.idExamples) < maxDuplicateIDExamples && !slices.Contains(b.idExamples, id) {
		b.idExamples = append(b.idExamples, strings.Clone(id))
	}
}

// newer reports whether a sorts before b in the latest rows: a later event time first;
// on equal times (Spark would pick arbitrarily) the smaller transaction_id, then the
// smaller source position, so that the same table always gives the same report.
func newer(a, b *ledger.Row) bool {
	if c := a.EventTime.Compare(b.EventTime); c != 0 {
		return c > 0
	}
	if c := cmp.Or(
		strings.Compare(a.TransactionID, b.TransactionID),
		strings.Compare(a.SourceTopic, b.SourceTopic),
		cmp.Compare(a.SourcePartition, b.SourcePartition),
		cmp.Compare(a.SourceOffset, b.SourceOffset),
	); c != 0 {
		return c < 0
	}
	return false
}

func (b *Builder) insertLatest(row ledger.Row) {
	// Keep only what is shown, and clone it: these few rows outlive the scan's buffers.
	row = ledger.Row{
		TransactionID:   strings.Clone(row.TransactionID),
		AccountFrom:     strings.Clone(row.AccountFrom),
		AccountTo:       strings.Clone(row.AccountTo),
		Amount:          row.Amount,
		Currency:        strings.Clone(row.Currency),
		TransactionType: strings.Clone(row.TransactionType),
		EventTime:       row.EventTime,
		SourceTopic:     strings.Clone(row.SourceTopic),
		SourcePartition: row.SourcePartition,
		SourceOffset:    row.SourceOffset,
		Custom:          row.Custom, // a custom contract's scan gives copies
	}
	i := len(b.latest)
	for i > 0 && newer(&row, &b.latest[i-1]) {
		i--
	}
	if len(b.latest) == LatestN {
		b.latest = b.latest[:LatestN-1]
	}
	b.latest = slices.Insert(b.latest, i, row)
}

// Report returns the report over the rows added so far. It does not reset the Builder:
// more rows may be added and Report called again.
func (b *Builder) Report() *Report {
	r := &Report{
		Rows:                b.rows,
		DistinctHashes:      int64(len(b.hashes) + len(b.otherHashes)),
		DistinctIDs:         int64(len(b.ids) + len(b.longIDs)),
		NonPositiveAmounts:  b.nonPositive,
		DuplicateIDExamples: slices.Clone(b.idExamples),
		Summary:             []SummaryRow{},
		Duplicates:          []Duplicate{},
		Latest:              []LatestRow{},
		FirstProcessed:      b.firstProcessed,
		LastProcessed:       b.lastProcessed,
	}
	if r.DuplicateIDExamples == nil {
		r.DuplicateIDExamples = []string{}
	}

	scale, avgScale := AmountScale, AvgScale
	if c := b.contract; c != nil {
		r.GroupBy, r.AmountColumn, r.NoAmountCheck = c.Report.GroupBy, c.Report.Amount, !b.positive
		for _, f := range c.Fields {
			r.Columns = append(r.Columns, f.Name)
		}
		scale = c.Fields[b.amountAt].Type.Scale
		avgScale = scale + AvgScale - AmountScale
	}
	for k, g := range b.groups {
		sum := g.sum.big()
		row := SummaryRow{
			TransactionType: k.typ,
			Currency:        k.currency,
			Count:           g.count,
			Total:           Decimal{Unscaled: sum, Scale: scale},
			Avg:             Decimal{Unscaled: avgUnscaled(sum, g.count), Scale: avgScale},
		}
		if b.contract != nil {
			row.TransactionType, row.Group = "", strings.Split(k.typ, "\x1f")
		}
		r.Summary = append(r.Summary, row)
	}
	slices.SortFunc(r.Summary, func(a, b SummaryRow) int {
		return cmp.Or(
			cmp.Compare(b.Count, a.Count),
			strings.Compare(a.TransactionType, b.TransactionType),
			strings.Compare(a.Currency, b.Currency),
			slices.Compare(a.Group, b.Group),
		)
	})

	for k, n := range b.hashDups {
		r.Duplicates = append(r.Duplicates, Duplicate{TransactionHash: encodeHash(k), Count: n})
	}
	for h, n := range b.otherHashes {
		if n > 1 {
			r.Duplicates = append(r.Duplicates, Duplicate{TransactionHash: h, Count: n})
		}
	}
	slices.SortFunc(r.Duplicates, func(a, b Duplicate) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.TransactionHash, b.TransactionHash))
	})

	for _, row := range b.latest {
		if b.contract != nil && row.Custom != nil {
			l := LatestRow{TransactionID: row.TransactionID, EventTime: row.EventTime.UTC()}
			for i, f := range b.contract.Fields {
				l.Values = append(l.Values, row.Custom.Canonical(i, f.Type))
			}
			r.Latest = append(r.Latest, l)
			continue
		}
		r.Latest = append(r.Latest, LatestRow{
			TransactionID:   row.TransactionID,
			AccountFrom:     row.AccountFrom,
			AccountTo:       row.AccountTo,
			Amount:          NewDecimal(row.Amount, AmountScale),
			Currency:        row.Currency,
			TransactionType: row.TransactionType,
			EventTime:       row.EventTime.UTC(),
		})
	}
	return r
}

func encodeHash(k [32]byte) string {
	const digits = "0123456789abcdef"
	var b [64]byte
	for i, c := range k {
		b[2*i] = digits[c>>4]
		b[2*i+1] = digits[c&0xf]
	}
	return string(b[:])
}
