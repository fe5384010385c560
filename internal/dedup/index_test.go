package dedup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// fakeLedger is a ledger table in memory: snapshots with parents and the rows each added.
// It counts the rows it hands out, so tests can tell an incremental sync from a rescan.
type fakeLedger struct {
	parent  map[int64]int64 // snapshot -> parent (0: none)
	rows    map[int64][]ledger.Row
	expired map[int64]bool
	read    int64 // rows handed to fn
	reads   int   // ReadAdded and ReadAll calls
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{parent: map[int64]int64{}, rows: map[int64][]ledger.Row{}, expired: map[int64]bool{}}
}

// commit appends a snapshot id with rows on top of parent and returns its state.
func (f *fakeLedger) commit(id, parent int64, rows []ledger.Row) engine.TableState {
	f.parent[id], f.rows[id] = parent, rows
	return engine.TableState{SnapshotID: id}
}

func (f *fakeLedger) History(_ context.Context, head int64) ([]int64, bool, error) {
	var ids []int64
	for id := head; id != 0; id = f.parent[id] {
		if _, ok := f.parent[id]; !ok || f.expired[id] {
			return ids, false, nil
		}
		ids = append(ids, id)
	}
	return ids, true, nil
}

func (f *fakeLedger) ReadAdded(_ context.Context, _ int64, snaps []int64, fn func(string, engine.Owner) error) error {
	f.reads++
	for _, s := range snaps {
		for _, r := range f.rows[s] {
			f.read++
			if err := fn(r.TransactionID, ownerOf(r)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeLedger) ReadAll(ctx context.Context, head int64, fn func(string, engine.Owner) error) error {
	var all []int64
	for id := head; id != 0; id = f.parent[id] {
		all = append(all, id) // an expired snapshot's rows are still in the table
	}
	slices.Reverse(all)
	return f.ReadAdded(ctx, head, all, fn)
}

func ownerOf(r ledger.Row) engine.Owner {
	return engine.Owner{Partition: engine.Partition{Topic: r.SourceTopic, Partition: r.SourcePartition},
		Offset: r.SourceOffset, Hash: r.TransactionHash}
}

// rowsOf returns n ledger rows with ids TXN<from>..., on partition part from offset off.
func rowsOf(from, n int, part int32, off int64) []ledger.Row {
	rows := make([]ledger.Row, n)
	for i := range rows {
		id := fmt.Sprintf("TXN%08d", from+i)
		rows[i] = ledger.Row{TransactionID: id, TransactionHash: ledger.Hash(id, "A", "B", "1.00", "EUR"),
			SourceTopic: "tx", SourcePartition: part, SourceOffset: off + int64(i)}
	}
	return rows
}

func openIndex(t testing.TB, path string, l Ledger) *Index {
	t.Helper()
	x, err := Open(path, l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// answers looks every id of ids up and returns what the index says, as strings.
func answers(t testing.TB, x *Index, ids []string) []string {
	t.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		o, ok, err := x.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = fmt.Sprint(ok, o)
	}
	return out
}

func TestIncrementalEqualsRebuild(t *testing.T) {
	ctx := context.Background()
	f := newFakeLedger()
	dir := t.TempDir()
	inc := openIndex(t, filepath.Join(dir, "inc.idx"), f)

	var st engine.TableState
	var ids []string
	parent := int64(0)
	for s := int64(1); s <= 5; s++ {
		rows := rowsOf(int(s)*1000, 500, int32(s%3), s*1000)
		if s == 3 {
			rows = nil // a snapshot that only moves offsets
		}
		if s == 4 {
			rows[0].TransactionHash = "NOT-CANONICAL" // kept as is
			rows[1].SourceTopic = "other"
		}
		st = f.commit(s*11, parent, rows)
		parent = s * 11
		for _, r := range rows {
			ids = append(ids, r.TransactionID)
		}
		if s%2 == 0 {
			if err := inc.Sync(ctx, st); err != nil { // some snapshots synced one by one...
				t.Fatal(err)
			}
		}
	}
	if err := inc.Sync(ctx, st); err != nil { // ...the rest in one go
		t.Fatal(err)
	}
	ids = append(ids, "TXN99999999", "", "TXN0000100") // absent ones too
	full := openIndex(t, filepath.Join(dir, "full.idx"), f)
	if err := full.Rebuild(ctx, st); err != nil {
		t.Fatal(err)
	}
	a, b := answers(t, inc, ids), answers(t, full, ids)
	if !slices.Equal(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Errorf("%s: incremental %s, rebuilt %s", ids[i], a[i], b[i])
			}
		}
	}
	o, ok, _ := inc.Lookup("TXN00004000")
	if !ok || o.Hash != "NOT-CANONICAL" || o.Topic != "tx" || o.Partition.Partition != 1 || o.Offset != 4000 {
		t.Errorf("TXN00004000 -> %v %v", o, ok)
	}
	if o, _, _ := inc.Lookup("TXN00004001"); o.Topic != "other" {
		t.Errorf("TXN00004001 -> %v", o)
	}
	if o, _, _ := inc.Lookup("TXN00002007"); o.Hash != ledger.Hash("TXN00002007", "A", "B", "1.00", "EUR") {
		t.Errorf("TXN00002007 -> %v", o)
	}
	if s := inc.Stats(); s.Rows != 2000 || s.Rebuilds != 0 {
		t.Errorf("incremental stats %+v", s)
	}
}

// TestRestartWithoutRescan: a reopened index reads only the rows of the snapshots
// committed since it was closed, and none of those Add recorded.
func TestRestartWithoutRescan(t *testing.T) {
	ctx := context.Background()
	f := newFakeLedger()
	path := filepath.Join(t.TempDir(), "x.idx")
	x, err := Open(path, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := f.commit(1, 0, rowsOf(0, 10000, 0, 0))
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	// A batch this worker committed: Add records it, Sync does not read it again.
	rows := rowsOf(10000, 300, 1, 0)
	st = f.commit(2, 1, rows)
	if err := x.Add(rows, st); err != nil {
		t.Fatal(err)
	}
	f.read = 0
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if f.read != 0 {
		t.Errorf("sync after Add read %d rows, want 0", f.read)
	}
	if x.Synced() != 2 {
		t.Errorf("synced %d, want 2", x.Synced())
	}
	// Another worker's batch between two of ours: Add remembers ours, Sync reads only theirs.
	theirs := f.commit(3, 2, rowsOf(20000, 70, 2, 0))
	ours := rowsOf(30000, 40, 0, 10000)
	st = f.commit(4, 3, ours)
	if err := x.Add(ours, st); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := x.Lookup("TXN00020000"); ok {
		t.Fatal("the other worker's id is known before Sync")
	}
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if f.read != 70 {
		t.Errorf("sync read %d rows, want the other worker's 70", f.read)
	}
	_ = theirs
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: nothing new, nothing read; a new snapshot, only its rows.
	st = f.commit(5, 4, rowsOf(40000, 123, 1, 300))
	f.read = 0
	if _, err := os.Stat(path + ".bloom"); err != nil {
		t.Errorf("Close saved no Bloom filter: %v", err)
	}
	x = openIndex(t, path, f)
	if _, err := os.Stat(path + ".bloom"); !os.IsNotExist(err) {
		t.Errorf("Open left the saved Bloom filter in place (it goes stale with the first write): %v", err)
	}
	if s := x.Stats(); s.Rows != 10000+300+70+40 {
		t.Fatalf("reopened with %d ids", s.Rows)
	}
	if err := x.Sync(ctx, engine.TableState{SnapshotID: 4}); err != nil {
		t.Fatal(err)
	}
	if f.read != 0 {
		t.Errorf("restart at the synced snapshot read %d rows", f.read)
	}
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if f.read != 123 {
		t.Errorf("restart read %d rows, want 123", f.read)
	}
	for _, id := range []string{"TXN00000000", "TXN00009999", "TXN00010299", "TXN00020069", "TXN00030039", "TXN00040122"} {
		if _, ok, _ := x.Lookup(id); !ok {
			t.Errorf("%s missing after restart", id)
		}
	}
}

// TestRebuildWhenSyncedSnapshotGone: the synced snapshot expired, or the table was
// replaced: the index rebuilds from a full scan and forgets ids the ledger no longer has.
func TestRebuildWhenSyncedSnapshotGone(t *testing.T) {
	ctx := context.Background()
	f := newFakeLedger()
	x := openIndex(t, filepath.Join(t.TempDir(), "x.idx"), f)
	f.commit(1, 0, rowsOf(0, 100, 0, 0))
	f.commit(2, 1, rowsOf(100, 100, 0, 100))
	if err := x.Sync(ctx, engine.TableState{SnapshotID: 1}); err != nil {
		t.Fatal(err)
	}
	// Snapshot 1 expires (its rows stay in the table, through snapshot 2's manifests).
	f.expired[1] = true
	st := f.commit(3, 2, rowsOf(200, 10, 0, 200))
	f.read = 0
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if s := x.Stats(); s.Rebuilds != 1 || f.read != 210 || s.Rows != 210 {
		t.Errorf("after expiry: stats %+v, read %d; want one rebuild reading 210 rows", s, f.read)
	}

	// The table is replaced by a new one with other rows.
	g := newFakeLedger()
	x.ledger = g
	st = g.commit(77, 0, rowsOf(5000, 5, 1, 0))
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := x.Lookup("TXN00000000"); ok {
		t.Error("an id of the replaced table survived the rebuild")
	}
	if _, ok, _ := x.Lookup("TXN00005004"); !ok {
		t.Error("an id of the new table is missing")
	}
	// And replaced by an empty one.
	if err := x.Sync(ctx, engine.TableState{}); err != nil {
		t.Fatal(err)
	}
	if s := x.Stats(); s.Rows != 0 {
		t.Errorf("%d ids after the ledger emptied", s.Rows)
	}
}

// TestRollback: rows that Add recorded for a snapshot that main no longer has (rolled
// back) are dropped by a rebuild, not kept as phantom owners.
func TestRollback(t *testing.T) {
	ctx := context.Background()
	f := newFakeLedger()
	x := openIndex(t, filepath.Join(t.TempDir(), "x.idx"), f)
	if err := x.Sync(ctx, f.commit(1, 0, rowsOf(0, 10, 0, 0))); err != nil {
		t.Fatal(err)
	}
	gone := rowsOf(10, 5, 0, 10)
	if err := x.Add(gone, f.commit(2, 1, gone)); err != nil {
		t.Fatal(err)
	}
	// main goes back to 1, and another snapshot is committed on top of it.
	if err := x.Sync(ctx, f.commit(3, 1, rowsOf(100, 5, 1, 0))); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := x.Lookup("TXN00000010"); ok {
		t.Error("an id of the rolled-back snapshot is still indexed")
	}
	if _, ok, _ := x.Lookup("TXN00000100"); !ok || x.Stats().Rebuilds != 1 {
		t.Errorf("after rollback: %+v", x.Stats())
	}
}

// TestKeepsFirstOwner: an id met again (a ledger written before deduplication) keeps the
// owner it had.
func TestKeepsFirstOwner(t *testing.T) {
	ctx := context.Background()
	f := newFakeLedger()
	x := openIndex(t, filepath.Join(t.TempDir(), "x.idx"), f)
	first := rowsOf(0, 1, 0, 5)
	again := rowsOf(0, 1, 2, 9)
	again[0].TransactionHash = strings.Repeat("0", 64)
	f.commit(1, 0, first)
	st := f.commit(2, 1, again)
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	o, ok, _ := x.Lookup("TXN00000000")
	if !ok || o != ownerOf(first[0]) {
		t.Errorf("owner %v, want %v", o, ownerOf(first[0]))
	}
	if x.Stats().Conflicts != 1 {
		t.Errorf("conflicts %d", x.Stats().Conflicts)
	}
}

// TestOneProcessPerFile: a second Open of a file, in this process or another, fails
// with ErrLocked while the first holds it.
func TestOneProcessPerFile(t *testing.T) {
	if os.Getenv("DEDUP_HOLD_INDEX") != "" {
		return // the helper side runs in TestHelperHoldIndex
	}
	path := filepath.Join(t.TempDir(), "x.idx")
	x := openIndex(t, path, newFakeLedger())
	if _, err := Open(path, newFakeLedger(), Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open in-process: %v, want ErrLocked", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldIndex$")
	cmd.Env = append(os.Environ(), "DEDUP_HOLD_INDEX="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "locked as expected") {
		t.Fatalf("other process: %v\n%s", err, out)
	}
	x.Close()
	cmd = exec.Command(os.Args[0], "-test.run=^TestHelperHoldIndex$", "-test.v")
	cmd.Env = append(os.Environ(), "DEDUP_HOLD_INDEX="+path, "DEDUP_EXPECT_FREE=1")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "opened as expected") {
		t.Fatalf("other process after Close: %v\n%s", err, out)
	}
}

// TestHelperHoldIndex is the other process of TestOneProcessPerFile.
func TestHelperHoldIndex(t *testing.T) {
	path := os.Getenv("DEDUP_HOLD_INDEX")
	if path == "" {
		t.Skip("helper process only")
	}
	x, err := Open(path, newFakeLedger(), Options{LockTimeout: 200 * time.Millisecond})
	if os.Getenv("DEDUP_EXPECT_FREE") != "" {
		if err != nil {
			t.Fatal(err)
		}
		x.Close()
		fmt.Println("opened as expected")
		return
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("open: %v, want ErrLocked", err)
	}
	fmt.Println("locked as expected:", err)
}

// TestCorruptIndexIsRebuilt: an index that cannot be read as written is moved aside and
// rebuilt from the ledger, and so is a file at the index's path (an earlier version's
// single-file index, or garbage).
func TestCorruptIndexIsRebuilt(t *testing.T) {
	f := newFakeLedger()
	st := f.commit(1, 0, rowsOf(0, 10, 0, 0))
	check := func(t *testing.T, path string) {
		t.Helper()
		x := openIndex(t, path, f)
		if err := x.Sync(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := x.Lookup("TXN00000003"); err != nil || !ok {
			t.Fatalf("id missing: %v", err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("file at the path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.idx")
		if err := os.WriteFile(path, []byte(strings.Repeat("garbage!", 4096)), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, path)
	})
	for name, damage := range map[string]func(t *testing.T, path string){
		"manifest": func(t *testing.T, path string) {
			if err := os.WriteFile(filepath.Join(path, manifestName), []byte("{not a manifest"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"run missing": func(t *testing.T, path string) {
			runs, _ := filepath.Glob(filepath.Join(path, "run-*.dat"))
			if len(runs) == 0 {
				t.Fatal("no run file")
			}
			if err := os.Remove(runs[0]); err != nil {
				t.Fatal(err)
			}
		},
		"run truncated": func(t *testing.T, path string) {
			runs, _ := filepath.Glob(filepath.Join(path, "run-*.dat"))
			if len(runs) == 0 {
				t.Fatal("no run file")
			}
			if err := os.Truncate(runs[0], 100); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.idx")
			check(t, path)
			damage(t, path)
			os.Remove(path + ".bloom") // or the saved filter's count would not match either
			x := openIndex(t, path, f)
			if x.Synced() != 0 || x.Stats().Rows != 0 {
				t.Fatalf("a damaged index claims snapshot %d and %d rows", x.Synced(), x.Stats().Rows)
			}
			x.Close()
			if _, err := os.Stat(path + ".corrupt"); err != nil {
				t.Fatalf("damaged index not kept aside: %v", err)
			}
			check(t, path)
		})
	}
}

func TestFileName(t *testing.T) {
	if got := FileName("demo.ledger", "p/1", ""); got != "demo.ledger~p_1.idx" {
		t.Errorf("FileName = %s", got)
	}
	if got := FileName("demo.ledger", "p", "w 2"); got != "demo.ledger~p~w_2.idx" {
		t.Errorf("FileName = %s", got)
	}
}

func TestBloomFalsePositiveRate(t *testing.T) {
	b := newBloom(100_000)
	for i := range 100_000 {
		b.add(b.hashString(fmt.Sprintf("TXN%08d", i)))
	}
	for i := range 100_000 {
		if !b.mayContain(b.hashString(fmt.Sprintf("TXN%08d", i))) {
			t.Fatal("false negative")
		}
	}
	fp := 0
	for i := range 100_000 {
		if b.mayContain(b.hashString(fmt.Sprintf("NEW%08d", i))) {
			fp++
		}
	}
	if rate := float64(fp) / 100_000; rate > 0.02 {
		t.Errorf("false positive rate %.4f at capacity", rate)
	}
}

// TestAddAnswersBeforeTheWriteEnds holds Add's background write and checks that lookups
// answer from the pending batch meanwhile, that an id already in the file keeps its owner,
// and that the write is finished (and durable) by Close.
func TestAddAnswersBeforeTheWriteEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.db")
	l := newFakeLedger()
	x := openIndex(t, path, l)
	first := rowsOf(0, 10, 0, 0)
	if err := x.Add(first, l.commit(1, 0, first)); err != nil {
		t.Fatal(err)
	}
	x.Synced() // the first write is done: only the second is held
	release := make(chan struct{})
	x.beforeWrite = func() { <-release }
	// TXN00000005 again, from another position: the file's owner must win.
	second := append(rowsOf(10, 10, 1, 0), rowsOf(5, 1, 1, 99)...)
	if err := x.Add(second, l.commit(2, 1, second)); err != nil {
		t.Fatal(err)
	}
	o, ok, err := x.Lookup("TXN00000015")
	if err != nil || !ok || o.Partition.Partition != 1 || o.Offset != 5 {
		t.Fatalf("pending id: %+v %v %v", o, ok, err)
	}
	o, ok, err = x.Lookup("TXN00000005")
	if err != nil || !ok || o.Partition.Partition != 0 || o.Offset != 5 {
		t.Fatalf("id in the file and in the pending batch: %+v %v %v, want the file's owner", o, ok, err)
	}
	if _, ok, _ := x.Lookup("TXN00000099"); ok {
		t.Fatal("an id nobody added was found")
	}
	for i := 10; i < 20; i++ { // the pending batch's filter answers for each of its ids
		if o, ok, err := x.Lookup(fmt.Sprintf("TXN%08d", i)); err != nil || !ok || o.Offset != int64(i-10) {
			t.Fatalf("pending TXN%08d: %+v %v %v", i, o, ok, err)
		}
	}
	close(release)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y := openIndex(t, path, l)
	for id, want := range map[string]int64{"TXN00000015": 1, "TXN00000005": 0} {
		if o, ok, err := y.Lookup(id); err != nil || !ok || o.Partition.Partition != int32(want) || o.Offset != 5 {
			t.Fatalf("after reopening, %s: %+v %v %v", id, o, ok, err)
		}
	}
	// Both snapshots were added on top of each other: the file records 2 as synced.
	if y.Synced() != 2 || y.Stats().Rows != 20 {
		t.Fatalf("synced %d rows %d, want 2 and 20", y.Synced(), y.Stats().Rows)
	}
}

// TestAddPendingKeepsFirstOwner: of an id met twice in one batch (a ledger that holds a
// duplicate), lookups while the batch is being written answer with the first row read, as
// the written runs do afterwards.
func TestAddPendingKeepsFirstOwner(t *testing.T) {
	l := newFakeLedger()
	x := openIndex(t, filepath.Join(t.TempDir(), "ids.db"), l)
	release := make(chan struct{})
	x.beforeWrite = func() { <-release }
	rows := append(rowsOf(30, 1, 0, 0), rowsOf(30, 1, 2, 7)...)
	if err := x.Add(rows, l.commit(1, 0, rows)); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if o, ok, err := x.Lookup("TXN00000030"); err != nil || !ok || o.Partition.Partition != 0 || o.Offset != 0 {
			t.Fatalf("%s: %+v %v %v, want the first row's owner (partition 0, offset 0)", when, o, ok, err)
		}
	}
	check("while the write is held")
	close(release)
	x.Synced() // waits for the write
	check("after the write")
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
}

// Sync to the snapshot whose rows Add is still writing does not wait for the write, and a
// gap in the history (another worker's commit in between) is read at the next Sync.
func TestSyncDoesNotWaitForTheWriteThatCoversIt(t *testing.T) {
	l := newFakeLedger()
	x := openIndex(t, filepath.Join(t.TempDir(), "ids.db"), l)
	release := make(chan struct{})
	x.beforeWrite = func() { <-release }
	first := rowsOf(0, 5, 0, 0)
	st := l.commit(1, 0, first)
	if err := x.Add(first, st); err != nil {
		t.Fatal(err)
	}
	synced := make(chan error, 1)
	go func() { synced <- x.Sync(context.Background(), st) }()
	select {
	case err := <-synced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sync waited for the write that covers its snapshot")
	}
	close(release)
	// Another worker commits 2; ours is 3 on top of it: Add cannot mark 3 synced, and the
	// next Sync reads 2's rows from the ledger.
	x.Synced() // the held write is done
	x.beforeWrite = nil
	other := rowsOf(100, 3, 1, 0)
	l.commit(2, 1, other)
	ours := rowsOf(5, 5, 0, 5)
	st3 := l.commit(3, 2, ours)
	if err := x.Add(ours, st3); err != nil {
		t.Fatal(err)
	}
	if err := x.Sync(context.Background(), st3); err != nil {
		t.Fatal(err)
	}
	if got := x.Synced(); got != 3 {
		t.Fatalf("synced %d, want 3", got)
	}
	if o, ok, err := x.Lookup("TXN00000101"); err != nil || !ok || o.Partition.Partition != 1 {
		t.Fatalf("the other worker's id: %+v %v %v", o, ok, err)
	}
}

// TestSortEntriesKeepsOrderOfAnIdMetTwice: of an id met several times in one batch, the
// entries stay in the order they were added (the first is the owner apply keeps), also on
// batches large enough that the unstable sort reorders equal keys.
func TestSortEntriesKeepsOrderOfAnIdMetTwice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := &batch{}
	seq := map[string]int{}
	for i := range 5000 {
		key := fmt.Sprintf("TXN%08d", rng.IntN(1000)) // about five entries an id
		seq[key]++
		b.entries = append(b.entries, entry{key: []byte(key), val: []byte(fmt.Sprint(seq[key], "/", i))})
	}
	sortEntries(b)
	last := map[string]int{}
	for i, e := range b.entries {
		if i > 0 && bytes.Compare(b.entries[i-1].key, e.key) > 0 {
			t.Fatalf("entry %d %s after %s", i, e.key, b.entries[i-1].key)
		}
		var n, at int
		fmt.Sscanf(string(e.val), "%d/%d", &n, &at)
		if n != last[string(e.key)]+1 {
			t.Fatalf("id %s: entry %d (added %d) came where entry %d was due", e.key, n, at, last[string(e.key)]+1)
		}
		last[string(e.key)] = n
	}
	// Without an id met twice the unstable sort's order is taken.
	b = &batch{}
	for _, i := range rng.Perm(5000) {
		b.entries = append(b.entries, entry{key: []byte(fmt.Sprintf("TXN%08d", i))})
	}
	sortEntries(b)
	if !slices.IsSortedFunc(b.entries, func(a, c entry) int { return bytes.Compare(a.key, c.key) }) {
		t.Fatal("not sorted")
	}
}
