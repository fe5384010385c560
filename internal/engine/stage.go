package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// defaultStageAheadRows is Config.StageAheadRows when it is 0.
const defaultStageAheadRows = 25_000

// stager writes a batch's accepted rows as data files while the batch is still being read.
// Writing Parquet is the pipeline's largest cost per row, and reading (fetch, decode,
// classify) keeps one goroutine busy: the rows gathered so far are written on another core
// meanwhile, one part at a time, and the commit writes only the rest. Staging is not
// committing: the parts are files nobody references until the ledger commit, and a batch
// that is dropped, fenced or classified again discards them.
type stager struct {
	table     Table[ledger.Row]
	processed time.Time
	minRows   int // rows that make a part worth writing ahead

	next int           // rows below this index are staged or being staged
	busy chan struct{} // closed when the part ahead started last is done; nil when idle
	wg   sync.WaitGroup

	mu    sync.Mutex // guards parts and err, written by the parts' goroutines
	parts []Staged
	err   error
}

func newStager(table Table[ledger.Row], processed time.Time, minRows int) *stager {
	return &stager{table: table, processed: processed, minRows: minRows}
}

// ahead starts writing rows[s.next:] in the background when no part is being written and
// at least s.minRows rows wait. The goroutine reads only that range; the caller may
// append to rows meanwhile (appends write past it) but must not change what is in it.
func (s *stager) ahead(ctx context.Context, rows []ledger.Row) {
	if s.busy != nil {
		select {
		case <-s.busy:
			s.busy = nil
		default:
			return // one part at a time while reading: the next takes what gathers meanwhile
		}
	}
	if len(rows)-s.next >= s.minRows {
		s.busy = s.start(ctx, rows)
	}
}

// start writes rows[s.next:] as one part on a goroutine of its own, which wait (the
// commit) or discard (every other way out) waits for.
func (s *stager) start(ctx context.Context, rows []ledger.Row) chan struct{} {
	part := rows[s.next:len(rows):len(rows)]
	s.next = len(rows)
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		staged, err := s.table.Stage(context.WithoutCancel(ctx), part, s.processed)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.err = errors.Join(s.err, err)
			return
		}
		s.parts = append(s.parts, staged)
	}()
	return done
}

// finish writes the rows not written yet as a last part, side by side with a part still
// being written, and waits for every part.
func (s *stager) finish(ctx context.Context, rows []ledger.Row) ([]Staged, error) {
	if len(rows) > s.next {
		s.start(ctx, rows)
	}
	return s.wait()
}

// wait waits for every part being written and returns the parts.
func (s *stager) wait() ([]Staged, error) {
	s.wg.Wait()
	s.busy = nil
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
		errs = append(errs, s.table.Discard(context.WithoutCancel(ctx), p))
	}
	s.take()
	return errors.Join(errs...)
}
