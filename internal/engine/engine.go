package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
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
	// AvailableNow makes Step report the run over once what the topic held when it started
	// is committed.
	AvailableNow bool
	// StartingOffsets is where a partition the table has never seen starts:
	// OffsetEarliest or OffsetLatest.
	StartingOffsets int64
	// Rules validate messages.
	Rules *ledger.Rules
	// StageAheadRows is how many accepted rows a batch gathers before it starts writing
	// them while it reads on (see stager). 0 means 25,000.
	StageAheadRows int
	// OnGap is what to do when records were deleted from the topic before the pipeline
	// read them: stop (GapFail, the default) or record the gap and read on (GapRecord).
	// Without a rejects table, gaps always stop the pipeline.
	OnGap OnGap
	// CommitAttempts bounds the commits of one batch refused by a conflict (the table
	// moved) before Step fails. 0 means no bound by count: a conflict is another worker's
	// commit, so the pipeline progresses, and with many workers on one table a worker may
	// lose the race many times in a row (16 workers at a 1 s trigger lost 20 in a row);
	// conflicts that go on for longer than Retry's OutageTimeout (a worker that never
	// wins) stop it instead. Failures of the catalog or the storage are not counted here:
	// Retry waits them out.
	CommitAttempts int
	// Retry waits out temporary failures of the catalog, the storage and Kafka, and bounds
	// one outage (retry.Policy.OutageTimeout). Nil means a policy with
	// retry.DefaultOutageTimeout on Clock and Logger.
	Retry *retry.Policy
	// StopGrace is how long a stopping worker (ctx ended) may still spend committing the
	// batch it holds, outages included, before it gives the batch up (it is redone after
	// a restart). 0 means 30 s.
	StopGrace time.Duration
	Logger    *slog.Logger
	Clock     Clock
}

// lateBatchWindow is how long a batch that is already late gathers what is ready.
const lateBatchWindow = 10 * time.Millisecond

// DefaultMaxBatchRecords bounds a batch when Config.MaxBatchRecords is 0.
const DefaultMaxBatchRecords = 100_000

// Stats are the engine's running totals. Safe to read while Step runs.
type Stats struct {
	Records   atomic.Int64 // data records read (control records excluded)
	Accepted  atomic.Int64 // rows committed to the ledger
	Rejected  atomic.Int64 // rows committed to the rejects table
	Replayed  atomic.Int64 // records re-read that their table already holds (after a restart)
	Batches   atomic.Int64 // batches committed
	Conflicts atomic.Int64 // commits refused because the table moved
	Fenced    atomic.Int64 // batches dropped by fencing
	Unknown   atomic.Int64 // commits with an unknown outcome, settled by reading back
	// Gaps counts the gaps committed to the rejects table (run --on-gap record), and
	// LostOffsets the offsets they hold: records deleted before the pipeline read them.
	Gaps        atomic.Int64
	LostOffsets atomic.Int64
	// GapsRefused counts the gaps the pipeline stopped at (--on-gap fail).
	GapsRefused atomic.Int64
	// HandOffs counts the times the worker gave its partitions up because the catalog or
	// the storage was unreachable for its session timeout (retry.HandOff).
	HandOffs atomic.Int64
	// TopicChanged is set once the topic was found not to be the one the tables' offsets
	// name (re-created, shrunk, truncated): the pipeline stopped.
	TopicChanged atomic.Bool

	mu       sync.Mutex
	byReason map[ledger.Reason]int64
}

// RejectedBy returns the committed rejects by reason code.
func (s *Stats) RejectedBy() map[ledger.Reason]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[ledger.Reason]int64, len(s.byReason))
	for r, n := range s.byReason {
		out[r] = n
	}
	return out
}

// addRejects counts committed rejects rows: refused messages by reason, gaps apart.
func (s *Stats) addRejects(rows []ledger.RejectRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byReason == nil {
		s.byReason = map[ledger.Reason]int64{}
	}
	for i := range rows {
		if rows[i].IsGap() {
			s.Gaps.Add(1)
			s.LostOffsets.Add(rows[i].Offsets())
			continue
		}
		s.Rejected.Add(1)
		s.byReason[rows[i].Reason]++
	}
}

// Sinks are where the engine writes.
type Sinks struct {
	// Ledger receives the accepted transactions. Required.
	Ledger Table[ledger.Row]
	// Rejects receives every message that does not become a ledger row, with its reason.
	// Nil only logs refused messages (tests and tools).
	Rejects Table[ledger.RejectRow]
	// Index deduplicates transaction ids across the ledger's whole history. Nil disables
	// deduplication.
	Index Index
	// Checks check, before the first batch, that the tables' files can be read (the sinks
	// themselves, named here because decorators of a Table hide what else it implements).
	Checks []FileChecker
}

// FileChecker is a Table that can check, before the first batch, that the files it is
// made of can be read (without reading its data): a damaged table is then refused at start
// whatever the local index holds (docs/design.md §7). The check's error names the file.
type FileChecker interface {
	CheckFiles(ctx context.Context) error
}

// Engine runs the micro-batch loop for one worker.
type Engine struct {
	cfg   Config
	sinks Sinks
	// scoped is sinks.Index when it holds some partitions' ids only (found once, here,
	// rather than by a type assertion per record).
	scoped ScopedIndex
	log    *slog.Logger
	clock  Clock
	stats  Stats

	// mu guards what the source's assignment callback (Resume, on franz-go's group
	// goroutine) and the loop share: the tables' last known states and the read positions.
	mu     sync.Mutex
	ledger TableState // the ledger's state for this pipeline
	reject TableState // the rejects table's state
	// topic and topicID are the topic's name and id as last checked (checkTopic): what the
	// next ledger commit records.
	topic, topicID string
	known          bool // both states have been loaded at least once
	// pos is the next offset the loop expects per partition. A partition without an entry
	// accepts its first record wherever it is (no table has seen it).
	pos Offsets
	// targets are the end offsets an available-now run must reach, and logStart the
	// partitions' first offsets when the targets were taken.
	targets, logStart Offsets
	// indexed is the ledger snapshot the index was synced to when the batch began.
	indexed int64
	// fatal is a failure retrying cannot fix that Resume met (a damaged table file, a
	// denied access) on the group's goroutine, which can only refuse the assignment: the
	// loop stops on it instead of the group retrying the assignment for ever.
	fatal error
	// assignments counts, per partition, the times it was assigned to this worker.
	assignments map[Partition]int64

	// lastClose is when the previous batch closed (owned by the loop).
	lastClose time.Time

	// Buffers of the last batch, reused by the next (owned by the loop).
	rowsBuf   []ledger.Row
	recsBuf   []*Record
	decodeBuf []decoded
	decoders  []*ledger.Decoder // decode's, one per goroutine
	idsBuf    *acceptedIDs

	// prevBatchRows is the rows of the previous batch, partSizing the partitions a part
	// of the ledger last fell in: they size the next batch's parts (stager.partRows).
	prevBatchRows int
	partSizing    partSizing
}

// New returns an engine writing to sinks. Pass its Resume method to the source.
func New(cfg Config, sinks Sinks) *Engine {
	if cfg.Trigger <= 0 {
		cfg.Trigger = 10 * time.Second
	}
	if cfg.MaxBatchRecords <= 0 {
		cfg.MaxBatchRecords = DefaultMaxBatchRecords
	}
	if cfg.StageAheadRows <= 0 {
		cfg.StageAheadRows = defaultStageAheadRows
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
	if cfg.Retry == nil {
		cfg.Retry = &retry.Policy{OutageTimeout: retry.DefaultOutageTimeout, Clock: cfg.Clock, Logger: cfg.Logger}
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 30 * time.Second
	}
	e := &Engine{cfg: cfg, sinks: sinks, log: cfg.Logger, clock: cfg.Clock, pos: Offsets{}}
	e.scoped, _ = sinks.Index.(ScopedIndex)
	return e
}

// Stats returns the engine's running totals.
func (e *Engine) Stats() *Stats { return &e.stats }

// Dependencies returns the tracker of the dependencies' states (up or down, since when,
// the last error) that the engine's retries report to.
func (e *Engine) Dependencies() *retry.Tracker { return e.cfg.Retry.Track() }

// do runs fn, an operation op on dep, under the retry policy. fn takes e.mu itself where
// it needs it: the policy's pauses must not hold the lock that Resume (on the source's
// group goroutine) waits for.
func (e *Engine) do(ctx context.Context, dep retry.Dependency, op string, fn func(ctx context.Context) error) error {
	return e.cfg.Retry.Do(ctx, dep, op, fn)
}

// loadLocked reads both tables' states.
func (e *Engine) loadLocked(ctx context.Context) error {
	st, err := e.sinks.Ledger.Load(ctx)
	if err != nil {
		return fmt.Errorf("load %s: %w", e.sinks.Ledger.Name(), err)
	}
	e.ledger = st
	if e.sinks.Rejects != nil {
		if e.reject, err = e.sinks.Rejects.Load(ctx); err != nil {
			return fmt.Errorf("load %s: %w", e.sinks.Rejects.Name(), err)
		}
	}
	e.known = true
	return nil
}

// progressLocked is what the tables' last known states say of the pipeline's progress,
// the input of the resume rule (protocol.go).
func (e *Engine) progressLocked() Progress {
	return Progress{Ledger: e.ledger.Offsets, Clean: e.ledger.Clean, Rejects: e.reject.Offsets, HasRejects: e.sinks.Rejects != nil}
}

// Refresh re-reads the tables' states. A caller that changed the tables between batches
// (automatic maintenance, in the loop's goroutine) calls it so that the next commit plans
// on the current snapshot instead of conflicting once on a stale one. Offsets do not move:
// a table's state is its pipeline's newest snapshot, whatever came after.
func (e *Engine) Refresh(ctx context.Context) error {
	return e.do(ctx, retry.Catalog, "load the tables", func(ctx context.Context) error {
		e.mu.Lock() // as in Resume: a load replaces both states at once
		defer e.mu.Unlock()
		return e.loadLocked(ctx)
	})
}

// WaitFor waits until dep answers again, for a worker that gave its partitions up
// (retry.HandOffError) and must not join its group before it can work: it loads both
// tables, which asks the catalog and reads their metadata files from the storage, under
// the retry policy without hand-off (the outage timeout still ends the wait). A storage
// that reads but cannot write (a full disk) passes; the next batch finds it again.
func (e *Engine) WaitFor(ctx context.Context, dep retry.Dependency) error {
	return e.cfg.Retry.WithoutHandOff().Do(ctx, dep, "wait for the "+string(dep)+" to answer", func(ctx context.Context) error {
		e.mu.Lock() // as in Refresh
		defer e.mu.Unlock()
		return e.loadLocked(ctx)
	})
}

// Resume is the ResumeFunc for the source: newly assigned partitions start where the
// tables say, read fresh, never at Kafka's group offsets.
func (e *Engine) Resume(ctx context.Context, parts []Partition) (Offsets, error) {
	// One attempt, bounded: this runs on the source's group goroutine, which must not
	// wait out an outage here (the group retries the assignment, and the loop's own
	// retries report the outage).
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Retry.Timeout(retry.Catalog))
	defer cancel()
	// Held across the loads and the index sync (catalog I/O, unavoidably): the loop must not
	// classify or commit against states and an index that are half brought up to date.
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.loadLocked(ctx); err != nil {
		if retry.IsTemporary(err) {
			e.cfg.Retry.Track().Failed(dependencyOf(err, retry.Catalog), "resume partitions", err)
		} else if ctx.Err() == nil {
			e.fatal = cmp.Or(e.fatal, err) // not the group's session ending meanwhile
		}
		return nil, fmt.Errorf("resume %d partitions: %w", len(parts), err)
	}
	// A record below the tables' offsets is taken for a replay when the index does not name
	// another owner of its id, so the index must know every id the ledger holds up to the
	// offsets just loaded before any record of these partitions is classified: a duplicate
	// whose original another worker committed since the batch began would pass for a replay
	// and never reach the rejects table. (The batch's rows classified before this point are
	// classified again before the commit: see commitLedger.)
	if e.sinks.Index != nil {
		if err := e.sinks.Index.Sync(ctx, e.ledger); err != nil {
			if !retry.IsTemporary(err) && ctx.Err() == nil {
				e.fatal = cmp.Or(e.fatal, err)
			}
			return nil, fmt.Errorf("resume %d partitions: sync the transaction id index: %w", len(parts), err)
		}
	}
	if e.assignments == nil {
		e.assignments = map[Partition]int64{}
	}
	start := StartOffsets(parts, e.progressLocked(), e.cfg.StartingOffsets)
	for _, p := range parts {
		e.assignments[p]++ // a batch's span of p from before this assignment is stale
		if off := start[p]; off >= 0 {
			e.pos[p] = off
		} else {
			delete(e.pos, p) // a starting position: the first record read is where p begins
		}
		delete(e.targets, p) // a re-assigned partition gets a fresh target
	}
	e.log.Info("partitions assigned", "partitions", len(parts), "start", MarshalOffsets(start))
	return start, nil
}

// Step gathers one batch, commits it, and says whether the run is over: ctx ended (the
// batch committed what it held) or, with AvailableNow, every owned partition reached the
// end offsets it had when the run began. An error means the worker must stop; its
// uncommitted work is safe to redo. The loop that calls it, with what happens between
// batches, is internal/pipeline's; tests call it to go one batch at a time.
func (e *Engine) Step(ctx context.Context, src Source) (bool, error) {
	if scoped := e.scoped; scoped != nil {
		// Partitions lost since the last batch stop being synced. Safe whatever the order
		// of the group's callbacks: a partition dropped while owned is covered again (and
		// back-filled) before its first record is classified.
		e.mu.Lock()
		err := scoped.Keep(src.Assigned())
		e.mu.Unlock()
		if err != nil {
			e.log.Warn("could not close the index of a partition no longer owned; it is rebuilt from the ledger when needed", "error", err)
		}
	}
	if err := e.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return true, nil // stopped before the batch began: nothing held, nothing to redo
		}
		return false, err
	}
	// Before anything is read: is the topic still the one the tables' offsets name?
	if err := e.checkTopic(ctx, src); err != nil {
		if ctx.Err() != nil {
			return true, nil
		}
		return false, err
	}
	b := e.newBatch()
	defer e.recycle(b)
	// Files the batch staged but did not commit (it failed, or was dropped) are deleted.
	defer func() {
		if err := b.stage.discard(ctx); err != nil {
			e.log.Warn("could not delete an abandoned batch's files; maintain will collect them", "error", err)
		}
	}()
	// Batches start on a fixed schedule, as Spark's processing-time trigger does: a batch
	// closes one trigger after the previous one closed, so the time spent committing is not
	// added to every record's wait. A batch that is late closes at once with what is ready.
	now := e.clock.Now()
	deadline := e.lastClose.Add(e.cfg.Trigger)
	if deadline.Before(now) || deadline.After(now.Add(e.cfg.Trigger)) {
		deadline = now.Add(min(e.cfg.Trigger, lateBatchWindow))
		if e.lastClose.IsZero() {
			deadline = now.Add(e.cfg.Trigger)
		}
	}
	// A batch that fills up closes early, and the schedule restarts from there: were the
	// next deadline one trigger after this one's, the next batch would seem misaligned and
	// close after lateBatchWindow with whatever came in meanwhile (a catch-up alternated
	// full batches with small ones).
	defer func() {
		e.lastClose = deadline
		if now := e.clock.Now(); now.Before(deadline) {
			e.lastClose = now
		}
	}()
	stopping := false
	fetchFailures := 0
	var stop error // why the run stops once the batch holds what it read is committed
	for b.records < e.cfg.MaxBatchRecords {
		if e.cfg.AvailableNow {
			caught, err := e.caughtUp(ctx, src)
			if err != nil && ctx.Err() != nil {
				stopping = true // stopped: commit what the batch holds
				break
			}
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
		recs, err := src.Fetch(fctx, e.cfg.MaxBatchRecords-b.records)
		cancel()
		if err != nil && isOutOfRange(err) {
			// Records deleted before they were read, or a log that no longer reaches
			// where the pipeline is: record the gap and read on, or stop, after committing
			// what the batch read before (it would be lost to the next retention pass).
			if err := e.outOfRange(ctx, src, b, err); err != nil {
				var gap *GapError
				if !errors.As(err, &gap) {
					return false, err // another topic: nothing the batch read may be committed
				}
				stop = err
				break
			}
			continue
		}
		if err != nil {
			// Group churn, a moved coordinator, a dead connection: the source recovers by
			// itself (lost partitions come back through Resume). Keep the batch, and wait
			// as for any dependency: loudly, and no longer than the outage timeout.
			fetchFailures++
			if werr := e.cfg.Retry.Wait(ctx, dependencyOf(err, retry.Kafka), "fetch", fetchFailures, err); werr != nil {
				if ctx.Err() != nil {
					stopping = true
					break
				}
				return false, fmt.Errorf("fetch: %w", werr)
			}
		} else {
			fetchFailures = 0
		}
		// A broker that does not answer at all (a black hole) makes no fetch error, only
		// requests that time out underneath: the tracker sees them.
		if werr := e.cfg.Retry.Check(retry.Kafka); werr != nil {
			return false, werr
		}
		if err := e.add(b, recs); err != nil {
			return false, err
		}
		b.stage.ahead(ctx, b.rows)
		if ctx.Err() != nil {
			stopping = true
			break
		}
	}
	if !b.empty() {
		// A stopping worker still commits what it holds: a clean stop leaves nothing to redo.
		// The commit gets its own context so that a stop signal, before the commit or during
		// it, does not cut it short at once; it waits out an outage for StopGrace at most
		// after the stop, then gives the batch up (it is redone after a restart).
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stopAfter := context.AfterFunc(ctx, func() {
			t := time.NewTimer(e.cfg.StopGrace)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-cctx.Done():
			}
		})
		defer stopAfter()
		if err := e.commit(cctx, src, b); err != nil {
			var h *retry.HandOffError
			if errors.As(err, &h) {
				e.giveUp(ctx, src, b, h)
				return false, errors.Join(stop, err)
			}
			if ctx.Err() != nil && cctx.Err() != nil {
				e.log.Warn("stopped while waiting to commit; the batch will be read again after a restart",
					"grace", e.cfg.StopGrace, "error", err)
				return true, errors.Join(stop)
			}
			return false, errors.Join(stop, err)
		}
	}
	if stop != nil {
		return false, stop
	}
	// Between batches, and only then, a pending rebalance may take partitions away.
	src.Release()
	return stopping, nil
}

// giveUp drops the batch b because the worker gives its partitions up (h): another worker
// will read them from the tables' offsets. Its files are deleted unless the storage is the
// dependency that is down (then maintain's orphan removal collects them), and its
// partitions' read positions go back to where the tables stand. A commit attempt of
// unknown outcome may have landed, or may land later still (held in the network): the next
// owner of the partitions resumes from the tables, or is fenced by it (Settle, §4.5), so
// nothing is written twice; this worker re-reads the tables when it is assigned partitions
// again.
func (e *Engine) giveUp(ctx context.Context, src Source, b *batch, h *retry.HandOffError) {
	e.stats.HandOffs.Add(1)
	if e.cfg.Retry.Track().State(retry.Storage).Up {
		if err := b.stage.discard(ctx); err != nil {
			e.log.Warn("could not delete the dropped batch's files; maintain will collect them", "error", err)
		}
	} else {
		b.stage.forget()
	}
	e.mu.Lock()
	rows, parts := len(b.rows), len(b.spans)
	seek := e.rewindLocked(b)
	e.mu.Unlock()
	src.Seek(seek)
	e.log.Warn("batch dropped: giving the partitions up", "dependency", string(h.Dependency),
		"unreachable_for", h.For.Round(time.Second), "session_timeout", h.After, "rows", rows, "partitions", parts)
}

// prepare makes sure the tables' states are known and the index reflects the ledger
// before a batch classifies records against it.
func (e *Engine) prepare(ctx context.Context) error {
	if err := e.fatalErr(); err != nil {
		return err
	}
	// Before the first batch: the tables' files, whatever the index holds. Not under mu
	// (it reads every manifest: Resume must not wait on it), and never in Resume, whose
	// group session would expire meanwhile.
	for _, c := range e.sinks.Checks {
		if err := e.do(ctx, retry.Storage, "check the table's files", c.CheckFiles); err != nil {
			return err
		}
	}
	err := e.do(ctx, retry.Catalog, "load the tables", func(ctx context.Context) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.known {
			return nil
		}
		return e.loadLocked(ctx)
	})
	if err != nil || e.sinks.Index == nil {
		return err
	}
	return e.do(ctx, retry.Storage, "sync the transaction id index", func(ctx context.Context) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := e.sinks.Index.Sync(ctx, e.ledger); err != nil {
			return fmt.Errorf("sync the transaction id index: %w", err)
		}
		e.indexed = e.ledger.SnapshotID
		return nil
	})
}

// fatalErr is the failure Resume met that retrying cannot fix, wrapped to say where.
func (e *Engine) fatalErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fatal != nil {
		return fmt.Errorf("resume partitions: %w", e.fatal)
	}
	return nil
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
		var starts, ends Offsets
		err := e.do(ctx, retry.Kafka, "list end offsets", func(ctx context.Context) error {
			var err error
			starts, ends, err = src.Ends(ctx)
			return err
		})
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
			// Neither read yet nor in a table: there is something to wait for only when
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

// conflictsExhausted reports whether a batch whose commits n conflicts refused, the first
// at since, stops the worker: after CommitAttempts conflicts when it is set, else once they
// have gone on for longer than the retry policy's OutageTimeout (0: never).
func (e *Engine) conflictsExhausted(n int, since time.Time) bool {
	if e.cfg.CommitAttempts > 0 {
		return n >= e.cfg.CommitAttempts
	}
	t := e.cfg.Retry.OutageTimeout
	return t > 0 && e.clock.Now().Sub(since) > t
}

// backoff is how long a commit refused by a conflict waits before it reads the table back
// and tries again: 10 ms doubled per conflict up to 2 s, of which a random half is taken
// off (the retry policy's jitter). Workers that lost the same race must not race again in
// step: with a fixed pause, 16 workers starting together on one PostgreSQL catalog kept
// colliding until one gave up after CommitAttempts conflicts (`bench --scale-workers 16`).
func (e *Engine) backoff(conflicts int) time.Duration {
	d := min(10*time.Millisecond<<min(conflicts, 8), 2*time.Second)
	e.cfg.Retry.Track() // initialises the policy once, Jitter included, before it is read
	return d/2 + time.Duration(e.cfg.Retry.Jitter()*float64(d/2))
}
