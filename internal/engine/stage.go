package engine

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// defaultStageAheadRows is Config.StageAheadRows when it is 0.
const defaultStageAheadRows = 25_000

// maxPartScale caps how many times StageAheadRows a part of a partitioned table gathers
// (stager.partRows): it bounds the memory of the parts being written (a part's Arrow
// batches and buffered Parquet pages, one part a core).
const maxPartScale = 4

// stager writes a batch's accepted rows as data files while the batch is still being read.
// Writing Parquet is the pipeline's largest cost per row, more than reading (fetch,
// decode, classify) on one goroutine: the rows gathered so far are written meanwhile, a
// part at a time per core, and the commit writes only the rest. With one part at a time
// the writing fell behind the reading, and the commit then waited for a long tail with a
// core idle (issue 16). Staging is not committing: the parts are files nobody references
// until the ledger commit, and a batch that is dropped, fenced or classified again
// discards them.
type stager struct {
	table     Table[ledger.Row]
	processed time.Time
	minRows   int // rows that make a part worth writing ahead (before partRows scales them)
	// prevRows is the rows of the engine's previous batch; sizing, the partitions its
	// parts fell in (shared with the engine's other batches): see partRows.
	prevRows int
	sizing   *partSizing
	// timeout bounds the writing of one part and the deletion of one (the storage's
	// timeout, retry.Policy.Timeout): a storage that stopped answering must not hold the
	// batch, or a hand-off, for ever. 0: none.
	timeout time.Duration

	next  int           // rows below this index are staged or being staged
	slots chan struct{} // one token per part being written ahead: at most one a core
	wg    sync.WaitGroup

	mu    sync.Mutex // guards parts and err, written by the parts' goroutines
	parts []Staged
	err   error
}

func newStager(table Table[ledger.Row], processed time.Time, minRows int, timeout time.Duration, prevRows int, sizing *partSizing) *stager {
	return &stager{table: table, processed: processed, minRows: minRows, timeout: timeout, prevRows: prevRows, sizing: sizing,
		slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))}
}

// partSizing is what sizes a part, carried from part to part and batch to batch: how many
// partitions the last part written fell in.
type partSizing struct {
	partitions atomic.Int32
}

// A partitionCounter is a Staged that tells how many partitions of the table its rows
// fell in (an iceberg.Staged does; 1 for an unpartitioned table).
type partitionCounter interface {
	Partitions() int
}

// partRows is how many gathered rows make a part worth writing ahead. A part of a
// partitioned table becomes a file per partition it touches: minRows times the partitions
// the last part fell in (up to maxPartScale) keeps those files near minRows rows each, as
// an unpartitioned table's are, rather than a quarter of it for four partitions: a file's
// fixed cost (its creation, a column chunk, page and statistics per column, the footer)
// is then paid a quarter as often, and readers open fewer files. It stays at most a
// quarter of the previous batch's rows: what a batch writes after its last record is read
// (its last part) is not overlapped with reading, and a larger part makes it longer. A
// batch of the default MaxBatchRecords (100,000) keeps its parts of 25,000 rows (a larger
// last part would lengthen that tail more than the files it saves, about 1 ms of CPU each,
// are likely to pay for), as do a stream's batches of one trigger; larger batches
// (--max-batch-records) get larger parts.
func (s *stager) partRows() int {
	p := min(max(int(s.sizing.partitions.Load()), 1), maxPartScale)
	return min(s.minRows*p, max(s.minRows, s.prevRows/4))
}

// bounded is ctx, not cancelled with it (a part is written or deleted whole), under the
// stager's timeout.
func (s *stager) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = context.WithoutCancel(ctx)
	if s.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// ahead starts writing rows[s.next:] in the background when at least partRows rows wait
// and fewer parts than cores are being written. The goroutine reads only that range; the
// caller may append to rows meanwhile (appends write past it) but must not change what is
// in it.
func (s *stager) ahead(ctx context.Context, rows []ledger.Row) {
	if len(rows)-s.next < s.partRows() {
		return
	}
	select {
	case s.slots <- struct{}{}:
		s.start(ctx, rows, func() { <-s.slots })
	default: // every core writes a part: the next takes what gathers meanwhile
	}
}

// start writes rows[s.next:] as one part on a goroutine of its own, which wait (the
// commit) or discard (every other way out) waits for; done, when not nil, runs when the
// part is written.
func (s *stager) start(ctx context.Context, rows []ledger.Row, done func()) {
	part := rows[s.next:len(rows):len(rows)]
	s.next = len(rows)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if done != nil {
			defer done()
		}
		sctx, cancel := s.bounded(ctx)
		staged, err := s.table.Stage(sctx, part, s.processed)
		cancel()
		if pc, ok := staged.(partitionCounter); ok && err == nil {
			s.sizing.partitions.Store(int32(min(pc.Partitions(), maxPartScale)))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.err = errors.Join(s.err, err)
			return
		}
		s.parts = append(s.parts, staged)
	}()
}

// finish writes the rows not written yet as a last part, side by side with the parts
// still being written, and waits for every part.
func (s *stager) finish(ctx context.Context, rows []ledger.Row) ([]Staged, error) {
	if len(rows) > s.next {
		s.start(ctx, rows, nil)
	}
	return s.wait()
}

// wait waits for every part being written and returns the parts.
func (s *stager) wait() ([]Staged, error) {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts, s.err
}

// take hands the parts to the caller, who commits or discards them from now on, and
// starts over: the next part begins at row 0.
func (s *stager) take() {
	s.mu.Lock()
	s.parts, s.next, s.err = nil, 0, nil
	s.mu.Unlock()
}

// discard waits for the parts being written and deletes every part not taken. Best
// effort: files left behind are orphans for maintain.
func (s *stager) discard(ctx context.Context) error {
	parts, _ := s.wait() // a failed part left no files
	var errs []error
	for _, p := range parts {
		dctx, cancel := s.bounded(ctx)
		errs = append(errs, s.table.Discard(dctx, p))
		cancel()
	}
	s.take()
	return errors.Join(errs...)
}

// forget waits for the parts being written (each bounded by the timeout) and forgets every
// part not taken, without deleting it: for a batch given up while the storage is down, whose
// files are left to maintain's orphan removal.
func (s *stager) forget() {
	s.wait()
	s.take()
}
