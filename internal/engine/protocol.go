package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file holds the rules of the exactly-once protocol (docs/design.md §4) as pure
// functions, each used by the engine (or by verify) and table-tested in protocol_test.go:
//
//   - the newest snapshot of a pipeline in a table's history (NewestOfPipeline): the state
//     every decision below starts from;
//   - how far the rejects table is complete (RejectsComplete), and what a batch adds to
//     the ledger's Clean map (CleanAfter);
//   - where a newly assigned partition resumes (ResumeAt, StartOffsets);
//   - whether reading can go on at a position: records deleted before processing, a log
//     truncated below it (CheckPosition), a topic re-created or shrunk (CheckTopic);
//   - what a batch claims of a table (ClaimOf);
//   - what a failed or unknown commit means (Settle), and what a commit carries (Merge).
//
// The engine (engine.go, commit.go) only feeds them what it read and carries out their
// answers; none of them does I/O or keeps state.

// ErrHistoryTruncated reports that a table's history was cut (snapshots expired) before any
// snapshot of the pipeline: its offsets map may have been in what was cut, and starting
// over from the configured position would write everything again.
var ErrHistoryTruncated = errors.New("snapshot history truncated before any snapshot of this pipeline")

// SnapshotLink is what NewestOfPipeline needs of one snapshot of a branch's history.
type SnapshotLink struct {
	// Parent is the previous snapshot of the branch; 0 for the branch's first snapshot.
	Parent int64
	// Pipeline is the ledgerstream.pipeline of the snapshot's summary, "" for another
	// writer's commit (maintenance, a backfill).
	Pipeline string
}

// NewestOfPipeline finds the newest snapshot of pipeline in a branch's history: walking
// back from head along parents, the first snapshot whose summary names the pipeline
// (another writer's commits in between are skipped: their summaries carry no offsets of
// ours). lookup returns a snapshot by id, false when the table no longer holds it.
//
// It returns 0 when the history, whole back to the branch's first snapshot, holds no
// snapshot of the pipeline (it never committed: partitions start at the configured
// position), and ErrHistoryTruncated when the walk reaches an expired snapshot first.
func NewestOfPipeline(head int64, pipeline string, lookup func(id int64) (SnapshotLink, bool)) (int64, error) {
	var seen map[int64]bool // allocated only for long walks: usually the head is ours
	for id, steps := head, 0; id != 0; steps++ {
		s, ok := lookup(id)
		if !ok {
			return 0, fmt.Errorf("%w (snapshot %d is missing)", ErrHistoryTruncated, id)
		}
		if s.Pipeline == pipeline {
			return id, nil
		}
		if steps >= 8 {
			if seen == nil {
				seen = map[int64]bool{}
			}
			if seen[id] {
				return 0, fmt.Errorf("snapshot ancestry of %d has a cycle at %d", head, id)
			}
			seen[id] = true
		}
		id = s.Parent
	}
	return 0, nil
}

// RejectsComplete is how far the rejects table is known complete on p: the larger of its
// own offsets map (rejects) and the ledger's Clean map (clean; batches without rejects move
// only that one, instead of committing an empty snapshot to the rejects table). false when
// neither names p.
func RejectsComplete(p Partition, rejects, clean Offsets) (int64, bool) {
	r, rok := rejects[p]
	c, cok := clean[p]
	switch {
	case rok && cok:
		return max(r, c), true
	case rok:
		return r, true
	case cok:
		return c, true
	}
	return 0, false
}

// Progress is what the tables say of a pipeline's progress, as of their last known states:
// the whole input of the resume rule.
type Progress struct {
	// Ledger is the ledger's offsets map, Clean its Clean map.
	Ledger, Clean Offsets
	// Rejects is the rejects table's offsets map. HasRejects is false when the pipeline has
	// no rejects table: then the ledger alone says how far a partition is done.
	Rejects    Offsets
	HasRejects bool
}

// RejectsFrom is how far the rejects table is complete on p (RejectsComplete). Without a
// rejects table, or when neither of its maps names p (a ledger written before the Clean
// map existed), it is the ledger's offset.
func (pr Progress) RejectsFrom(p Partition) (int64, bool) {
	if pr.HasRejects {
		if off, ok := RejectsComplete(p, pr.Rejects, pr.Clean); ok {
			return off, true
		}
	}
	off, ok := pr.Ledger[p]
	return off, ok
}

// ResumeAt is where reading p must start so that every table gets what it lacks: the
// smaller of the ledger's offset and the rejects table's (RejectsFrom). false when no table
// has seen p.
func ResumeAt(p Partition, pr Progress) (int64, bool) {
	l, lok := pr.Ledger[p]
	r, rok := pr.RejectsFrom(p)
	switch {
	case lok && rok:
		return min(l, r), true
	case lok:
		return l, true
	case rok:
		return r, true
	}
	return 0, false
}

// StartOffsets returns where each newly assigned partition starts: ResumeAt, or the
// configured starting position (OffsetEarliest or OffsetLatest) for a partition no table
// has seen. A partition no table has seen, of a topic the tables already read, was added
// since (or never had a record the pipeline read): it starts at its first offset, 0, when
// the pipeline reads from the earliest, so that records retention deleted before it got
// there are found as a gap (CheckPosition) rather than skipped; and at its earliest offset
// when the pipeline was set to start at the latest, since its records all came after the
// pipeline began (Spark's rule for new partitions). Kafka's consumer group offsets play no
// part: they are advisory.
func StartOffsets(parts []Partition, pr Progress, starting int64) Offsets {
	start := make(Offsets, len(parts))
	for _, p := range parts {
		switch off, ok := ResumeAt(p, pr); {
		case ok:
			start[p] = off
		case knowsTopic(pr.Ledger, p.Topic) && starting == OffsetEarliest:
			start[p] = 0
		case knowsTopic(pr.Ledger, p.Topic):
			start[p] = OffsetEarliest
		default:
			start[p] = starting
		}
	}
	return start
}

// CleanRead is what CleanAfter needs of a batch's reading of one partition.
type CleanRead struct {
	// First is the first offset read, End the offset after the last.
	First, End int64
	// Rejects: the batch holds a reject of the partition.
	Rejects bool
	// RejectsKnown: some table said how far the rejects table is complete on the
	// partition when the batch began reading it (Progress.RejectsFrom's ok).
	RejectsKnown bool
}

// CleanAfter is the ledger's Clean map after a batch (the first trap of docs/design.md
// §4.8): every partition the batch read without finding a reject is known complete in the
// rejects table up to the batch's end, though nothing is committed to the rejects table.
// A partition with rejects stays where it was, since its rejects are written only after
// the ledger commit (the second trap: no map may get ahead of its table); if no table has
// seen it, it gets the batch's first offset, so that a crash between the two commits
// resumes there rather than at the configured starting position.
func CleanAfter(current Offsets, read map[Partition]CleanRead) Offsets {
	clean := current.Clone()
	for p, r := range read {
		switch {
		case !r.Rejects:
			clean[p] = r.End
		case !r.RejectsKnown:
			if _, ok := clean[p]; !ok {
				clean[p] = r.First
			}
		}
	}
	return clean
}

func knowsTopic(o Offsets, topic string) bool {
	for p := range o {
		if p.Topic == topic {
			return true
		}
	}
	return false
}

// OnGap is what a pipeline does when records were deleted from the topic before it read
// them (retention or DeleteRecords overtook it).
type OnGap int

const (
	// GapFail stops the pipeline with a GapError: nothing past the gap is committed.
	GapFail OnGap = iota
	// GapRecord writes the gap as one row of the rejects table (reason
	// lost_before_processing, its first and last offset), in the commit that moves the
	// offsets past it, and reads on from the log start.
	GapRecord
)

// ParseOnGap reads the --on-gap flag's values, fail and record.
func ParseOnGap(s string) (OnGap, error) {
	switch s {
	case "fail", "":
		return GapFail, nil
	case "record":
		return GapRecord, nil
	}
	return GapFail, fmt.Errorf("--on-gap %q: want fail or record", s)
}

func (g OnGap) String() string {
	if g == GapRecord {
		return "record"
	}
	return "fail"
}

// Gap is a range of offsets of one partition whose records were deleted before the
// pipeline read them: First to Last, inclusive.
type Gap struct {
	Partition
	First, Last int64
}

// Len is how many offsets the gap holds. Most are records; a transaction marker takes an
// offset too, and nothing is left to tell which.
func (g Gap) Len() int64 { return g.Last - g.First + 1 }

// Position is the verdict of CheckPosition.
type Position int

const (
	// ReadOn: the position lies within the log.
	ReadOn Position = iota
	// GapStop: records from the position up to the log start were deleted before they
	// were read, and the pipeline stops (GapFail).
	GapStop
	// GapSkip: the same, and the gap is recorded and reading goes on at the log start
	// (GapRecord).
	GapSkip
	// Truncated: the position lies past the log's end: the log lost records the pipeline
	// had read (the topic was re-created, or an unclean leader election truncated it). No
	// setting makes reading on safe: the offsets now name other records, or none.
	Truncated
)

// CheckPosition is the rule for a partition whose reading continues at pos (where the
// tables resume it, or where a batch has read to), given its log start and end offsets
// now: read on, stop at a gap or record it (onGap), or stop at a truncated log. The gap,
// when there is one, is pos to logStart-1.
func CheckPosition(p Partition, pos, logStart, end int64, onGap OnGap) (Position, Gap) {
	switch {
	case pos > end:
		return Truncated, Gap{}
	case pos < logStart:
		g := Gap{Partition: p, First: pos, Last: logStart - 1}
		if onGap == GapRecord {
			return GapSkip, g
		}
		return GapStop, g
	}
	return ReadOn, Gap{}
}

// GapError is the refusal of a pipeline that found records deleted before it read them.
type GapError struct {
	Gap
	LogStart int64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("%s: offsets %d-%d (%d records) were deleted from the topic before the pipeline read them "+
		"(the log now starts at %d; the tables resume at %d): retention or DeleteRecords overtook the pipeline, and "+
		"these records are in neither table. Nothing past them was committed. To record the loss as a gap in the "+
		"rejects table (reason lost_before_processing) and go on, run with --on-gap record; to keep the ledger whole, "+
		"publish the records again from their origin first", e.Partition, e.First, e.Last, e.Len(), e.LogStart, e.First)
}

// TopicChangedError is the refusal of a pipeline whose tables' offsets name records of a
// topic that is no longer there: deleted and created again, shrunk, or truncated.
type TopicChangedError struct {
	Topic string
	// What changed, in words.
	What string
}

func (e *TopicChangedError) Error() string {
	return fmt.Sprintf("topic %s is not the topic the tables' offsets were read from: %s. Its offsets now name other "+
		"records (or none): reading on would skip the new records or take them for ones already processed, so "+
		"nothing was read into the tables. To process the topic as it is now, run a new pipeline into a new table "+
		"(--pipeline and --table; verify reconciles one table with one topic), and keep this table as the record "+
		"of the old topic", e.Topic, e.What)
}

// CheckTopic compares the topic the tables' offsets were read from (recordedID, "" when
// none was recorded, and the offsets map) with the topic now. It returns nil when nothing
// says it is another topic, and a TopicChangedError when its id changed (deleted and
// created again), it lost partitions the tables hold offsets of, or a partition ends below
// the offset the tables hold for it.
func CheckTopic(recordedID string, offsets Offsets, now TopicState) *TopicChangedError {
	if recordedID != "" && now.ID != "" && recordedID != now.ID {
		return &TopicChangedError{Topic: now.Topic, What: fmt.Sprintf(
			"its id is %s, and was %s when the pipeline last committed: it was deleted and created again", now.ID, recordedID)}
	}
	var parts []Partition
	for p := range offsets {
		if p.Topic == now.Topic {
			parts = append(parts, p)
		}
	}
	SortPartitions(parts)
	for _, p := range parts {
		if p.Partition >= now.Partitions {
			return &TopicChangedError{Topic: now.Topic, What: fmt.Sprintf(
				"it has %d partitions, and the tables hold offsets of partition %d: it was re-created with fewer", now.Partitions, p.Partition)}
		}
	}
	for _, p := range parts {
		if end, ok := now.End[p]; ok && offsets[p] > end {
			return &TopicChangedError{Topic: now.Topic, What: fmt.Sprintf(
				"partition %d ends at offset %d, below offset %d that the tables resume from: it was re-created, or its log truncated",
				p.Partition, end, offsets[p])}
		}
	}
	return nil
}

// MarshalTopicIDs encodes topic ids by name as summaries carry them: {"topic":"id"}.
func MarshalTopicIDs(ids map[string]string) string {
	b, _ := json.Marshal(ids) // a map of strings always marshals, keys sorted
	return string(b)
}

// UnmarshalTopicIDs decodes MarshalTopicIDs' JSON.
func UnmarshalTopicIDs(s string) (map[string]string, error) {
	var ids map[string]string
	if err := json.Unmarshal([]byte(s), &ids); err != nil {
		return nil, fmt.Errorf("decode topic ids %q: %w", s, err)
	}
	return ids, nil
}

// Span is the part of one partition that a batch covers: the records from the table's
// committed offset From (the position the batch continues from) up to To (exclusive).
type Span struct {
	// From is the table's offset for the partition when the batch began reading it.
	// HasFrom is false when the table had no entry for the partition (first batch ever).
	From    int64
	HasFrom bool
	To      int64
}

// Claim is what a batch says it did to one table: for each partition it moves, the span.
type Claim map[Partition]Span

// ClaimOf is what a batch claims of a table, given for each partition it read where the
// table stood (From, HasFrom) and where the reading ended (To): the partitions where it
// read records the table does not hold yet. A partition read only below the table's offset
// (a replay after a crash, for the other table's sake) is not claimed.
func ClaimOf(read map[Partition]Span) Claim {
	c := Claim{}
	for p, s := range read {
		if !s.HasFrom || s.To > s.From {
			c[p] = s
		}
	}
	return c
}

// Outcome is the verdict on a batch whose commit has not (yet) succeeded.
type Outcome int

// The outcomes of Settle.
const (
	// Retry: the table still stands where the batch began on every partition it covers;
	// nobody took the work. Merge the offsets map and commit (again).
	Retry Outcome = iota
	// Landed: the table shows the batch's end on every partition, and an earlier attempt of
	// this batch may have made it so (a commit whose acknowledgement was lost). Nothing to
	// redo.
	Landed
	// Fenced: someone else moved at least one of the partitions (a rebalance, or this
	// worker is a zombie). Drop the batch and its files and re-seek to the table.
	Fenced
)

func (o Outcome) String() string {
	switch o {
	case Retry:
		return "retry"
	case Landed:
		return "landed"
	case Fenced:
		return "fenced"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Settle decides what a batch's claim means against the table's current offsets map. It
// is the fencing rule: a batch may be committed only on top of the table state it
// continues from, partition by partition. mayHaveLanded says whether an attempt of this
// batch has an unknown outcome (it may have been applied); without one, a table that
// already shows the batch's ends shows someone else's commit of the same work, and the
// batch is Fenced, not Landed. moved lists the partitions that make it Fenced.
func Settle(claim Claim, current Offsets, mayHaveLanded bool) (outcome Outcome, moved []Partition) {
	atStart, atEnd := 0, 0
	for p, s := range claim {
		off, ok := current[p]
		switch {
		case ok == s.HasFrom && (!ok || off == s.From):
			atStart++
		case ok && off == s.To:
			atEnd++
		default:
			moved = append(moved, p)
		}
	}
	switch {
	case len(moved) == 0 && atEnd == 0:
		return Retry, nil
	case len(moved) == 0 && atStart == 0 && mayHaveLanded:
		return Landed, nil
	}
	// Partly at the end and partly at the start cannot come from one atomic commit of ours,
	// and all at the end without an attempt that may have landed is not ours either:
	// someone else committed these partitions. Fence on all that are not where we began.
	for p, s := range claim {
		if off, ok := current[p]; ok && off == s.To && !(s.HasFrom && off == s.From) {
			moved = append(moved, p)
		}
	}
	SortPartitions(moved)
	return Fenced, moved
}

// Merge returns the offsets map a commit must carry: the table's current map, which may
// hold other workers' partitions, with the batch's partitions moved to their ends.
func Merge(current Offsets, claim Claim) Offsets {
	m := current.Clone()
	for p, s := range claim {
		m[p] = s.To
	}
	return m
}

// SortPartitions orders partitions by topic, then number, for stable logs and output.
func SortPartitions(ps []Partition) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Topic != ps[j].Topic {
			return ps[i].Topic < ps[j].Topic
		}
		return ps[i].Partition < ps[j].Partition
	})
}

// MarshalOffsets encodes an offsets map as the JSON that snapshot summaries carry:
// {"topic":{"2":7,"10":5}}, topics sorted, partitions in numeric order (as Spark's Kafka
// source writes them). It is the one encoding of the map, for summaries and for logs.
func MarshalOffsets(o Offsets) string {
	byTopic := make(map[string][]int32)
	for p := range o {
		byTopic[p.Topic] = append(byTopic[p.Topic], p.Partition)
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range topics {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(t) // a string always marshals
		b.Write(name)
		b.WriteString(":{")
		parts := byTopic[t]
		slices.Sort(parts)
		for j, p := range parts {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('"')
			b.WriteString(strconv.FormatInt(int64(p), 10))
			b.WriteString(`":`)
			b.WriteString(strconv.FormatInt(o[Partition{Topic: t, Partition: p}], 10))
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.String()
}

// UnmarshalOffsets decodes MarshalOffsets' JSON.
func UnmarshalOffsets(s string) (Offsets, error) {
	var byTopic map[string]map[string]int64
	if err := json.Unmarshal([]byte(s), &byTopic); err != nil {
		return nil, fmt.Errorf("decode offsets map %q: %w", s, err)
	}
	o := make(Offsets)
	for topic, parts := range byTopic {
		for ps, off := range parts {
			n, err := strconv.ParseInt(ps, 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("decode offsets map: bad partition %q of topic %q", ps, topic)
			}
			if off < 0 {
				return nil, fmt.Errorf("decode offsets map: negative offset %d for %s/%s", off, topic, ps)
			}
			o[Partition{Topic: topic, Partition: int32(n)}] = off
		}
	}
	return o, nil
}

// NeverCommitted says whether a history walk that ended in ErrHistoryTruncated still
// proves that pipeline never committed: expiry by ledgerstream keeps the newest snapshot of
// every pipeline it finds and records their names (known, recorded true), so a pipeline the
// record does not name, and that the history left does not show, has no offsets map
// anywhere: it starts from the configured position. Without a record (a history cut by
// another tool) nothing is proven, and the walk's error stands.
func NeverCommitted(pipeline string, known []string, recorded bool) bool {
	return recorded && !slices.Contains(known, pipeline)
}

// String formats a partition as topic/number.
func (p Partition) String() string { return p.Topic + "/" + strconv.Itoa(int(p.Partition)) }
