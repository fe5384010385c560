package iceberg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

var p0 = engine.Partition{Topic: "tx", Partition: 0}

// commitBatch is the engine's commit loop in miniature: stage rows [from, from+n) of
// partition 0, commit them conditionally, and on a conflict re-read the table and retry
// (the offsets are still where the batch began, so it merges rather than fences).
func commitBatch(t testing.TB, s *Sink, from, n int) engine.TableState {
	t.Helper()
	ctx := context.Background()
	staged, err := s.Stage(ctx, testRows("tx", 0, from, n), time.Now())
	if err != nil {
		t.Errorf("stage: %v", err)
		return engine.TableState{}
	}
	for attempt := 0; attempt < 50; attempt++ {
		base, err := s.Load(ctx)
		if err != nil {
			t.Errorf("load: %v", err)
			return engine.TableState{}
		}
		if got := base.Offsets[p0]; got != int64(from) {
			t.Errorf("before batch at %d the table says %d: offsets moved under us", from, got)
			return engine.TableState{}
		}
		offs := base.Offsets.Clone()
		offs[p0] = int64(from + n)
		st, err := s.Commit(ctx, base, staged, engine.Commit{Pipeline: testPipeline, Batch: base.Batch + 1, Offsets: offs})
		if err == nil {
			return st
		}
		if !errors.Is(err, engine.ErrConflict) {
			t.Errorf("commit: %v", err)
			return engine.TableState{}
		}
	}
	t.Errorf("batch at %d starved by conflicts", from)
	return engine.TableState{}
}

// checkRows proves that the table holds offsets [0, n) of partition 0 exactly once each.
func checkRows(t *testing.T, c *Catalog, n int) {
	t.Helper()
	seen := map[int64]int{}
	rows := 0
	err := c.ScanLedger(context.Background(), testIdent(), 0, func(r ledger.Row, _ time.Time) error {
		if r.SourceTopic != p0.Topic || r.SourcePartition != p0.Partition {
			return nil // a foreign writer's rows
		}
		rows++
		seen[r.SourceOffset]++
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if rows != n || len(seen) != n {
		t.Fatalf("table has %d rows at %d distinct positions, want %d of each", rows, len(seen), n)
	}
	for off := int64(0); off < int64(n); off++ {
		if seen[off] != 1 {
			t.Fatalf("offset %d appears %d times", off, seen[off])
		}
	}
}

func onlyCompaction() MaintainOptions {
	return MaintainOptions{SkipManifests: true, SkipExpiry: true, SkipOrphans: true, MinInputFiles: 2}
}

func TestExpiryKeepsNewestPipelineSnapshot(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	other, err := c.NewSink(ctx, testIdent(), "p2")
	if err != nil {
		t.Fatal(err)
	}
	// p2 commits once, long ago in the history; p1 commits 6 batches; then foreign writers.
	if _, err := stageCommitPipeline(other, mustLoad(t, other), "p2", engine.Offsets{{Topic: "x", Partition: 0}: 3}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		commitBatch(t, s, i*3, 3)
	}
	want := mustLoad(t, s)
	for i := 0; i < 3; i++ {
		foreignAppend(t, c, i)
	}
	before := len(mustTable(t, c).Metadata().Snapshots())

	res, err := c.Maintain(ctx, testIdent(), MaintainOptions{RetainLast: 1, SkipCompaction: true, SkipManifests: true, SkipOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	meta := mustTable(t, c).Metadata()
	// p2's only snapshot is the oldest of all: keeping it, and everything newer, keeps all.
	if len(res.Expiry.Expired) != 0 || len(meta.Snapshots()) != before {
		t.Fatalf("expired %v of %d snapshots although p2's only snapshot is the oldest", res.Expiry.Expired, before)
	}
	if res.Expiry.Protected[testPipeline] != want.SnapshotID {
		t.Fatalf("protected %v, want p1 -> %d", res.Expiry.Protected, want.SnapshotID)
	}

	// p2 commits again at the head: now only p1's newest, p2's newest and what is newer stay.
	p2, err := stageCommitPipeline(other, mustLoad(t, other), "p2", engine.Offsets{{Topic: "x", Partition: 0}: 4})
	if err != nil {
		t.Fatal(err)
	}
	foreignAppend(t, c, 3)
	res, err = c.Maintain(ctx, testIdent(), MaintainOptions{RetainLast: 1, SkipCompaction: true, SkipManifests: true, SkipOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	meta = mustTable(t, c).Metadata()
	// History newest first: foreign 3, p2, foreign 2, foreign 1, foreign 0, p1 newest = 6.
	if got := len(meta.Snapshots()); got != 6 {
		t.Fatalf("%d snapshots left, want 6 (expired %v)", got, res.Expiry.Expired)
	}
	if meta.SnapshotByID(want.SnapshotID) == nil || meta.SnapshotByID(p2.SnapshotID) == nil {
		t.Fatal("a pipeline's newest snapshot was expired")
	}
	got := mustLoad(t, s)
	if got.Batch != want.Batch || engine.MarshalOffsets(got.Offsets) != engine.MarshalOffsets(want.Offsets) {
		t.Fatalf("after expiry Load = batch %d %v, want batch %d %v", got.Batch, got.Offsets, want.Batch, want.Offsets)
	}
	if st := mustLoad(t, other); st.Offsets[engine.Partition{Topic: "x", Partition: 0}] != 4 {
		t.Fatalf("p2's offsets after expiry = %v", st.Offsets)
	}
	checkRowsAtLeast(t, c, 18)
}

// foreignAppend commits rows with no ledgerstream summary key, as Spark or a repair would.
func foreignAppend(t *testing.T, c *Catalog, i int) {
	t.Helper()
	enc, _ := NewRowEncoder(nil)
	rec := enc.Encode(testRows("foreign", int32(i), 0, 2), time.Now())
	defer rec.Release()
	if _, err := mustTable(t, c).AppendTable(context.Background(), arrowTable(rec), 1024, nil); err != nil {
		t.Fatalf("foreign append: %v", err)
	}
}

func checkRowsAtLeast(t *testing.T, c *Catalog, n int) {
	t.Helper()
	seen := map[int64]bool{}
	err := c.ScanLedger(context.Background(), testIdent(), 0, func(r ledger.Row, _ time.Time) error {
		if r.SourceTopic == "tx" {
			seen[r.SourceOffset] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("%d pipeline rows, want %d", len(seen), n)
	}
}

func TestPlanExpiryRetainLastAndAge(t *testing.T) {
	c := openSQLite(t)
	s := newSink(t, c)
	for i := 0; i < 5; i++ {
		commitBatch(t, s, i, 1)
	}
	meta := mustTable(t, c).Metadata()
	// Everything is younger than an hour: protected by age.
	if p := PlanExpiry(meta, 1, time.Hour, time.Now()); len(p.Expire) != 0 {
		t.Fatalf("age did not protect: %+v", p)
	}
	if p := PlanExpiry(meta, 2, 0, time.Now()); len(p.Expire) != 3 || p.Retain != 2 {
		t.Fatalf("retain-last 2 of 5: %+v", p)
	}
}

func TestCompactionWithConcurrentCommits(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	next := 0
	for i := 0; i < 8; i++ {
		commitBatch(t, s, next, 5)
		next += 5
	}
	filesBefore := countDataFiles(t, c)

	// 1. A pipeline commit lands between compaction's rewrite and its commit: the
	// compaction conflicts and re-applies its files to the new head.
	opts := onlyCompaction()
	opts.beforeCommit = func(step string, attempt int) {
		if attempt == 1 {
			commitBatch(t, s, next, 5)
			next += 5
		}
	}
	res, err := c.Maintain(ctx, testIdent(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts == 0 || res.Compaction.InputFiles != filesBefore || res.Compaction.OutputFiles != 1 {
		t.Fatalf("compaction result %+v (files before %d)", res.Compaction, filesBefore)
	}
	checkRows(t, c, next)
	if st := mustLoad(t, s); st.Offsets[p0] != int64(next) || st.Batch != 9 {
		t.Fatalf("offsets after compaction = %v batch %d, want %d batch 9", st.Offsets, st.Batch, next)
	}
	if got := countDataFiles(t, c); got != 2 {
		t.Fatalf("%d data files after compaction, want 2 (compacted + the concurrent batch)", got)
	}

	// 2. The other order: the batch is planned, compaction commits, then the batch
	// commits: it conflicts once, re-reads the unchanged offsets, and lands.
	base := mustLoad(t, s)
	staged, err := s.Stage(ctx, testRows("tx", 0, next, 5), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	commitBatch(t, s, next, 0) // an empty batch, so that compaction has small files to pack
	base = mustLoad(t, s)
	foreignAppend(t, c, 0)
	foreignAppend(t, c, 1)
	if _, err := c.Maintain(ctx, testIdent(), onlyCompaction()); err != nil {
		t.Fatal(err)
	}
	offs := base.Offsets.Clone()
	offs[p0] = int64(next + 5)
	c1 := engine.Commit{Pipeline: testPipeline, Batch: base.Batch + 1, Offsets: offs}
	if _, err := s.Commit(ctx, base, staged, c1); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("commit planned before compaction: %v, want a conflict", err)
	}
	again := mustLoad(t, s)
	if again.Batch != base.Batch || engine.MarshalOffsets(again.Offsets) != engine.MarshalOffsets(base.Offsets) {
		t.Fatalf("compaction changed the pipeline state: %+v, was %+v", again, base)
	}
	if _, err := s.Commit(ctx, again, staged, c1); err != nil {
		t.Fatalf("retry after compaction: %v", err)
	}
	next += 5

	// 3. Truly concurrent: a writer commits batches while compaction runs repeatedly.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	written := make(chan int, 1)
	var commits atomic.Int64 // batches the writer committed
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := next
		for i := 0; ; i++ {
			select {
			case <-stop:
				written <- n
				return
			default:
			}
			commitBatch(t, s, n, 3)
			n += 3
			commits.Add(1)
			// A pipeline commits once per trigger; a tight loop would be a benchmark of
			// who wins the catalog, not a pipeline.
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for i := 0; i < 3; i++ {
		// Each maintenance run starts once the writer has committed two more batches, so
		// that there is something new to compact and a writer mid-commit.
		target := commits.Load() + 2
		for deadline := time.Now().Add(time.Minute); commits.Load() < target; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the writer committed %d batches in a minute, want %d", commits.Load(), target)
			}
		}
		if _, err := c.Maintain(ctx, testIdent(), MaintainOptions{SkipExpiry: true, SkipOrphans: true, MinInputFiles: 2}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	total := <-written
	if _, err := c.Maintain(ctx, testIdent(), onlyCompaction()); err != nil {
		t.Fatal(err)
	}
	checkRows(t, c, total)
	if st := mustLoad(t, s); st.Offsets[p0] != int64(total) {
		t.Fatalf("offsets %v, want %d", st.Offsets, total)
	}
	// Every snapshot maintenance made carries no ledgerstream key.
	snaps, err := c.Snapshots(ctx, testIdent())
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range snaps {
		if si.Operation == "replace" && si.Pipeline != "" {
			t.Fatalf("maintenance snapshot %d carries pipeline %q", si.SnapshotID, si.Pipeline)
		}
	}
}

func countDataFiles(t *testing.T, c *Catalog) int {
	t.Helper()
	st, err := c.Stats(context.Background(), testIdent())
	if err != nil {
		t.Fatal(err)
	}
	return int(st.DataFiles)
}

func TestOrphanRemoval(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	for i := 0; i < 3; i++ {
		commitBatch(t, s, i*4, 4)
	}
	// A batch staged and never committed (the process died between stage and commit).
	old, err := s.Stage(ctx, testRows("tx", 0, 100, 4), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Everything so far, live files included, is two hours old.
	loc := localPath(mustTable(t, c).Location())
	past := time.Now().Add(-2 * time.Hour)
	err = filepath.WalkDir(loc, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(path, past, past)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A batch staged just now, still to be committed by a running worker.
	young, err := s.Stage(ctx, testRows("tx", 0, 200, 4), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	oldPath, youngPath := localPath(old.(*Staged).Paths()[0]), localPath(young.(*Staged).Paths()[0])

	dry, err := c.Maintain(ctx, testIdent(), MaintainOptions{DryRun: true, SkipCompaction: true, SkipManifests: true, SkipExpiry: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Orphans.Files) != 1 || localPath(dry.Orphans.Files[0]) != oldPath || dry.Orphans.Deleted != 0 {
		t.Fatalf("dry run found %v, want only %s", dry.Orphans.Files, oldPath)
	}
	if _, err := os.Stat(oldPath); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}

	res, err := c.Maintain(ctx, testIdent(), MaintainOptions{SkipCompaction: true, SkipManifests: true, SkipExpiry: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Orphans.Deleted != 1 {
		t.Fatalf("deleted %v", res.Orphans.Files)
	}
	if _, err := os.Stat(oldPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old staged file still there: %v", err)
	}
	if _, err := os.Stat(youngPath); err != nil {
		t.Fatalf("young staged file removed: %v", err)
	}
	checkRows(t, c, 12) // every live data file, manifest and metadata file is still readable
	// The young batch can still commit.
	base := mustLoad(t, s)
	offs := base.Offsets.Clone()
	offs[p0] = 204
	if _, err := s.Commit(ctx, base, young, engine.Commit{Pipeline: testPipeline, Batch: base.Batch + 1, Offsets: offs}); err != nil {
		t.Fatal(err)
	}
}

func TestMaintenancePropertiesAndMetadataBound(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	for i := 0; i < MetadataVersionsMax+15; i++ {
		commitBatch(t, s, i, 1)
	}
	tbl := mustTable(t, c)
	if tbl.Properties()["write.metadata.delete-after-commit.enabled"] != "true" {
		t.Fatalf("properties %v", tbl.Properties())
	}
	entries, err := os.ReadDir(filepath.Join(localPath(tbl.Location()), "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".metadata.json") {
			n++
		}
	}
	if n > MetadataVersionsMax+1 {
		t.Fatalf("%d metadata files, want at most %d", n, MetadataVersionsMax+1)
	}
	res, err := c.Maintain(ctx, testIdent(), MaintainOptions{RetainLast: 5, MinInputFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats(ctx, testIdent())
	if err != nil {
		t.Fatal(err)
	}
	if st.Manifests > 2 || st.DataFiles != 1 || st.Snapshots > 5+2 {
		t.Fatalf("after maintenance %+v (%+v)", st, res)
	}
	checkRows(t, c, MetadataVersionsMax+15)
}

func localPath(p string) string { return strings.TrimPrefix(p, "file://") }

func TestTieredGroups(t *testing.T) {
	task := func(size int64) table.FileScanTask {
		b, err := ice.NewDataFileBuilder(*ice.UnpartitionedSpec, ice.EntryContentData, fmt.Sprintf("f-%d", size),
			ice.ParquetFile, nil, nil, nil, 1, size)
		if err != nil {
			t.Fatal(err)
		}
		return table.FileScanTask{File: b.Build()}
	}
	const k = 1 << 10
	var tasks []table.FileScanTask
	// Six tiny batch files, one compacted file of 600 KiB (tier 1) and two of 5 MiB (tier 3).
	for range 6 {
		tasks = append(tasks, task(5*k))
	}
	tasks = append(tasks, task(600*k), task(5*k*k), task(5*k*k+1))
	plan := compaction.Plan{Groups: []compaction.Group{{Tasks: tasks}}}

	groups, waiting := tieredGroups(plan, 5, 128*k*k)
	if len(groups) != 1 || len(groups[0].Tasks) != 6 || groups[0].TotalSizeBytes != 30*k {
		t.Fatalf("groups %+v, want the six tiny files alone", groups)
	}
	if waiting != 3 {
		t.Fatalf("waiting = %d, want 3 (the larger files wait for their tiers to fill)", waiting)
	}
	// A full tier is packed toward the target, and a last bin too small waits.
	tasks = nil
	for range 7 {
		tasks = append(tasks, task(5*k*k))
	}
	groups, waiting = tieredGroups(compaction.Plan{Groups: []compaction.Group{{Tasks: tasks}}}, 2, 16*k*k)
	if len(groups) != 2 || len(groups[0].Tasks) != 3 || len(groups[1].Tasks) != 3 || waiting != 1 {
		t.Fatalf("groups %d (%d, %d files), waiting %d; want two groups of 3 and 1 waiting", len(groups),
			len(groups[0].Tasks), len(groups[len(groups)-1].Tasks), waiting)
	}
	if sizeTier(0) != 0 || sizeTier(tierBase-1) != 0 || sizeTier(tierBase) != 1 || sizeTier(tierBase*tierFactor) != 2 {
		t.Fatal("sizeTier bounds")
	}
}

func TestAllNotExist(t *testing.T) {
	gone := &fs.PathError{Op: "remove", Path: "a", Err: fs.ErrNotExist}
	if !allNotExist(errors.Join(gone, fmt.Errorf("wrapped: %w", gone))) {
		t.Fatal("joined not-exist errors")
	}
	if allNotExist(errors.Join(gone, errors.New("permission denied"))) {
		t.Fatal("a real failure among them")
	}
}

// A tier that has not filled is not compacted, and the result says nothing would be
// written, dry run or not (the estimate is of the tiered groups, not of every small file).
func TestCompactionWaitsForATierToFill(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	for i := range 3 {
		commitBatch(t, s, i*10, 10)
	}
	for _, dry := range []bool{true, false} {
		opts := onlyCompaction()
		opts.MinInputFiles, opts.DryRun = 5, dry
		res, err := c.Maintain(ctx, testIdent(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if cr := res.Compaction; cr.Groups != 0 || cr.InputFiles != 0 || cr.OutputFiles != 0 || cr.OutputBytes != 0 || cr.SkippedFiles != 3 {
			t.Fatalf("dry run %v: compaction %+v, want nothing planned and 3 files waiting", dry, cr)
		}
	}
}

// A table that never stops moving: every maintenance attempt is refused by a pipeline
// commit that lands just before it. Maintenance keeps trying for ConflictTimeout, not a
// count of attempts, then gives up with an error that says why and what to do, and the
// table holds every row the pipeline committed.
func TestMaintenanceGivesUpAfterConflictTimeout(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	next := 0
	for range 4 {
		commitBatch(t, s, next, 5)
		next += 5
	}
	opts := onlyCompaction()
	opts.ConflictTimeout = 300 * time.Millisecond
	attempts := 0
	opts.beforeCommit = func(string, int) {
		attempts++
		commitBatch(t, s, next, 1)
		next++
	}
	start := time.Now()
	res, err := c.Maintain(ctx, testIdent(), opts)
	if err == nil {
		t.Fatalf("maintenance succeeded against a table that moved before each of its %d attempts: %+v", attempts, res)
	}
	for _, want := range []string{"gave up after", "conflicts in", "other writers (pipeline workers) committed", "run maintain again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if attempts < 2 {
		t.Errorf("%d attempts in %s, want it to keep trying for the conflict timeout", attempts, time.Since(start))
	}
	checkRows(t, c, next)
}
