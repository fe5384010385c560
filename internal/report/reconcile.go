package report

import (
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

type position struct {
	TopicPartition
	Offset int64
}

// CheckExactlyOnce names the reconciliation's check.
const CheckExactlyOnce = "exactly_once"

// Reconciler proves the invariant of docs/design.md §4.9 from the outside: fed the ledger's rows and
// the topic's records (read with read_committed), it finds every record below the
// committed offsets that is missing from the ledger, doubled, or altered, and every ledger
// row the topic does not account for. Memory is O(rows): a source position and a hash per row.
type Reconciler struct {
	committed   map[TopicPartition]int64 // the ledger's offsets map
	rejectsAt   map[TopicPartition]int64 // how far the rejects table is complete; nil: no rejects table
	rows        map[position][32]byte
	rejects     map[position]ledger.RejectRow
	ids         map[string]position
	seen        map[position]bool // rows matched by a topic record
	seenRejects map[position]bool // rejects matched by a topic record
	copies      []pendingRecord   // valid records refused as copies of an accepted id
	parts       map[TopicPartition]*PartitionFigures
	problems    []string
	counts      Discrepancies
}

// Discrepancies counts what the reconciliation found wrong.
type Discrepancies struct {
	Missing      int64 `json:"missing"`       // valid records below the committed offset with no row
	Duplicated   int64 `json:"duplicated"`    // source positions with more than one row
	DuplicateIDs int64 `json:"duplicate_ids"` // transaction_ids with more than one row
	Altered      int64 `json:"altered"`       // rows whose hash differs from their record's
	Unexpected   int64 `json:"unexpected"`    // rows for rejected records, or at no record of the topic
	Misjudged    int64 `json:"misjudged"`     // rejects whose reason does not match their record
}

func (d Discrepancies) total() int64 {
	return d.Missing + d.Duplicated + d.DuplicateIDs + d.Altered + d.Unexpected + d.Misjudged
}

// PartitionFigures are one partition's counts.
type PartitionFigures struct {
	Partition string `json:"partition"`
	Committed int64  `json:"committed_offset"` // next offset, per the ledger's offsets map
	Records   int64  `json:"records"`          // data records below the committed offset
	Rows      int64  `json:"rows"`             // ledger rows from this partition
	Rejected  int64  `json:"rejected"`         // records refused: in the rejects table, or (without one) by the transform
	Pending   int64  `json:"pending"`          // records at or above the committed offset (not yet processed)
}

// Reconciliation is the Reconciler's result.
type Reconciliation struct {
	Partitions []PartitionFigures `json:"partitions"`
	Discrepancies
	// First lists the first discrepancies found (at most 10), readable.
	First []string `json:"first_discrepancies"`
}

// NewReconciler returns a Reconciler bounded by the pipeline's committed offsets (next
// offset per partition; nil when nothing was committed): the ledger's, and how far the
// rejects table is complete (nil when there is no rejects table: refused records are then
// only required to be absent from the ledger).
func NewReconciler(committed, rejectsAt map[TopicPartition]int64) *Reconciler {
	r := &Reconciler{committed: committed, rejectsAt: rejectsAt, rows: map[position][32]byte{},
		rejects: map[position]ledger.RejectRow{}, ids: map[string]position{},
		seen: map[position]bool{}, seenRejects: map[position]bool{}, parts: map[TopicPartition]*PartitionFigures{}}
	for tp, off := range committed {
		r.part(tp).Committed = off
	}
	return r
}

func (r *Reconciler) part(tp TopicPartition) *PartitionFigures {
	f := r.parts[tp]
	if f == nil {
		f = &PartitionFigures{Partition: tp.String()}
		if off, ok := r.committed[tp]; ok {
			f.Committed = off
		}
		r.parts[tp] = f
	}
	return f
}

func (r *Reconciler) problem(format string, args ...any) {
	if len(r.problems) < 10 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// AddRow feeds one ledger row.
func (r *Reconciler) AddRow(row ledger.Row) {
	pos := position{TopicPartition{row.SourceTopic, row.SourcePartition}, row.SourceOffset}
	r.part(pos.TopicPartition).Rows++
	var h [32]byte
	if n, err := hex.Decode(h[:], []byte(row.TransactionHash)); err != nil || n != 32 {
		r.counts.Altered++
		r.problem("row %s at %s/%d has a malformed hash %q", row.TransactionID, pos.TopicPartition, pos.Offset, row.TransactionHash)
	}
	if _, dup := r.rows[pos]; dup {
		r.counts.Duplicated++
		r.problem("source position %s/%d has more than one row (transaction %s)", pos.TopicPartition, pos.Offset, row.TransactionID)
	} else {
		r.rows[pos] = h
	}
	if other, dup := r.ids[row.TransactionID]; dup {
		r.counts.DuplicateIDs++
		r.problem("transaction_id %s appears twice: at %s/%d and %s/%d", row.TransactionID,
			other.TopicPartition, other.Offset, pos.TopicPartition, pos.Offset)
	} else {
		r.ids[row.TransactionID] = pos
	}
}

// AddReject feeds one row of the rejects table.
func (r *Reconciler) AddReject(row ledger.RejectRow) {
	pos := position{TopicPartition{row.SourceTopic, row.SourcePartition}, row.SourceOffset}
	if _, dup := r.rejects[pos]; dup {
		r.counts.Duplicated++
		r.problem("source position %s/%d is in the rejects table twice", pos.TopicPartition, pos.Offset)
		return
	}
	row.Key, row.Value, row.Headers = nil, nil, nil // keep the verdict, not the bytes
	r.rejects[pos] = row
}

// pendingRecord is a valid record whose fate depends on which copy of its id the ledger
// holds, known only once every row was fed.
type pendingRecord struct {
	pos  position
	id   string
	hash string
}

// AddRecord feeds one data record of the topic (control records must not be fed).
func (r *Reconciler) AddRecord(tp TopicPartition, offset int64, value []byte, rules *ledger.Rules) {
	f := r.part(tp)
	pos := position{tp, offset}
	committed, ok := r.committed[tp]
	if !ok || offset >= committed {
		f.Pending++
		return
	}
	f.Records++
	row, rej := rules.Decode(value)
	h, inLedger := r.rows[pos]
	if inLedger {
		r.seen[pos] = true
	}
	reject, inRejects := r.rejects[pos]
	if inRejects {
		r.seenRejects[pos] = true
	}
	if inLedger && inRejects {
		r.counts.Duplicated++
		r.problem("record %s/%d is in both the ledger and the rejects table", tp, offset)
		return
	}
	if inRejects {
		f.Rejected++
	}
	switch {
	case rej != nil && inLedger:
		r.counts.Unexpected++
		r.problem("record %s/%d was refused (%s) yet has a ledger row", tp, offset, rej.Reason)
	case rej != nil && inRejects:
		if reject.Reason != rej.Reason {
			r.counts.Misjudged++
			r.problem("record %s/%d is rejected as %s, but its content says %s", tp, offset, reject.Reason, rej.Reason)
		}
	case rej != nil:
		if r.rejectsAt == nil {
			f.Rejected++ // no rejects table: refused records are only logged
		} else if r.rejectsComplete(tp, offset) {
			r.counts.Missing++
			r.problem("record %s/%d was refused (%s) but is in neither table", tp, offset, rej.Reason)
		} else {
			f.Pending++
		}
	case inLedger:
		if hex.EncodeToString(h[:]) != row.TransactionHash {
			r.counts.Altered++
			r.problem("row at %s/%d does not match its record (transaction %s)", tp, offset, row.TransactionID)
		}
	case inRejects:
		// A valid record refused as a copy of an accepted id: checked against the ledger's
		// owner of the id once every row is known.
		r.copies = append(r.copies, pendingRecord{pos: pos, id: row.TransactionID, hash: row.TransactionHash})
		if reject.Reason != ledger.ReasonDuplicate && reject.Reason != ledger.ReasonConflictingDuplicate {
			r.counts.Misjudged++
			r.problem("valid record %s/%d is rejected as %s", tp, offset, reject.Reason)
		}
	case r.rejectsAt != nil && !r.rejectsComplete(tp, offset):
		// Possibly a duplicate whose reject is not committed yet; it must not be in the ledger
		// unless it owns the id, which the ledger would show. Count it pending.
		if _, owned := r.ids[row.TransactionID]; owned {
			f.Pending++
			return
		}
		r.counts.Missing++
		r.problem("record %s/%d (transaction %s) is below the committed offset %d but not in the ledger",
			tp, offset, row.TransactionID, committed)
	default:
		r.counts.Missing++
		r.problem("record %s/%d (transaction %s) is below the committed offset %d but not in the ledger",
			tp, offset, row.TransactionID, committed)
	}
}

func (r *Reconciler) rejectsComplete(tp TopicPartition, offset int64) bool {
	at, ok := r.rejectsAt[tp]
	return ok && offset < at
}

// Result finishes the reconciliation: rows that no record accounted for are unexpected,
// and every record refused as a copy must match the ledger's owner of its id.
func (r *Reconciler) Result() *Reconciliation {
	for _, c := range r.copies {
		owner, ok := r.ids[c.id]
		if !ok {
			r.counts.Misjudged++
			r.problem("record %s/%d is rejected as a duplicate of transaction %s, which is not in the ledger", c.pos.TopicPartition, c.pos.Offset, c.id)
			continue
		}
		same := hex.EncodeToString(func() []byte { h := r.rows[owner]; return h[:] }()) == c.hash
		if want := r.rejects[c.pos].Reason; (want == ledger.ReasonDuplicate) != same {
			r.counts.Misjudged++
			r.problem("record %s/%d is rejected as %s of the row at %s/%d, but the hashes say otherwise", c.pos.TopicPartition, c.pos.Offset, want, owner.TopicPartition, owner.Offset)
		}
	}
	for pos := range r.rejects {
		if !r.seenRejects[pos] {
			r.counts.Unexpected++
			r.problem("reject at %s/%d matches no record of the topic below the committed offset", pos.TopicPartition, pos.Offset)
		}
	}
	var stray []position
	for pos := range r.rows {
		if !r.seen[pos] {
			stray = append(stray, pos)
		}
	}
	sort.Slice(stray, func(i, j int) bool { return less(stray[i], stray[j]) })
	for _, pos := range stray {
		r.counts.Unexpected++
		r.problem("ledger row at %s/%d matches no record of the topic below the committed offset", pos.TopicPartition, pos.Offset)
	}
	res := &Reconciliation{Discrepancies: r.counts, First: append([]string{}, r.problems...)}
	for _, f := range r.parts {
		res.Partitions = append(res.Partitions, *f)
	}
	sort.Slice(res.Partitions, func(i, j int) bool { return partLess(res.Partitions[i].Partition, res.Partitions[j].Partition) })
	return res
}

func less(a, b position) bool {
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	if a.Partition != b.Partition {
		return a.Partition < b.Partition
	}
	return a.Offset < b.Offset
}

// partLess orders "topic/N" names by topic, then by N as a number.
func partLess(a, b string) bool {
	ta, na := splitPart(a)
	tb, nb := splitPart(b)
	if ta != tb {
		return ta < tb
	}
	return na < nb
}

func splitPart(s string) (string, int) {
	i := strings.LastIndexByte(s, '/')
	n := 0
	fmt.Sscan(s[i+1:], &n)
	return s[:i], n
}

// Check turns the reconciliation into a validation check.
func (c *Reconciliation) Check() Check {
	var records, rows, rejected int64
	for _, p := range c.Partitions {
		records += p.Records
		rejected += p.Rejected
		rows += p.Rows
	}
	if n := c.total(); n > 0 {
		return Check{Name: CheckExactlyOnce, Passed: false, Figure: n,
			Detail: fmt.Sprintf("%d discrepancies (missing %d, duplicated %d, duplicate ids %d, altered %d, unexpected %d, misjudged %d); first: %s",
				n, c.Missing, c.Duplicated, c.DuplicateIDs, c.Altered, c.Unexpected, c.Misjudged, c.First[0])}
	}
	return Check{Name: CheckExactlyOnce, Passed: true, Figure: records,
		Detail: fmt.Sprintf("Exactly once against the topic: %d records below the committed offsets, %d rows, %d rejected, 0 lost, 0 duplicated",
			records, rows, rejected)}
}

// WriteText prints the per-partition figures and the first discrepancies.
func (c *Reconciliation) WriteText(w io.Writer) error {
	header := []string{"partition", "committed_offset", "records", "rows", "rejected", "pending"}
	var rows [][]string
	for _, p := range c.Partitions {
		rows = append(rows, []string{p.Partition, fmt.Sprint(p.Committed), fmt.Sprint(p.Records),
			fmt.Sprint(p.Rows), fmt.Sprint(p.Rejected), fmt.Sprint(p.Pending)})
	}
	if _, err := fmt.Fprintf(w, "Reconciliation with the topic (read_committed):\n%s", showString(header, rows, len(rows), 0)); err != nil {
		return err
	}
	for _, p := range c.First {
		if _, err := fmt.Fprintln(w, "  discrepancy:", p); err != nil {
			return err
		}
	}
	return nil
}
