package engine

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// partTable records the rows of each part staged; its parts fall in partitions partitions.
type partTable struct {
	mu         sync.Mutex
	partitions int
	parts      []int
}

type partStaged struct{ rows, partitions int }

func (s partStaged) Rows() int64     { return int64(s.rows) }
func (s partStaged) Partitions() int { return s.partitions }

func (t *partTable) Name() string                             { return "parts" }
func (t *partTable) Load(context.Context) (TableState, error) { return TableState{}, nil }
func (t *partTable) Stage(_ context.Context, rows []ledger.Row, _ time.Time) (Staged, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parts = append(t.parts, len(rows))
	return partStaged{rows: len(rows), partitions: t.partitions}, nil
}
func (t *partTable) Commit(context.Context, TableState, Staged, Commit) (TableState, error) {
	return TableState{}, nil
}
func (t *partTable) Discard(context.Context, Staged) error { return nil }
func (t *partTable) Join(parts []Staged) Staged            { return partStaged{} }

// TestStagerPartRows: a part of a partitioned table gathers StageAheadRows times the
// partitions the last part fell in (at most maxPartScale times), and at most a quarter of
// the previous batch's rows; an unpartitioned table's (one partition) and the first part's stay
// at StageAheadRows.
func TestStagerPartRows(t *testing.T) {
	ctx := context.Background()
	rows := make([]ledger.Row, 10_000)
	tbl := &partTable{partitions: 4}
	sizing := &partSizing{}
	// feed offers the stager the rows one at a time from its next row on, until it starts a
	// part, and waits for that part.
	feed := func(s *stager) {
		t.Helper()
		for n := s.next + 1; n <= len(rows); n++ {
			if s.ahead(ctx, rows[:n]); s.next == n {
				s.wg.Wait()
				return
			}
		}
		t.Fatal("no part started")
	}
	s := newStager(tbl, time.Time{}, 100, 0, 100_000, sizing)
	feed(s) // nothing known yet: 100
	feed(s) // the first fell in 4 partitions: 400
	tbl.partitions = 9
	feed(s) // 400: the last fell in 4
	feed(s) // 400: 9 is capped at 4
	s = newStager(tbl, time.Time{}, 100, 0, 600, sizing)
	feed(s) // the previous batch had 600 rows: 150
	tbl.partitions = 1
	feed(s) // 150 still: the last part fell in 9 partitions
	feed(s) // unpartitioned: 100
	tbl.partitions = 4
	s = newStager(tbl, time.Time{}, 100, 0, 399, sizing)
	feed(s) // 100: a quarter of 399 is less
	if want := []int{100, 400, 400, 400, 150, 150, 100, 100}; !reflect.DeepEqual(tbl.parts, want) {
		t.Errorf("parts of %v rows, want %v", tbl.parts, want)
	}
}
