package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// Config tunes the engine.
type Config struct {
	// Pipeline identifies the logical job; every worker of the job uses the same id.
	Pipeline string
	// Trigger is how long a batch gathers records before it is committed.
	Trigger time.Duration
	// MaxBatchRecords caps the records of one batch (Spark's maxOffsetsPerTrigger); it also
	// bounds memory. 0 means DefaultMaxBatchRecords.
	MaxBatchRecords int
	// AvailableNow makes Run process what the topic holds when it starts, then return.
	AvailableNow bool
	// StartingOffsets is where a partition the table has never seen starts:
	// OffsetEarliest or OffsetLatest.
	StartingOffsets int64
	// Rules validate messages.
	Rules *ledger.Rules
	// CommitAttempts bounds the commit retries of one batch before Run fails. 0 means 20.
	CommitAttempts int
	// Fault, when set, is called at each named fault point (see the Fault* constants). Tests
	// make it kill the process there. Nil in production.
	Fault  func(point string)
	Logger *slog.Logger
	Clock  Clock
}

// DefaultMaxBatchRecords bounds a batch when Config.MaxBatchRecords is 0.
const DefaultMaxBatchRecords = 250_000

// Fault points: the moments where a crash is most interesting.
const (
	FaultAfterFetch   = "after-fetch"   // records read, nothing written
	FaultAfterStage   = "after-stage"   // data files written, not committed
	FaultAfterCommit  = "after-commit"  // table committed, Kafka group offsets not yet
	FaultInRebalance  = "in-rebalance"  // partitions being assigned
	FaultAfterAdvised = "after-advised" // everything done for the batch
)

// Stats are the engine's running totals. Safe to read while Run runs.
type Stats struct {
	Records   atomic.Int64 // data records read (control records excluded)
	Accepted  atomic.Int64 // rows committed to the ledger
	Rejected  atomic.Int64 // messages refused by the transform
	Batches   atomic.Int64 // batches committed
	Conflicts atomic.Int64 // commits refused because the table moved
	Fenced    atomic.Int64 // batches dropped by fencing
	Unknown   atomic.Int64 // commits with an unknown outcome, settled by reading back
}

// Engine runs the micro-batch loop for one worker.
type Engine struct {
	cfg   Config
	table Table
	log   *slog.Logger
	clock Clock
	stats Stats

	// mu guards what the source's assignment callback (Resume, on another goroutine) and
	// the loop share: the last known table state and the read positions.
	mu    sync.Mutex
	state TableState
	known bool // state has been loaded at least once
	// pos is the next offset the batch expects per partition. A partition without an
	// entry accepts its first record wherever it is (the table has never seen it).
	pos Offsets
	// targets are the end offsets an available-now run must reach, and logStart the
	// partitions' first offsets when the targets were taken.
	targets, logStart Offsets
}

// New returns an engine writing to table. Pass its Resume method to the source.
func New(cfg Config, table Table) *Engine {
	if cfg.Trigger <= 0 {
		cfg.Trigger = 10 * time.Second
	}
	if cfg.MaxBatchRecords <= 0 {
		cfg.MaxBatchRecords = DefaultMaxBatchRecords
	}
	if cfg.CommitAttempts <= 0 {
		cfg.CommitAttempts = 20
	}
	if cfg.StartingOffsets != OffsetLatest {
		cfg.StartingOffsets = OffsetEarliest
	}
	if cfg.Rules == nil {
		rules := ledger.DefaultRules()
		cfg.Rules = &rules
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	return &Engine{cfg: cfg, table: table, log: cfg.Logger, clock: cfg.Clock, pos: Offsets{}}
}

// Stats returns the engine's running totals.
func (e *Engine) Stats() *Stats { return &e.stats }

func (e *Engine) fault(point string) {
	if e.cfg.Fault != nil {
		e.cfg.Fault(point)
	}
}

// Resume is the ResumeFunc for the source: newly assigned partitions start at the table's
// committed offsets, read fresh, not at Kafka's group offsets.
func (e *Engine) Resume(ctx context.Context, parts []Partition) (Offsets, error) {
	e.fault(FaultInRebalance)
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.table.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("resume %d partitions: load %s: %w", len(parts), e.table.Name(), err)
	}
	e.state, e.known = st, true
	start := StartOffsets(parts, st.Offsets, e.cfg.StartingOffsets)
	for _, p := range parts {
		if off, ok := st.Offsets[p]; ok {
			e.pos[p] = off
		} else {
			delete(e.pos, p)
		}
		delete(e.targets, p) // a re-assigned partition gets a fresh target
	}
	e.log.Info("partitions assigned", "partitions", len(parts), "start", MarshalOffsets(start))
	return start, nil
}

// batch is the work in progress: rows and rejects read since the last commit, and the
// span each partition covers.
type batch struct {
	claim   Claim
	rows    []ledger.Row
	records int
	rejects int
}

func (b *batch) empty() bool { return len(b.claim) == 0 }

// Run consumes from src and commits to the table until ctx ends (then it commits what it
// holds and returns nil), or, with AvailableNow, until every owned partition has reached
// the end offsets it had when the run began. An error means the worker must stop; its
// uncommitted work is safe to redo.
func (e *Engine) Run(ctx context.Context, src Source) error {
	for {
		done, err := e.Step(ctx, src)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// Step gathers one batch, commits it, and says whether the run is over. Run calls it in
// a loop; tests call it to go one batch at a time.
func (e *Engine) Step(ctx context.Context, src Source) (bool, error) {
	b := &batch{claim: Claim{}}
	deadline := e.clock.Now().Add(e.cfg.Trigger)
	stopping := false
	for b.records < e.cfg.MaxBatchRecords {
		if e.cfg.AvailableNow {
			caught, err := e.caughtUp(ctx, src)
			if err != nil {
				return false, err
			}
			if caught {
				stopping = true
				break
			}
		}
		wait := deadline.Sub(e.clock.Now())
		if wait <= 0 {
			break
		}
		fctx, cancel := context.WithTimeout(ctx, wait)
		recs, err := src.Fetch(fctx)
		cancel()
		if err != nil {
			var temp interface{ Temporary() bool }
			if !errors.As(err, &temp) || !temp.Temporary() {
				return false, fmt.Errorf("fetch: %w", err)
			}
			// Group churn, a moved coordinator, a network blip: the source recovers by
			// itself (lost partitions come back through Resume). Keep the batch.
			e.log.Warn("transient fetch error; retrying", "error", err)
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				stopping = true
				break
			}
		}
		e.add(b, recs)
		if ctx.Err() != nil {
			stopping = true
			break
		}
	}
	if !b.empty() {
		e.fault(FaultAfterFetch)
		// A stopping worker still commits what it holds: a clean stop leaves nothing to redo.
		// The commit gets its own context so that the stop signal does not cut it short.
		cctx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
		}
		if err := e.commit(cctx, src, b); err != nil {
			return false, err
		}
	}
	// Between batches, and only then, a pending rebalance may take partitions away.
	src.Release()
	return stopping, nil
}

// add takes fetched records into the batch: stale ones (below the position, left over
// from before a seek) are skipped, the rest transformed.
func (e *Engine) add(b *batch, recs []Record) {
	if len(recs) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		pos, known := e.pos[r.Partition]
		if known && r.Offset < pos {
			continue // already in the table, or re-read after a seek
		}
		span, ok := b.claim[r.Partition]
		if !ok {
			// The batch continues from the table's committed offset, or from nothing when
			// the table has never seen the partition.
			span.From, span.HasFrom = e.state.Offsets[r.Partition]
		}
		span.To = r.Offset + 1
		b.claim[r.Partition] = span
		e.pos[r.Partition] = r.Offset + 1
		if r.Control {
			continue
		}
		b.records++
		e.stats.Records.Add(1)
		row, rej := e.cfg.Rules.Decode(r.Value)
		if rej != nil {
			b.rejects++
			e.stats.Rejected.Add(1)
			e.log.Warn("message rejected", "partition", r.Partition.String(), "offset", r.Offset,
				"reason", string(rej.Reason), "error", rej.Message, "transaction_id", rej.TransactionID)
			continue
		}
		row.SourceTopic = r.Topic
		row.SourcePartition = r.Partition.Partition
		row.SourceOffset = r.Offset
		b.rows = append(b.rows, row)
	}
}

// commit writes the batch's files and commits them, settling conflicts and unknown
// outcomes by reading the table back (DESIGN §4). It then records the batch's progress in
// the source, or, when the batch was fenced, moves the source back to the table's offsets.
func (e *Engine) commit(ctx context.Context, src Source, b *batch) error {
	e.dropLost(b, src.Assigned())
	if b.empty() {
		return nil
	}
	started := e.clock.Now()
	c, seek, err := e.commitLocked(ctx, b, started)
	if err != nil {
		return err
	}
	if seek != nil {
		src.Seek(seek)
		return nil
	}
	e.stats.Batches.Add(1)
	e.stats.Accepted.Add(int64(len(b.rows)))
	e.log.Info("batch committed", "table", e.table.Name(), "batch", c.Batch, "rows", len(b.rows),
		"rejected", b.rejects, "partitions", len(b.claim), "took", e.clock.Now().Sub(started).Round(time.Millisecond))
	e.fault(FaultAfterCommit)
	if err := src.CommitAdvisory(ctx, b.claim.Ends()); err != nil {
		e.log.Warn("advisory Kafka offset commit failed (progress is safe in the table)", "error", err)
	}
	e.fault(FaultAfterAdvised)
	return nil
}

// dropLost removes from the batch the partitions this worker no longer owns (lost to a
// session expiry while it read them): they are not ours to commit.
func (e *Engine) dropLost(b *batch, assigned []Partition) {
	owned := make(map[Partition]bool, len(assigned))
	for _, p := range assigned {
		owned[p] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range b.claim {
		if owned[p] {
			continue
		}
		e.log.Warn("dropping the batch's records of a lost partition", "partition", p.String())
		delete(b.claim, p)
		delete(e.pos, p)
		kept := b.rows[:0]
		for _, r := range b.rows {
			if r.SourceTopic != p.Topic || r.SourcePartition != p.Partition {
				kept = append(kept, r)
			}
		}
		b.rows = kept
	}
}

// commitLocked stages and commits the batch under e.mu. It returns the commit that landed,
// or, when the batch was fenced, the offsets to seek the source to.
func (e *Engine) commitLocked(ctx context.Context, b *batch, started time.Time) (Commit, Offsets, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.known {
		st, err := e.table.Load(ctx)
		if err != nil {
			return Commit{}, nil, fmt.Errorf("load %s: %w", e.table.Name(), err)
		}
		e.state, e.known = st, true
	}
	staged, err := e.table.Stage(ctx, b.rows, started.UTC())
	if err != nil {
		return Commit{}, nil, fmt.Errorf("stage %d rows in %s: %w", len(b.rows), e.table.Name(), err)
	}
	e.fault(FaultAfterStage)

	base := e.state
	unknown := false // the last attempt's outcome is unknown: it may have landed
	for attempt := 1; ; attempt++ {
		outcome, moved := Settle(b.claim, base.Offsets)
		if outcome == Landed && !unknown {
			// Our offsets, but not our commit: another worker did this work. Ours is surplus.
			outcome = Fenced
		}
		switch outcome {
		case Landed:
			e.log.Info("an earlier commit attempt had landed", "table", e.table.Name(), "batch", base.Batch)
			return Commit{Pipeline: e.cfg.Pipeline, Batch: base.Batch, Offsets: base.Offsets}, nil, nil
		case Fenced:
			// Someone else owns this work now: drop it and continue from the table.
			e.stats.Fenced.Add(1)
			e.log.Warn("batch fenced: another writer moved its partitions; dropping it and re-seeking",
				"table", e.table.Name(), "partitions", fmt.Sprint(moved), "rows", len(b.rows))
			if err := e.table.Discard(ctx, staged); err != nil {
				e.log.Warn("could not delete the fenced batch's files; maintain will collect them", "error", err)
			}
			seek := Offsets{}
			for p := range b.claim {
				if off, ok := base.Offsets[p]; ok {
					seek[p] = off
					e.pos[p] = off
				} else {
					delete(e.pos, p)
				}
			}
			return Commit{}, seek, nil
		}
		c := Commit{Pipeline: e.cfg.Pipeline, Batch: base.Batch + 1, Offsets: Merge(base.Offsets, b.claim)}
		next, err := e.table.Commit(ctx, base, staged, c)
		if err == nil {
			e.state = next
			return c, nil, nil
		}
		unknown = !errors.Is(err, ErrConflict)
		if !unknown {
			e.stats.Conflicts.Add(1)
			e.log.Info("commit conflict; re-reading the table", "table", e.table.Name(), "batch", c.Batch, "attempt", attempt)
		} else {
			e.stats.Unknown.Add(1)
			e.log.Warn("commit outcome unknown; re-reading the table", "table", e.table.Name(),
				"batch", c.Batch, "attempt", attempt, "error", err)
		}
		if attempt >= e.cfg.CommitAttempts {
			return Commit{}, nil, fmt.Errorf("commit batch %d to %s: gave up after %d attempts: %w", c.Batch, e.table.Name(), attempt, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return Commit{}, nil, fmt.Errorf("commit batch %d to %s: %w", c.Batch, e.table.Name(), err)
		}
		if base, err = e.table.Load(ctx); err != nil {
			return Commit{}, nil, fmt.Errorf("re-read %s after a failed commit: %w", e.table.Name(), err)
		}
		e.state = base
	}
}

// caughtUp says whether an available-now run has reached its targets on every owned
// partition. A partition's target is taken once, when it is first seen.
func (e *Engine) caughtUp(ctx context.Context, src Source) (bool, error) {
	owned := src.Assigned()
	if len(owned) == 0 {
		return false, nil
	}
	e.mu.Lock()
	missing := false
	for _, p := range owned {
		if _, ok := e.targets[p]; !ok {
			missing = true
		}
	}
	e.mu.Unlock()
	if missing {
		starts, ends, err := src.Ends(ctx)
		if err != nil {
			return false, fmt.Errorf("list end offsets: %w", err)
		}
		e.mu.Lock()
		if e.targets == nil {
			e.targets, e.logStart = Offsets{}, Offsets{}
		}
		for p, off := range ends {
			if _, ok := e.targets[p]; !ok {
				e.targets[p], e.logStart[p] = off, starts[p]
			}
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range owned {
		target, ok := e.targets[p]
		if !ok {
			return false, nil
		}
		pos, known := e.pos[p]
		if !known {
			// Neither read yet nor in the table: there is something to wait for only when
			// reading from the earliest offset of a log that is not empty.
			if e.cfg.StartingOffsets == OffsetEarliest && e.logStart[p] < target {
				return false, nil
			}
			continue
		}
		if pos < target {
			return false, nil
		}
	}
	return true, nil
}

func backoff(attempt int) time.Duration {
	d := 10 * time.Millisecond << min(attempt, 8)
	return min(d, 2*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
