package report

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
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
	earlier     []*ledger.Rules          // rules of the ledger's earlier contracts (SetEarlierRules)
	committed   map[TopicPartition]int64 // the ledger's offsets map
	rejectsAt   map[TopicPartition]int64 // how far the rejects table is complete; nil: no rejects table
	rows        map[position][32]byte
	rejects     map[position]ledger.RejectRow
	ids         map[string]position
	seen        map[position]bool                // rows matched by a topic record
	seenRejects map[position]bool                // rejects matched by a topic record
	copies      []pendingRecord                  // valid records refused as copies of an accepted id
	gaps        map[TopicPartition][]OffsetRange // ranges the rejects table records as lost before processing
	logStart    map[TopicPartition]int64         // the topic's log starts; nil: unknown (nothing deleted)
	recreated   string                           // why the topic is not the one the tables' offsets name
	lost        []OffsetRange
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
	// Lost counts offsets lost before processing without a trace: deleted from the topic
	// (retention, DeleteRecords) before the pipeline read them, and in neither table nor
	// a recorded gap.
	Lost int64 `json:"lost_before_processing"`
	// Recreated is set when the topic is not the one the tables' offsets name (deleted and
	// created again): the reconciliation against it means nothing.
	Recreated bool `json:"topic_recreated"`
}

func (d Discrepancies) total() int64 {
	n := d.Missing + d.Duplicated + d.DuplicateIDs + d.Altered + d.Unexpected + d.Misjudged + d.Lost
	if d.Recreated {
		n++
	}
	return n
}

// PartitionFigures are one partition's counts.
type PartitionFigures struct {
	Partition string `json:"partition"`
	Committed int64  `json:"committed_offset"` // next offset, per the ledger's offsets map
	Records   int64  `json:"records"`          // data records below the committed offset
	Rows      int64  `json:"rows"`             // ledger rows from this partition
	Rejected  int64  `json:"rejected"`         // records refused: in the rejects table, or (without one) by the transform
	Pending   int64  `json:"pending"`          // records at or above the committed offset (not yet processed)
	LogStart  int64  `json:"log_start"`        // the topic's first offset now; records below were deleted
	// Deleted counts rows and rejects below the log start: processed, and since deleted
	// from the topic (retention), so no longer checkable against it.
	Deleted int64 `json:"deleted_after_processing"`
	// Gaps counts the offsets the rejects table records as lost before processing (run
	// --on-gap record): accounted for, never processed.
	Gaps int64 `json:"lost_recorded"`
	// Lost counts the offsets lost before processing without a trace (see Discrepancies).
	Lost int64 `json:"lost_unrecorded"`
}

// OffsetRange is a range of offsets of one partition, First to Last inclusive.
type OffsetRange struct {
	Partition string `json:"partition"`
	First     int64  `json:"first_offset"`
	Last      int64  `json:"last_offset"`
	// Recorded is true for a gap the rejects table records (accounted for), false for
	// offsets lost without a trace.
	Recorded bool `json:"recorded"`
}

// Len is how many offsets the range holds.
func (g OffsetRange) Len() int64 { return g.Last - g.First + 1 }

func (g OffsetRange) String() string {
	return fmt.Sprintf("%s offsets %d-%d (%d)", g.Partition, g.First, g.Last, g.Len())
}

// Reconciliation is the Reconciler's result.
type Reconciliation struct {
	Partitions []PartitionFigures `json:"partitions"`
	Discrepancies
	// First lists the first discrepancies found (at most 10), readable.
	First []string `json:"first_discrepancies"`
	// Gaps lists the ranges lost before processing: recorded ones (accounted for) and
	// unrecorded ones (discrepancies), by partition and offset.
	Gaps []OffsetRange `json:"lost_before_processing"`
	// Recreated says why the topic is not the one the tables' offsets name; "" when it is.
	Recreated string `json:"topic_recreated_reason"` // not topic_recreated: Discrepancies has that one
}

// NewReconciler returns a Reconciler bounded by the pipeline's committed offsets (next
// offset per partition; nil when nothing was committed): the ledger's, and how far the
// rejects table is complete (nil when there is no rejects table: refused records are then
// only required to be absent from the ledger).
func NewReconciler(committed, rejectsAt map[TopicPartition]int64) *Reconciler {
	r := &Reconciler{committed: committed, rejectsAt: rejectsAt, rows: map[position][32]byte{},
		rejects: map[position]ledger.RejectRow{}, ids: map[string]position{},
		seen: map[position]bool{}, seenRejects: map[position]bool{}, parts: map[TopicPartition]*PartitionFigures{},
		gaps: map[TopicPartition][]OffsetRange{}}
	for tp, off := range committed {
		r.part(tp).Committed = off
	}
	return r
}

// SetLogStarts tells the reconciler the topic's log start offsets as the topic was read:
// the records below them were deleted (retention, DeleteRecords), so table rows there are
// not expected to match a record, and offsets there that no table accounts for were lost
// before processing. Without it nothing is taken to be deleted.
func (r *Reconciler) SetLogStarts(starts map[TopicPartition]int64) {
	r.logStart = starts
	for tp, off := range starts {
		r.part(tp).LogStart = off
	}
}

// SetTopicRecreated records that the topic is not the one the tables' offsets name: it was
// deleted and created again (why says how that is known). The reconciliation fails.
func (r *Reconciler) SetTopicRecreated(why string) { r.recreated = why }

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
	if row.IsGap() {
		if row.LastOffset < row.SourceOffset {
			r.counts.Misjudged++
			r.problem("gap at %s/%d ends before it begins (last offset %d)", pos.TopicPartition, pos.Offset, row.LastOffset)
			return
		}
		g := OffsetRange{Partition: pos.TopicPartition.String(), First: row.SourceOffset, Last: row.LastOffset, Recorded: true}
		for _, o := range r.gaps[pos.TopicPartition] {
			if g.First <= o.Last && o.First <= g.Last {
				r.counts.Duplicated++
				r.problem("gaps %s and %s of the rejects table overlap", o, g)
				return
			}
		}
		r.gaps[pos.TopicPartition] = append(r.gaps[pos.TopicPartition], g)
		r.part(pos.TopicPartition).Gaps += g.Len()
		return
	}
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

// SetEarlierRules gives the rules of the contracts the ledger was written with before the
// one AddRecord is given, oldest first: a record whose outcome in the tables the current
// rules contradict is judged by the latest earlier rules that agree with it.
func (r *Reconciler) SetEarlierRules(rules []*ledger.Rules) { r.earlier = rules }

// agrees reports whether a decoding outcome matches what the tables hold for a record.
func agrees(rej *ledger.Reject, inLedger, inRejects bool, reason ledger.Reason) bool {
	switch {
	case rej == nil:
		return inLedger || inRejects && (reason == ledger.ReasonDuplicate || reason == ledger.ReasonConflictingDuplicate)
	case inRejects:
		return rej.Reason == reason
	}
	return !inLedger
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
	for _, g := range r.gaps[tp] {
		if offset >= g.First && offset <= g.Last {
			r.counts.Misjudged++
			r.problem("record %s/%d is in the topic, yet recorded as lost before processing (%s)", tp, offset, g)
		}
	}
	row, rej := rules.Decode(value)
	h, inLedger := r.rows[pos]
	if inLedger {
		r.seen[pos] = true
	}
	reject, inRejects := r.rejects[pos]
	if len(r.earlier) > 0 && !agrees(rej, inLedger, inRejects, reject.Reason) {
		// The table's contract changed since: judge the record by the contract it was
		// processed with, if an earlier one gives what the tables hold.
		for i := len(r.earlier) - 1; i >= 0; i-- {
			if erow, erej := r.earlier[i].Decode(value); agrees(erej, inLedger, inRejects, reject.Reason) {
				row, rej = erow, erej
				break
			}
		}
	}
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
	if r.recreated != "" {
		// Nothing else is worth saying: the offsets name records of another topic.
		res := &Reconciliation{Discrepancies: Discrepancies{Recreated: true}, Recreated: r.recreated,
			First: []string{r.recreated}}
		for _, f := range r.parts {
			res.Partitions = append(res.Partitions, *f)
		}
		sort.Slice(res.Partitions, func(i, j int) bool { return partLess(res.Partitions[i].Partition, res.Partitions[j].Partition) })
		return res
	}
	for pos := range r.rejects {
		if !r.seenRejects[pos] {
			if r.deleted(pos) {
				r.part(pos.TopicPartition).Deleted++
				continue
			}
			r.counts.Unexpected++
			r.problem("reject at %s/%d matches no record of the topic below the committed offset", pos.TopicPartition, pos.Offset)
		}
	}
	var stray []position
	for pos := range r.rows {
		if !r.seen[pos] {
			if r.deleted(pos) {
				r.part(pos.TopicPartition).Deleted++
				continue
			}
			stray = append(stray, pos)
		}
	}
	sort.Slice(stray, func(i, j int) bool { return less(stray[i], stray[j]) })
	for _, pos := range stray {
		r.counts.Unexpected++
		r.problem("ledger row at %s/%d matches no record of the topic below the committed offset", pos.TopicPartition, pos.Offset)
	}
	r.findLost()
	res := &Reconciliation{Discrepancies: r.counts, First: append([]string{}, r.problems...)}
	for _, gs := range r.gaps {
		res.Gaps = append(res.Gaps, gs...)
	}
	res.Gaps = append(res.Gaps, r.lost...)
	sort.Slice(res.Gaps, func(i, j int) bool {
		a, b := res.Gaps[i], res.Gaps[j]
		if a.Partition != b.Partition {
			return partLess(a.Partition, b.Partition)
		}
		return a.First < b.First
	})
	for _, f := range r.parts {
		res.Partitions = append(res.Partitions, *f)
	}
	sort.Slice(res.Partitions, func(i, j int) bool { return partLess(res.Partitions[i].Partition, res.Partitions[j].Partition) })
	return res
}

// deleted reports whether pos lies below its partition's log start: its record was
// deleted from the topic.
func (r *Reconciler) deleted(pos position) bool {
	start, ok := r.logStart[pos.TopicPartition]
	return ok && pos.Offset < start
}

// findLost finds, per partition, the offsets below the log start that no table accounts
// for: not a ledger row, not a reject, not in a recorded gap. They run from the lowest
// offset the tables hold (or the committed offset, for a partition they hold nothing of)
// to the log start; the tables' offsets say the pipeline was there, and the topic no
// longer holds what came after. A transaction marker takes an offset too and is never a
// row: a topic written with transactions shows its deleted markers here (see README).
// Without a rejects table, refused records leave holes by design: nothing is reported.
func (r *Reconciler) findLost() {
	if r.rejectsAt == nil {
		return
	}
	covered := map[TopicPartition][]int64{}
	for pos := range r.rows {
		if r.deleted(pos) {
			covered[pos.TopicPartition] = append(covered[pos.TopicPartition], pos.Offset)
		}
	}
	for pos := range r.rejects {
		if r.deleted(pos) {
			covered[pos.TopicPartition] = append(covered[pos.TopicPartition], pos.Offset)
		}
	}
	var parts []TopicPartition
	for tp := range r.logStart {
		parts = append(parts, tp)
	}
	sort.Slice(parts, func(i, j int) bool {
		return less(position{TopicPartition: parts[i]}, position{TopicPartition: parts[j]})
	})
	for _, tp := range parts {
		start := r.logStart[tp]
		offs := covered[tp]
		slices.Sort(offs)
		committed, known := r.committed[tp]
		lo := int64(-1)
		switch {
		case len(offs) > 0:
			lo = offs[0]
		case known:
			lo = committed
		case r.knowsTopic(tp.Topic):
			lo = 0 // a partition the pipeline never read, of a topic it reads, starts at 0 (engine.StartOffsets)
		}
		for _, g := range r.gaps[tp] {
			if lo < 0 || g.First < lo {
				lo = g.First
			}
		}
		if lo < 0 || lo >= start {
			continue
		}
		gaps := slices.Clone(r.gaps[tp])
		slices.SortFunc(gaps, func(a, b OffsetRange) int { return cmp.Compare(a.First, b.First) })
		next, i, j := lo, 0, 0 // next: the first offset not yet accounted for
		for next < start {
			switch {
			case i < len(offs) && offs[i] < next:
				i++
			case i < len(offs) && offs[i] == next:
				next++
				i++
			case j < len(gaps) && gaps[j].Last < next:
				j++
			case j < len(gaps) && gaps[j].First <= next:
				next = gaps[j].Last + 1
				j++
			default:
				end := start // the hole runs to what comes next: a row, a gap or the log start
				if i < len(offs) {
					end = min(end, offs[i])
				}
				if j < len(gaps) {
					end = min(end, gaps[j].First)
				}
				g := OffsetRange{Partition: tp.String(), First: next, Last: end - 1}
				r.lost = append(r.lost, g)
				r.counts.Lost += g.Len()
				r.part(tp).Lost += g.Len()
				r.problem("%s were lost before processing: deleted from the topic before the pipeline read them, and not recorded as a gap", g)
				next = end
			}
		}
	}
}

// knowsTopic reports whether the committed offsets name a partition of topic.
func (r *Reconciler) knowsTopic(topic string) bool {
	for tp := range r.committed {
		if tp.Topic == topic {
			return true
		}
	}
	return false
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
	if c.Recreated != "" {
		return Check{Name: CheckExactlyOnce, Passed: false, Figure: 1, Detail: c.Recreated}
	}
	var recorded, deleted int64
	for _, p := range c.Partitions {
		recorded += p.Gaps
		deleted += p.Deleted
	}
	if n := c.total(); n > 0 {
		return Check{Name: CheckExactlyOnce, Passed: false, Figure: n,
			Detail: fmt.Sprintf("%d discrepancies (missing %d, duplicated %d, duplicate ids %d, altered %d, unexpected %d, misjudged %d, lost before processing %d); first: %s",
				n, c.Missing, c.Duplicated, c.DuplicateIDs, c.Altered, c.Unexpected, c.Misjudged, c.Lost, c.First[0])}
	}
	detail := fmt.Sprintf("Exactly once against the topic: %d records below the committed offsets, %d rows, %d rejected, 0 lost, 0 duplicated",
		records, rows, rejected)
	if deleted > 0 {
		detail += fmt.Sprintf("; %d rows and rejects below the log start (their records were deleted after processing)", deleted)
	}
	if recorded > 0 {
		detail += fmt.Sprintf("; %d offsets lost before processing, recorded as gaps in the rejects table", recorded)
	}
	return Check{Name: CheckExactlyOnce, Passed: true, Figure: records, Detail: detail}
}

// WriteText prints the per-partition figures and the first discrepancies.
func (c *Reconciliation) WriteText(w io.Writer) error {
	header := []string{"partition", "committed_offset", "log_start", "records", "rows", "rejected", "pending", "deleted_after_processing", "lost_recorded", "lost_unrecorded"}
	var rows [][]string
	for _, p := range c.Partitions {
		rows = append(rows, []string{p.Partition, fmt.Sprint(p.Committed), fmt.Sprint(p.LogStart), fmt.Sprint(p.Records),
			fmt.Sprint(p.Rows), fmt.Sprint(p.Rejected), fmt.Sprint(p.Pending), fmt.Sprint(p.Deleted),
			fmt.Sprint(p.Gaps), fmt.Sprint(p.Lost)})
	}
	if _, err := fmt.Fprintf(w, "Reconciliation with the topic (read_committed):\n%s", showString(header, rows, len(rows), 0)); err != nil {
		return err
	}
	if c.Recreated != "" {
		_, err := fmt.Fprintln(w, "  topic re-created:", c.Recreated)
		return err
	}
	for _, g := range c.Gaps {
		what := "lost before processing, NOT recorded (a discrepancy)"
		if g.Recorded {
			what = "lost before processing, recorded as a gap in the rejects table (accounted for)"
		}
		if _, err := fmt.Fprintf(w, "  %s: %s\n", what, g); err != nil {
			return err
		}
	}
	for _, p := range c.First {
		if _, err := fmt.Fprintln(w, "  discrepancy:", p); err != nil {
			return err
		}
	}
	return nil
}
