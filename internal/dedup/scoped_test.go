package dedup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// scopedHarness drives a partition-scoped index the way the engine does (sync before a
// batch, cover a partition before classifying its records, add a committed batch, keep
// the owned partitions between batches) over a fake ledger that other workers also
// commit to.
type scopedHarness struct {
	t      *testing.T
	l      *fakeLedger
	base   string
	s      *Scoped
	head   int64
	synced int64 // the snapshot the engine last synced the index to (or added)
	next   int64 // next snapshot id
	nextID int   // next transaction number
	offs   map[int32]int64
	// summaries: the ledger tells each snapshot's partitions (PartitionLedger).
	summaries bool
}

// summaryLedger is the fake ledger with snapshot summaries: the partitions each snapshot
// added rows of, as iceberg.LedgerIDs reads them from the offsets maps.
type summaryLedger struct{ *fakeLedger }

func (l summaryLedger) Partitions(_ context.Context, _ int64, snaps []int64) (map[int64][]engine.Partition, error) {
	out := map[int64][]engine.Partition{}
	for _, id := range snaps {
		ps := []engine.Partition{}
		for _, r := range l.rows[id] {
			if p := part(r.SourcePartition); !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
		out[id] = ps
	}
	return out, nil
}

func newScopedHarness(t *testing.T) *scopedHarness { return newScopedHarnessOn(t, false) }

// newScopedHarnessOn is newScopedHarness over a ledger that tells the partitions each
// snapshot added rows of (summaries), when summaries is set.
func newScopedHarnessOn(t *testing.T, summaries bool) *scopedHarness {
	h := &scopedHarness{t: t, l: newFakeLedger(), base: filepath.Join(t.TempDir(), "ledger~p~w1.idx"), next: 1, offs: map[int32]int64{},
		summaries: summaries}
	h.open()
	t.Cleanup(func() { h.s.Close() })
	return h
}

func part(p int32) engine.Partition { return engine.Partition{Topic: "tx", Partition: p} }

// commit appends a snapshot of n new rows on partition p to the ledger.
func (h *scopedHarness) commit(p int32, n int) ([]ledger.Row, engine.TableState) {
	rows := rowsOf(h.nextID, n, p, h.offs[p])
	h.nextID += n
	h.offs[p] += int64(n)
	st := h.l.commit(h.next, h.head, rows)
	h.head = h.next
	h.next++
	return rows, st
}

// other is a commit of another worker (on a partition it owns now).
func (h *scopedHarness) other(p int32, n int) { h.commit(p, n) }

// own is a batch of this worker: committed, then added.
func (h *scopedHarness) own(p int32, n int) {
	h.t.Helper()
	h.cover(p)
	rows, st := h.commit(p, n)
	if err := h.s.Add(rows, st); err != nil {
		h.t.Fatal(err)
	}
	h.synced = st.SnapshotID
}

// cover is a batch's start (sync to the ledger's head) and its first record of each of ps.
func (h *scopedHarness) cover(ps ...int32) {
	h.t.Helper()
	h.sync()
	for _, p := range ps {
		if err := h.s.Cover(context.Background(), part(p)); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *scopedHarness) sync() {
	h.t.Helper()
	if err := h.s.Sync(context.Background(), engine.TableState{SnapshotID: h.head}); err != nil {
		h.t.Fatal(err)
	}
	h.synced = h.head
}

func (h *scopedHarness) keep(ps ...int32) {
	h.t.Helper()
	var owned []engine.Partition
	for _, p := range ps {
		owned = append(owned, part(p))
	}
	if err := h.s.Keep(owned); err != nil {
		h.t.Fatal(err)
	}
}

// restart closes the index and opens it again, as a worker's restart does: nothing is
// covered until the engine asks.
func (h *scopedHarness) restart() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *scopedHarness) open() {
	h.t.Helper()
	var l Ledger = h.l
	if h.summaries {
		l = summaryLedger{h.l}
	}
	s, err := OpenScoped(h.base, l, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.s = s
}

// expireAllButHead drops every snapshot but the head from the history.
func (h *scopedHarness) expireAllButHead() {
	for id := range h.l.parent {
		if id != h.head {
			h.l.expired[id] = true
		}
	}
}

// check asserts the scoped index's promise, as it stands (no sync first): every row the
// ledger holds of a covered partition, up to the snapshot the index was last synced to, is
// found with its owner; no id the ledger never accepted is.
func (h *scopedHarness) check() {
	h.t.Helper()
	covered := h.s.Covered()
	var all []int64
	for id := h.synced; id != 0; id = h.l.parent[id] {
		all = append(all, id)
	}
	for _, snap := range all {
		for _, r := range h.l.rows[snap] {
			if !slices.Contains(covered, part(r.SourcePartition)) {
				continue
			}
			o, ok, err := h.s.Lookup(r.TransactionID)
			if err != nil {
				h.t.Fatal(err)
			}
			if !ok || o != ownerOf(r) {
				h.t.Fatalf("%s of covered partition %d: found %v %v, want %v", r.TransactionID, r.SourcePartition, ok, o, ownerOf(r))
			}
		}
	}
	if _, ok, _ := h.s.Lookup("TXN-never"); ok {
		h.t.Fatal("an id the ledger never accepted was found")
	}
}

func TestScopedIndex(t *testing.T) {
	cases := []struct {
		name string
		run  func(h *scopedHarness)
		// covered are the partitions covered at the end; ids the ids the index holds;
		// read the ledger rows it indexed by reading the ledger (not by Add).
		covered []int32
		ids     int64
		read    int64
	}{
		{
			name: "holds its own partitions only",
			run: func(h *scopedHarness) {
				h.cover(0, 1)
				h.other(2, 50)
				h.own(0, 5)
				h.other(3, 50)
				h.own(1, 5)
			},
			covered: []int32{0, 1}, ids: 10, read: 0,
		},
		{
			name: "gains a partition another worker wrote: back-fill from a scan",
			run: func(h *scopedHarness) {
				h.cover(0)
				h.other(1, 10)
				h.own(0, 5)
				h.other(2, 20)
				h.cover(1)
			},
			covered: []int32{0, 1}, ids: 15, read: 10,
		},
		{
			name: "loses a partition and regains it: back-fill from its watermark",
			run: func(h *scopedHarness) {
				h.own(0, 5)
				h.own(1, 5)
				h.keep(0)
				h.other(1, 7) // the new owner of 1
				h.own(0, 3)
				h.other(1, 2)
				h.cover(1)
			},
			covered: []int32{0, 1}, ids: 22, read: 9,
		},
		{
			name: "lost partition is not synced",
			run: func(h *scopedHarness) {
				h.own(0, 5)
				h.own(1, 5)
				h.keep(0)
				h.other(1, 40)
				h.own(0, 3)
			},
			covered: []int32{0}, ids: 8, read: 0,
		},
		{
			name: "dropped by mistake while owned: covered again before use",
			run: func(h *scopedHarness) {
				h.own(0, 5)
				h.keep()
				h.own(0, 5)
			},
			covered: []int32{0}, ids: 10, read: 0,
		},
		{
			name: "restart: each partition syncs from its watermark",
			run: func(h *scopedHarness) {
				h.own(0, 5)
				h.own(1, 5)
				h.restart()
				h.other(0, 4) // another worker had 0 while this one was down
				h.other(2, 30)
				h.cover(0, 1)
			},
			covered: []int32{0, 1}, ids: 14, read: 4,
		},
		{
			name: "watermark left the history: rebuilt from a scan of its partition",
			run: func(h *scopedHarness) {
				h.own(0, 5)
				h.keep()
				h.other(0, 6)
				h.other(1, 30)
				h.expireAllButHead()
				h.cover(0)
			},
			covered: []int32{0}, ids: 11, read: 11,
		},
		{
			name: "two partitions gained together",
			run: func(h *scopedHarness) {
				h.cover(0)
				h.other(1, 10)
				h.other(2, 10)
				h.other(3, 10)
				h.cover(1, 2)
				h.other(1, 3)
				h.other(2, 4)
				h.cover() // the next batch
			},
			covered: []int32{0, 1, 2}, ids: 27, read: 27,
		},
	}
	for _, c := range cases {
		for _, summaries := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, summaries %v", c.name, summaries), func(t *testing.T) {
				h := newScopedHarnessOn(t, summaries)
				c.run(h)
				h.check()
				var want []engine.Partition
				for _, p := range c.covered {
					want = append(want, part(p))
				}
				if got := h.s.Covered(); !slices.Equal(got, want) {
					t.Errorf("covered %v, want %v", got, want)
				}
				st := h.s.Stats()
				if st.Rows != c.ids || st.RowsRead != c.read {
					t.Errorf("ids %d, rows read %d; want %d, %d", st.Rows, st.RowsRead, c.ids, c.read)
				}
				if !summaries && st.Skipped != 0 {
					t.Errorf("%d snapshots skipped without summaries", st.Skipped)
				}
			})
		}
	}
}

// TestScopedReadsOnce: partitions synced over the same snapshots share one ledger read.
func TestScopedReadsOnce(t *testing.T) {
	h := newScopedHarness(t)
	h.cover(0, 1, 2)
	h.other(0, 10)
	h.other(1, 10)
	h.other(2, 10)
	h.other(3, 10)
	reads := h.l.reads
	h.sync()
	if got := h.l.reads - reads; got != 1 {
		t.Errorf("%d ledger reads for one sync of three partitions, want 1", got)
	}
	h.check()
	if st := h.s.Stats(); st.RowsRead != 30 || st.Scanned != 40 {
		t.Errorf("rows read %d, scanned %d; want 30, 40", st.RowsRead, st.Scanned)
	}
	// Its own commits move every covered partition past them: nothing is read back.
	h.own(1, 5)
	h.own(2, 5)
	reads = h.l.reads
	h.sync()
	if got := h.l.reads - reads; got != 0 {
		t.Errorf("%d ledger reads after the worker's own commits, want 0", got)
	}
	h.check()
}

// TestScopedOneProcess: a second worker on the same files is refused at open.
func TestScopedOneProcess(t *testing.T) {
	h := newScopedHarness(t)
	if _, err := OpenScoped(h.base, h.l, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// TestScopedPartitionFiles: each partition's index has its own directory under the
// worker's, so that a later cover finds the watermark.
func TestScopedPartitionFiles(t *testing.T) {
	for _, c := range []struct {
		p    engine.Partition
		want string
	}{
		{engine.Partition{Topic: "tx", Partition: 3}, "w.idx~tx-3"},
		{engine.Partition{Topic: "a/b c", Partition: 12}, "w.idx~a_b_c-12"},
	} {
		if got := PartitionPath("w.idx", c.p); got != c.want {
			t.Errorf("%v: %s, want %s", c.p, got, c.want)
		}
	}
}
