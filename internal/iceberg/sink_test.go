package iceberg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

const testPipeline = "p1"

func openSQLite(t testing.TB) *Catalog {
	t.Helper()
	dir := t.TempDir()
	c, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testIdent() table.Identifier { return table.Identifier{"demo", "transactions_ledger"} }

func testRows(topic string, part int32, from, n int) []ledger.Row {
	rows := make([]ledger.Row, n)
	base := time.Date(2025, 1, 16, 10, 0, 0, 123456000, time.UTC)
	for i := range rows {
		off := int64(from + i)
		rows[i] = ledger.Row{
			TransactionID:   fmt.Sprintf("TXN%s%d%08d", topic, part, off),
			AccountFrom:     fmt.Sprintf("ACC%04d", off%9973),
			AccountTo:       fmt.Sprintf("ACC%04d", (off*7)%9973),
			Amount:          999999 + off*101, // 9999.99 + …
			Currency:        "GBP",
			TransactionType: "payment",
			TransactionHash: fmt.Sprintf("%064x", off),
			EventTime:       base.Add(time.Duration(off) * time.Second),
			SourceTopic:     topic,
			SourcePartition: part,
			SourceOffset:    off,
		}
	}
	return rows
}

func newSink(t testing.TB, c *Catalog) *Sink {
	t.Helper()
	s, err := c.NewSink(context.Background(), testIdent(), testPipeline)
	if err != nil {
		t.Fatalf("new sink: %v", err)
	}
	return s
}

func mustLoad(t testing.TB, s *Sink) engine.TableState {
	t.Helper()
	st, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return st
}

func stageCommit(t testing.TB, s *Sink, base engine.TableState, rows []ledger.Row, batch int64, offs engine.Offsets) (engine.TableState, error) {
	t.Helper()
	ctx := context.Background()
	st, err := s.Stage(ctx, rows, time.Date(2025, 1, 16, 11, 0, 0, 987654321, time.UTC))
	if err != nil {
		t.Fatalf("stage: %v", err)
	}
	return s.Commit(ctx, base, st, engine.Commit{Pipeline: testPipeline, Batch: batch, Offsets: offs})
}

func scanAll(t testing.TB, c *Catalog) (map[string]ledger.Row, []time.Time) {
	t.Helper()
	got := map[string]ledger.Row{}
	var procs []time.Time
	err := c.ScanLedger(context.Background(), testIdent(), 0, func(r ledger.Row, p time.Time) error {
		if _, dup := got[r.TransactionID]; dup {
			t.Errorf("transaction %s read twice", r.TransactionID)
		}
		got[r.TransactionID] = r
		procs = append(procs, p)
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return got, procs
}

func testRoundTrip(t *testing.T, c *Catalog) {
	s := newSink(t, c)
	st0 := mustLoad(t, s)
	if st0.SnapshotID != 0 || len(st0.Offsets) != 0 || st0.Batch != 0 {
		t.Fatalf("fresh table state = %+v", st0)
	}
	rows := append(testRows("tx", 0, 0, 100), testRows("tx", 1, 40, 50)...)
	rows[3].EventTime = time.Time{} // a null event_timestamp survives as zero
	offs := engine.Offsets{{Topic: "tx", Partition: 0}: 100, {Topic: "tx", Partition: 1}: 90}
	st1, err := stageCommit(t, s, st0, rows, 1, offs)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if st1.SnapshotID == 0 || st1.Batch != 1 || len(st1.Offsets) != 2 {
		t.Fatalf("state after commit = %+v", st1)
	}

	// A fresh sink (another process) sees the same.
	s2 := newSink(t, c)
	got := mustLoad(t, s2)
	if got.SnapshotID != st1.SnapshotID || got.Batch != 1 || got.Offsets[engine.Partition{Topic: "tx", Partition: 0}] != 100 ||
		got.Offsets[engine.Partition{Topic: "tx", Partition: 1}] != 90 || len(got.Offsets) != 2 {
		t.Fatalf("loaded state = %+v, want %+v", got, st1)
	}

	read, procs := scanAll(t, c)
	if len(read) != len(rows) {
		t.Fatalf("scanned %d rows, want %d", len(read), len(rows))
	}
	for _, w := range rows {
		g, ok := read[w.TransactionID]
		if !ok {
			t.Fatalf("row %s missing", w.TransactionID)
		}
		if !g.EventTime.Equal(w.EventTime) || g.EventTime.IsZero() != w.EventTime.IsZero() {
			t.Errorf("row %s: event time %v, want %v", w.TransactionID, g.EventTime, w.EventTime)
		}
		g.EventTime, w.EventTime = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("row read back\n got %+v\nwant %+v", g, w)
		}
	}
	wantProc := time.Date(2025, 1, 16, 11, 0, 0, 987654000, time.UTC) // truncated to µs
	for _, p := range procs {
		if !p.Equal(wantProc) || p.Location() != time.UTC {
			t.Fatalf("processing_time %v, want %v", p, wantProc)
		}
	}
	r := read[rows[0].TransactionID]
	if r.Amount != 999999 {
		t.Fatalf("amount %d, want 999999 (9999.99)", r.Amount)
	}

	snaps, err := c.Snapshots(context.Background(), testIdent())
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Pipeline != testPipeline || snaps[0].Batch != 1 || snaps[0].Summary["added-records"] != "150" {
		t.Fatalf("snapshots = %+v", snaps)
	}
}

func TestRoundTripSQLite(t *testing.T) { testRoundTrip(t, openSQLite(t)) }

func testConflict(t *testing.T, c *Catalog) {
	ctx := context.Background()
	a, b := newSink(t, c), newSink(t, c)
	p0 := engine.Partition{Topic: "tx", Partition: 0}

	// Round 1 on an empty table (the SQL catalog says "created concurrently"), round 2 on a
	// table with history ("has changed").
	for round := 1; round <= 2; round++ {
		baseA, baseB := mustLoad(t, a), mustLoad(t, b)
		if _, err := stageCommit(t, a, baseA, testRows("tx", 0, round*100, 10), int64(round), engine.Offsets{p0: int64(round*100 + 10)}); err != nil {
			t.Fatalf("round %d: commit a: %v", round, err)
		}
		stB, err := b.Stage(ctx, testRows("tx", 0, round*100+5, 10), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Commit(ctx, baseB, stB, engine.Commit{Pipeline: testPipeline, Batch: int64(round), Offsets: engine.Offsets{p0: 999}})
		if !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("round %d: commit b on the old snapshot: err = %v, want ErrConflict", round, err)
		}
		t.Logf("round %d: conflict: %v", round, err)
		if err := b.Discard(ctx, stB); err != nil {
			t.Fatalf("discard: %v", err)
		}
		for _, p := range stB.(*Staged).Paths() {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("discarded file %s still there (%v)", p, err)
			}
		}
		got := mustLoad(t, b)
		if got.Offsets[p0] != int64(round*100+10) || got.Batch != int64(round) {
			t.Fatalf("round %d: after the conflict, state = %+v", round, got)
		}
	}
	read, _ := scanAll(t, c)
	if len(read) != 20 {
		t.Fatalf("table holds %d rows, want 20 (nothing of the conflicting commits)", len(read))
	}
	snaps, err := c.Snapshots(ctx, testIdent())
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}

	// A base that does not match the sink's loaded table is refused before any I/O.
	stale := engine.TableState{SnapshotID: snaps[1].SnapshotID}
	st, _ := b.Stage(ctx, nil, time.Now())
	if _, err := b.Commit(ctx, stale, st, engine.Commit{Pipeline: testPipeline, Batch: 3}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("commit on a stale base: %v, want ErrConflict", err)
	}
}

func TestConflictSQLite(t *testing.T) { testConflict(t, openSQLite(t)) }

func TestForeignCommitKeepsOffsets(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	offs := engine.Offsets{{Topic: "tx", Partition: 0}: 10}
	mine, err := stageCommit(t, s, mustLoad(t, s), testRows("tx", 0, 0, 10), 7, offs)
	if err != nil {
		t.Fatal(err)
	}

	// A foreign writer (maintenance, Spark) appends with no ledgerstream summary, and another
	// pipeline commits too.
	tbl, err := c.LoadTable(ctx, testIdent())
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := NewRowEncoder(nil)
	rec := enc.Encode(testRows("other", 0, 0, 5), time.Now())
	defer rec.Release()
	tbl, err = tbl.AppendTable(ctx, arrowTable(rec), 1024, nil)
	if err != nil {
		t.Fatalf("foreign append: %v", err)
	}
	other, err := c.NewSink(ctx, testIdent(), "p2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stageCommitPipeline(other, mustLoad(t, other), "p2", engine.Offsets{{Topic: "x", Partition: 0}: 1}); err != nil {
		t.Fatal(err)
	}

	got := mustLoad(t, s)
	if got.SnapshotID == mine.SnapshotID || got.SnapshotID != mainSnapshotID(mustTable(t, c).Metadata()) {
		t.Fatalf("SnapshotID %d: want the foreign head", got.SnapshotID)
	}
	if got.Batch != 7 || len(got.Offsets) != 1 || got.Offsets[engine.Partition{Topic: "tx", Partition: 0}] != 10 {
		t.Fatalf("state after foreign commits = %+v, want batch 7 and our offsets", got)
	}
	_ = tbl
}

func stageCommitPipeline(s *Sink, base engine.TableState, pipeline string, offs engine.Offsets) (engine.TableState, error) {
	st, err := s.Stage(context.Background(), nil, time.Now())
	if err != nil {
		return engine.TableState{}, err
	}
	return s.Commit(context.Background(), base, st, engine.Commit{Pipeline: pipeline, Batch: 1, Offsets: offs})
}

func mustTable(t testing.TB, c *Catalog) *table.Table {
	t.Helper()
	tbl, err := c.LoadTable(context.Background(), testIdent())
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestZeroRowCommitCarriesOffsets(t *testing.T) {
	c := openSQLite(t)
	s := newSink(t, c)
	p0 := engine.Partition{Topic: "tx", Partition: 0}
	st1, err := stageCommit(t, s, mustLoad(t, s), nil, 1, engine.Offsets{p0: 42})
	if err != nil {
		t.Fatalf("empty commit on an empty table: %v", err)
	}
	if st1.SnapshotID == 0 {
		t.Fatal("empty commit made no snapshot")
	}
	st2, err := stageCommit(t, s, st1, testRows("tx", 0, 42, 3), 2, engine.Offsets{p0: 45})
	if err != nil {
		t.Fatal(err)
	}
	clean := engine.Offsets{p0: 50}
	stEmpty, err := s.Stage(context.Background(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st3, err := s.Commit(context.Background(), st2, stEmpty, engine.Commit{Pipeline: testPipeline, Batch: 3, Offsets: engine.Offsets{p0: 50}, Clean: clean})
	if err != nil {
		t.Fatalf("empty commit: %v", err)
	}
	if st3.Clean[p0] != 50 {
		t.Fatalf("Commit returned Clean %v", st3.Clean)
	}
	if st2.Clean != nil {
		t.Fatalf("a commit without Clean returned %v", st2.Clean)
	}
	if st3.SnapshotID == st2.SnapshotID {
		t.Fatal("empty commit did not move the head")
	}
	got := mustLoad(t, newSink(t, c))
	if got.SnapshotID != st3.SnapshotID || got.Batch != 3 || got.Offsets[p0] != 50 || len(got.Clean) != 1 || got.Clean[p0] != 50 {
		t.Fatalf("state = %+v, want batch 3, offset 50, clean 50", got)
	}
	read, _ := scanAll(t, c)
	if len(read) != 3 {
		t.Fatalf("%d rows after an empty commit, want 3", len(read))
	}
}

func TestParquetFieldIDs(t *testing.T) {
	c := openSQLite(t)
	s := newSink(t, c)
	mustLoad(t, s)
	st, err := s.Stage(context.Background(), testRows("tx", 0, 0, 1000), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	paths := st.(*Staged).Paths()
	if len(paths) != 1 {
		t.Fatalf("%d files for 1000 rows, want 1", len(paths))
	}
	path := strings.TrimPrefix(paths[0], "file://")
	if !strings.HasPrefix(path, c.Warehouse()) || filepath.Ext(path) != ".parquet" {
		t.Fatalf("data file %s is not a Parquet file under the warehouse %s", path, c.Warehouse())
	}
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := r.MetaData().Schema
	want := LedgerSchema().Fields()
	if sc.NumColumns() != len(want) {
		t.Fatalf("%d columns, want %d", sc.NumColumns(), len(want))
	}
	for i, f := range want {
		col := sc.Column(i)
		if col.Name() != f.Name || int(col.SchemaNode().FieldID()) != f.ID {
			t.Errorf("column %d: %s field_id %d, want %s field_id %d", i, col.Name(), col.SchemaNode().FieldID(), f.Name, f.ID)
		}
	}
	if n := r.NumRows(); n != 1000 {
		t.Fatalf("%d rows in the file", n)
	}
	rg := r.MetaData().RowGroup(0)
	for i := 0; i < rg.NumColumns(); i++ {
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Compression().String() != "ZSTD" {
			t.Errorf("column %d compressed with %s, want ZSTD", i, cc.Compression())
		}
		name := sc.Column(i).Name()
		if want := slices.Contains(dictionaryOnColumns, name); cc.HasDictionaryPage() != want {
			t.Errorf("column %s: dictionary page %v, want %v", name, cc.HasDictionaryPage(), want)
		}
	}
}

func TestIncompatibleSchemaRefused(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	if err := c.EnsureNamespace(ctx, table.Identifier{"demo"}); err != nil {
		t.Fatal(err)
	}
	bad := ice.NewSchema(0,
		ice.NestedField{ID: 1, Name: ColTransactionID, Type: ice.PrimitiveTypes.String, Required: true},
		ice.NestedField{ID: 2, Name: ColAmount, Type: ice.PrimitiveTypes.Float64, Required: true},
	)
	if _, err := c.Unwrap().CreateTable(ctx, testIdent(), bad); err != nil {
		t.Fatal(err)
	}
	_, err := c.NewSink(ctx, testIdent(), testPipeline)
	if err == nil || !strings.Contains(err.Error(), "incompatible schema") {
		t.Fatalf("NewSink on an incompatible table: %v", err)
	}
	t.Log(err)
}

func TestDropTable(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	if _, err := stageCommit(t, s, mustLoad(t, s), testRows("tx", 0, 0, 10), 1, engine.Offsets{}); err != nil {
		t.Fatal(err)
	}
	if err := c.DropTable(ctx, testIdent(), true); err != nil {
		t.Fatal(err)
	}
	if err := c.DropTable(ctx, testIdent(), true); err != nil {
		t.Fatalf("dropping a missing table: %v", err)
	}
	if _, err := c.LoadTable(ctx, testIdent()); err == nil {
		t.Fatal("table still loads after drop")
	}
}

// TestExpiredHistory: when expiry removed every snapshot of the pipeline, Load must not
// pretend the pipeline never ran (that would replay from the starting position).
func TestExpiredHistory(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	if _, err := stageCommit(t, s, mustLoad(t, s), testRows("tx", 0, 0, 5), 1, engine.Offsets{{Topic: "tx", Partition: 0}: 5}); err != nil {
		t.Fatal(err)
	}
	other, err := c.NewSink(ctx, testIdent(), "p2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stageCommitPipeline(other, mustLoad(t, other), "p2", engine.Offsets{}); err != nil {
		t.Fatal(err)
	}
	txn := mustTable(t, c).NewTransaction()
	if err := txn.ExpireSnapshots(table.WithRetainLast(1), table.WithOlderThan(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx); !errors.Is(err, engine.ErrHistoryTruncated) {
		t.Fatalf("Load after our snapshots expired: %v, want ErrHistoryTruncated", err)
	}
	if st, err := other.Load(ctx); err != nil || st.Batch != 1 {
		t.Fatalf("the surviving pipeline: %+v, %v", st, err)
	}
}

// A large batch is written as one file per core, side by side; every row lands once.
func TestLargeBatchStagedInParallel(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	base, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * minRowsPerFile
	staged, err := s.Stage(ctx, testRows("tx", 0, 0, n), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := min(runtime.GOMAXPROCS(0), 3); len(staged.(*Staged).Files()) != want {
		t.Errorf("%d files, want %d (one per core)", len(staged.(*Staged).Files()), want)
	}
	if _, err := s.Commit(ctx, base, staged, engine.Commit{Pipeline: testPipeline, Batch: 1,
		Offsets: engine.Offsets{{Topic: "tx", Partition: 0}: int64(n)}}); err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]bool, n)
	if err := c.ScanLedger(ctx, testIdent(), 0, func(r ledger.Row, _ time.Time) error {
		if seen[r.SourceOffset] {
			t.Fatalf("offset %d twice", r.SourceOffset)
		}
		seen[r.SourceOffset] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("%d rows, want %d", len(seen), n)
	}
}

// TestNeverCommittedAfterMaintenanceExpiry: a pipeline that never committed starts from its
// configured position even when maintenance expired older snapshots (which it records),
// while a pipeline that did commit keeps its offsets.
func TestNeverCommittedAfterMaintenanceExpiry(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	base := mustLoad(t, s)
	for i := range 3 {
		var err error
		if base, err = stageCommit(t, s, base, testRows("tx", 0, i*5, 5), int64(i+1), engine.Offsets{{Topic: "tx", Partition: 0}: int64(i*5 + 5)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Maintain(ctx, testIdent(), MaintainOptions{RetainLast: 1, SkipCompaction: true, SkipManifests: true, SkipOrphans: true}); err != nil {
		t.Fatal(err)
	}
	fresh, err := c.NewSink(ctx, testIdent(), "never-committed")
	if err != nil {
		t.Fatal(err)
	}
	st, err := fresh.Load(ctx)
	if err != nil || len(st.Offsets) != 0 || st.Batch != 0 {
		t.Fatalf("a pipeline that never committed, after maintenance expired the history: %+v, %v; want a clean start", st, err)
	}
	if st, err := s.Load(ctx); err != nil || st.Batch != 3 {
		t.Fatalf("the pipeline that committed: %+v, %v", st, err)
	}
}
