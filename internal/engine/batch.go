package engine

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// batch is the work in progress: what was read since the last commit, classified.
type batch struct {
	spans   map[Partition]*readSpan
	rows    []ledger.Row       // accepted, at or above the ledger's offset
	recs    []*Record          // the record of each row, for re-classification
	rejects []ledger.RejectRow // refused, at or above the rejects table's offset
	ids     *acceptedIDs       // ids accepted by this batch so far
	records int                // data records read
	// processed is the batch's processing time (its rows' processing_time): when it began.
	processed time.Time
	stage     *stager // writes rows while the batch reads on
}

// readSpan is what a batch read of one partition, and where each table stood on it when
// the batch began reading it.
type readSpan struct {
	first      int64 // the first offset read
	end        int64 // next offset after the last record read
	ledger     Span  // the ledger's claim (To is set when the claim is taken)
	rejects    Span  // the rejects table's claim
	hasRejects bool  // a reject of this partition is in the batch
	assignment int64 // the partition's assignment count when the span began
}

func newBatch() *batch {
	return &batch{spans: map[Partition]*readSpan{}}
}

// newBatch starts a batch on the buffers of the previous one: batches are large (up to
// MaxBatchRecords rows) and growing their slices afresh each time was the loop's main cost.
func (e *Engine) newBatch() *batch {
	b := newBatch()
	b.rows, b.recs = e.rowsBuf[:0], e.recsBuf[:0]
	b.ids, e.idsBuf = e.idsBuf, nil
	if b.ids == nil {
		b.ids = newAcceptedIDs(e.cfg.MaxBatchRecords)
	}
	b.processed = e.clock.Now().UTC()
	b.stage = newStager(e.sinks.Ledger, b.processed, e.cfg.StageAheadRows, e.cfg.Retry.Timeout(retry.Storage), e.prevBatchRows, &e.partSizing)
	return b
}

// recycle keeps a finished batch's buffers for the next one. The tables do not retain
// the rows they were given.
func (e *Engine) recycle(b *batch) {
	// Cleared, so that the kept buffers do not hold the finished batch's records and strings
	// live (its fetched messages, the decoder's slabs) while the next batch reads: they
	// would be marked by every collection until overwritten.
	e.prevBatchRows = len(b.rows)
	clear(b.rows)
	clear(b.recs)
	clear(e.decodeBuf)
	e.rowsBuf, e.recsBuf = b.rows[:0], b.recs[:0]
	b.ids.reset()
	e.idsBuf = b.ids
}

func (b *batch) empty() bool { return len(b.spans) == 0 }

// ledgerClaim is what the batch asks of the ledger (ClaimOf): the partitions where it read
// records the ledger does not hold yet.
func (b *batch) ledgerClaim() Claim {
	read := make(map[Partition]Span, len(b.spans))
	for p, s := range b.spans {
		read[p] = Span{From: s.ledger.From, HasFrom: s.ledger.HasFrom, To: s.end}
	}
	return ClaimOf(read)
}

// add takes fetched records into the batch: stale ones (below the position, left over
// from before a seek) are skipped, the rest classified.
func (e *Engine) add(b *batch, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	decoded := e.decode(recs)
	// Held while the records are classified: the read positions, the tables' states and the
	// index they are classified against must not move under them (Resume moves all three).
	e.mu.Lock()
	defer e.mu.Unlock()
	// Records come in runs of one partition: its position and span are looked up once a
	// run, not once a record (map lookups by a string key were much of this loop's cost).
	var (
		p        Partition
		span     *readSpan
		pos      int64
		known    bool
		advanced bool
		data     int64
	)
	flush := func() {
		if advanced {
			e.pos[p] = pos
		}
	}
	defer func() {
		flush()
		e.stats.Records.Add(data)
	}()
	for i := range recs {
		r := &recs[i]
		if i == 0 || r.Partition != p {
			flush()
			p, advanced = r.Partition, false
			pos, known = e.pos[p]
			span = b.spans[p]
		}
		if known && r.Offset < pos {
			continue // already in the tables, or re-read after a seek
		}
		if span == nil {
			span = &readSpan{first: r.Offset, assignment: e.assignments[p]}
			span.ledger.From, span.ledger.HasFrom = e.ledger.Offsets[p]
			span.rejects.From, span.rejects.HasFrom = e.progressLocked().RejectsFrom(p)
			b.spans[p] = span
		}
		span.end = r.Offset + 1
		pos, known, advanced = r.Offset+1, true, true
		if r.Control {
			continue
		}
		b.records++
		data++
		if err := e.classify(b, span, r, &decoded[i]); err != nil {
			return err
		}
	}
	return nil
}

// decoded is a record's transform result: a row or the reason it was refused.
type decoded struct {
	row ledger.Row
	rej *ledger.Reject
}

// parallelDecodeMin is the fetch size from which decoding is spread over the cores.
const parallelDecodeMin = 4096

// decode runs the transform over the records, on every core for large fetches: it is a
// pure function, and after Parquet writing the pipeline's largest cost per record.
// Classification, which depends on order, stays sequential.
func (e *Engine) decode(recs []Record) []decoded {
	out := e.decodeBuf[:0]
	if cap(out) < len(recs) {
		out = make([]decoded, len(recs))
	}
	out = out[:len(recs)]
	e.decodeBuf = out
	n := runtime.GOMAXPROCS(0)
	// A decoder per goroutine, kept from fetch to fetch: its working state is not taken
	// from a pool for every record.
	for len(e.decoders) < n {
		e.decoders = append(e.decoders, e.cfg.Rules.NewDecoder())
	}
	work := func(dec *ledger.Decoder, lo, hi int) {
		for i := lo; i < hi; i++ {
			if !recs[i].Control {
				out[i].row, out[i].rej = dec.Decode(recs[i].Value)
			}
		}
	}
	if len(recs) < parallelDecodeMin || n == 1 {
		work(e.decoders[0], 0, len(recs))
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(recs) + n - 1) / n
	for k, lo := 0, 0; lo < len(recs); k, lo = k+1, lo+chunk {
		wg.Go(func() { work(e.decoders[k], lo, min(lo+chunk, len(recs))) })
	}
	wg.Wait()
	return out
}

// classify decides what one data record becomes: a ledger row, a reject, or nothing (a
// replay of what a table already holds).
func (e *Engine) classify(b *batch, s *readSpan, r *Record, d *decoded) error {
	forLedger := !s.ledger.HasFrom || r.Offset >= s.ledger.From
	forRejects := !s.rejects.HasFrom || r.Offset >= s.rejects.From
	row, rej := d.row, d.rej
	if rej == nil {
		row.SourceTopic, row.SourcePartition, row.SourceOffset = r.Topic, r.Partition.Partition, r.Offset
		if e.scoped != nil && string(r.Key) != row.TransactionID {
			// A partition-scoped index knows only this partition's ids: a copy of this id
			// keyed otherwise may sit in another partition, unseen. Stop before committing.
			return fmt.Errorf("%w: %s offset %d has key %q, transaction id %q: --index-scope partition needs every message "+
				"keyed by its transaction id (one partitioner, a constant partition count); run with --index-scope global",
				ErrKeyNotID, r.Partition, r.Offset, r.Key, row.TransactionID)
		}
		var err error
		if rej, err = e.dedup(b, &row, forLedger); err != nil {
			return err
		}
		if rej == nil {
			if forLedger {
				if len(b.rows) == cap(b.rows) {
					e.grow(b)
				}
				b.rows = append(b.rows, row)
				b.recs = append(b.recs, r)
			} else {
				e.stats.Replayed.Add(1)
			}
			return nil
		}
	}
	if !forRejects {
		e.stats.Replayed.Add(1)
		return nil
	}
	s.hasRejects = true
	b.rejects = append(b.rejects, ledger.NewRejectRow(r.Topic, r.Partition.Partition, r.Offset, r.Key, r.Value, r.Headers, r.Timestamp, rej))
	if e.sinks.Rejects == nil {
		e.log.Warn("message rejected", "partition", r.Partition.String(), "offset", r.Offset,
			"reason", string(rej.Reason), "error", rej.Message, "transaction_id", rej.TransactionID)
	}
	return nil
}

// grow makes room for more rows in the batch: twice as many, up to MaxBatchRecords, which
// a batch never exceeds. append would grow a slice this large by a quarter at a time,
// allocating some five times its final size while the first batch fills it.
func (e *Engine) grow(b *batch) {
	n := max(min(2*cap(b.rows), e.cfg.MaxBatchRecords), len(b.rows)+1, 1024)
	b.rows = slices.Grow(b.rows, n-len(b.rows))
	b.recs = slices.Grow(b.recs, n-len(b.recs))
}

// dedup checks a valid row's transaction id against the ids accepted before: the index
// (the ledger's history) and this batch. A replay of the very record that owns the id is
// not a duplicate; it returns nil and the caller sees forLedger false.
func (e *Engine) dedup(b *batch, row *ledger.Row, forLedger bool) (*ledger.Reject, error) {
	if e.sinks.Index == nil {
		return nil, nil
	}
	owner, ok, h := b.ids.lookup(row.TransactionID)
	if scoped := e.scoped; scoped != nil && !ok {
		here := Partition{Topic: row.SourceTopic, Partition: row.SourcePartition}
		err := e.retryIndex(context.Background(), "cover a partition in the transaction id index", func() error {
			return scoped.Cover(context.Background(), here)
		})
		if err != nil {
			return nil, fmt.Errorf("classify %s offset %d: %w", here, row.SourceOffset, err)
		}
	}
	if !ok {
		err := e.retryIndex(context.Background(), "look up a transaction id in the index", func() error {
			var err error
			owner, ok, err = e.sinks.Index.Lookup(row.TransactionID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("look up transaction %s: %w", row.TransactionID, err)
		}
	}
	here := Partition{Topic: row.SourceTopic, Partition: row.SourcePartition}
	switch {
	case ok && owner.Partition == here && owner.Offset == row.SourceOffset:
		return nil, nil // a replay of the owner itself
	case ok && owner.Hash == row.TransactionHash:
		return &ledger.Reject{Reason: ledger.ReasonDuplicate, TransactionID: row.TransactionID,
			Message: fmt.Sprintf("transaction %s was already accepted at %s offset %d", row.TransactionID, owner.Partition, owner.Offset)}, nil
	case ok:
		return &ledger.Reject{Reason: ledger.ReasonConflictingDuplicate, TransactionID: row.TransactionID,
			Message: fmt.Sprintf("transaction %s was already accepted at %s offset %d with different content (hash %s, this one %s)",
				row.TransactionID, owner.Partition, owner.Offset, owner.Hash, row.TransactionHash)}, nil
	}
	if forLedger {
		b.ids.add(row.TransactionID, h, Owner{Partition: here, Offset: row.SourceOffset, Hash: row.TransactionHash})
	}
	return nil, nil
}

// reclassify checks the batch's accepted rows again after the index caught up with
// commits made since the batch began (another worker may have accepted the same ids). It
// reports whether any row became a duplicate.
func (e *Engine) reclassify(b *batch) (bool, error) {
	if e.sinks.Index == nil {
		return false, nil
	}
	rows, recs := slices.Clone(b.rows), slices.Clone(b.recs)
	b.rows, b.recs = b.rows[:0], b.recs[:0]
	b.ids.reset()
	changed := false
	for i := range rows {
		rej, err := e.dedup(b, &rows[i], true)
		if err != nil {
			return false, err
		}
		if rej == nil {
			b.rows = append(b.rows, rows[i])
			b.recs = append(b.recs, recs[i])
			continue
		}
		changed = true
		r := recs[i]
		s := b.spans[r.Partition]
		if !s.rejects.HasFrom || r.Offset >= s.rejects.From {
			s.hasRejects = true
			b.rejects = append(b.rejects, ledger.NewRejectRow(r.Topic, r.Partition.Partition, r.Offset, r.Key, r.Value, r.Headers, r.Timestamp, rej))
		}
	}
	return changed, nil
}

// dropLost handles partitions this worker lost (a session expiry) while it read them:
// they are not ours to commit. Since rows of other partitions may have been classified
// against them (a duplicate of an id the lost partition accepted), the whole batch is
// dropped and the partitions still owned are re-read from the tables. Loss is rare.
// It returns the offsets to seek the owned partitions to, or nil when nothing was lost.
func (e *Engine) dropLost(ctx context.Context, b *batch, assigned []Partition) Offsets {
	owned := make(map[Partition]bool, len(assigned))
	for _, p := range assigned {
		owned[p] = true
	}
	e.mu.Lock() // the assignment counts, which Resume moves
	var lost []Partition
	for p, s := range b.spans {
		// A partition lost and assigned back during the batch counts as lost too: Resume
		// moved its read position back to the tables' offset, so its records would be read
		// into this batch a second time.
		if !owned[p] || s.assignment != e.assignments[p] {
			lost = append(lost, p)
		}
	}
	e.mu.Unlock()
	if len(lost) == 0 {
		return nil
	}
	SortPartitions(lost)
	e.log.Warn("partitions lost during the batch; dropping it and re-reading the partitions still owned",
		"lost", fmt.Sprint(lost))
	// Deleting the files is storage I/O: not under the lock.
	if err := b.stage.discard(ctx); err != nil {
		e.log.Warn("could not delete the dropped batch's files; maintain will collect them", "error", err)
	}
	e.mu.Lock() // the read positions and the tables' states rewindLocked reads
	defer e.mu.Unlock()
	return e.rewindLocked(b)
}

// rewindLocked forgets the batch: every partition it read goes back to where the tables
// stand, and the returned offsets say where to seek.
func (e *Engine) rewindLocked(b *batch) Offsets {
	seek, pr := Offsets{}, e.progressLocked()
	for p := range b.spans {
		off, ok := ResumeAt(p, pr)
		if !ok {
			off = b.spans[p].first // no table has seen p: read it again from where we began
		}
		seek[p], e.pos[p] = off, off
	}
	*b = *e.newBatch()
	return seek
}
