package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// TestSoakMaintenance drives the real engine and the real Iceberg commit path with a
// synthetic in-process source (no Kafka): many batches of a few rows, with automatic
// maintenance every 50 batches, watching commit latency and metadata size. Every check it
// logs the median commit latency of the last window of commits, the snapshot, file and
// manifest counts, the size of the metadata folder, and checks the ledger as verify does
// (every offset below the committed one exactly once, no id twice). At the end it checks
// that the metrics endpoint reports what report does.
//
// By default it is small (150 commits, about ten seconds) and checks correctness only. The
// soak proper is opt-in (README, "Soak"):
//
//	LEDGERSTREAM_MAINT_SOAK=N              N commits (e.g. 20000), and the latency check:
//	                                       end median within 1.5x of the start
//	LEDGERSTREAM_MAINT_SOAK_TRIGGER=D      one batch per D (default: as fast as possible)
//	LEDGERSTREAM_MAINT_SOAK_CHECK_EVERY=N  figures and checks every N commits (1000)
//	LEDGERSTREAM_MAINT_SOAK_DIR=PATH       keep the tables there (default: a temp dir)
//
// as in: LEDGERSTREAM_MAINT_SOAK=20000 go test -v -timeout 0 -run TestSoakMaintenance ./internal/pipeline/
func TestSoakMaintenance(t *testing.T) {
	s := soakConfig{commits: 150, rowsPerCommit: 5, partitions: 3, maintainEvery: 50, checkEvery: 50, window: 50}
	if v := os.Getenv("LEDGERSTREAM_MAINT_SOAK"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LEDGERSTREAM_MAINT_SOAK=%q: want a number of commits", v)
		}
		s.commits, s.checkEvery, s.window, s.latency = n, 1000, 500, true
	} else if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	if v := os.Getenv("LEDGERSTREAM_MAINT_SOAK_CHECK_EVERY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LEDGERSTREAM_MAINT_SOAK_CHECK_EVERY=%q: want a number of commits", v)
		}
		s.checkEvery = n
	}
	if v := os.Getenv("LEDGERSTREAM_MAINT_SOAK_TRIGGER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LEDGERSTREAM_MAINT_SOAK_TRIGGER=%q: %v", v, err)
		}
		s.trigger = d
	}
	s.dir = os.Getenv("LEDGERSTREAM_MAINT_SOAK_DIR")
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	if err := soak(context.Background(), t, s); err != nil {
		t.Fatal(err)
	}
}

type soakConfig struct {
	commits, rowsPerCommit, partitions int
	trigger                            time.Duration
	maintainEvery                      int64
	checkEvery, window                 int
	latency                            bool // check that latency does not climb
	dir                                string
}

// synthSource is an engine.Source of generated transactions on n partitions, delivering at
// most per records per trigger (or without limit when trigger is 0).
type synthSource struct {
	mu      sync.Mutex
	parts   []engine.Partition
	next    engine.Offsets
	gen     *ledger.Generator
	rr      int
	trigger time.Duration
	per     int
	window  time.Time
	used    int
}

func (s *synthSource) Fetch(ctx context.Context, max int) ([]engine.Record, error) {
	s.mu.Lock()
	n := max
	if s.trigger > 0 {
		if now := time.Now(); now.Sub(s.window) >= s.trigger {
			s.window, s.used = now, 0
		}
		n = min(n, s.per-s.used)
	}
	if n <= 0 {
		s.mu.Unlock()
		<-ctx.Done() // nothing more this trigger: the engine's fetch deadline ends the wait
		return nil, nil
	}
	out := make([]engine.Record, n)
	for i := range out {
		p := s.parts[s.rr%len(s.parts)]
		s.rr++
		m := s.gen.Next(time.Now())
		out[i] = engine.Record{Partition: p, Offset: s.next[p], Key: m.Key, Value: m.Value, Timestamp: time.Now()}
		s.next[p]++
	}
	s.used += n
	s.mu.Unlock()
	return out, nil
}

func (s *synthSource) Seek(o engine.Offsets) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, off := range o {
		s.next[p] = off
	}
}
func (s *synthSource) Assigned() []engine.Partition { return slices.Clone(s.parts) }
func (s *synthSource) Release()                     {}
func (s *synthSource) CommitAdvisory(context.Context, engine.Offsets) error {
	return nil
}
func (s *synthSource) Ends(context.Context) (engine.Offsets, engine.Offsets, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := engine.Offsets{}
	for _, p := range s.parts {
		start[p] = 0
	}
	return start, s.next.Clone(), nil
}

// Lag makes synthSource the observer's source: nothing is ever behind a source that
// generates on demand.
func (s *synthSource) Lag(context.Context, engine.Offsets) (map[engine.Partition]kafka.PartitionLag, error) {
	return nil, nil
}

// latencyTable records the duration of each successful commit (on the loop's goroutine).
type latencyTable struct {
	engine.Table[ledger.Row]
	lat []time.Duration
}

func (l *latencyTable) Commit(ctx context.Context, base engine.TableState, staged engine.Staged, c engine.Commit) (engine.TableState, error) {
	start := time.Now()
	st, err := l.Table.Commit(ctx, base, staged, c)
	if err == nil {
		l.lat = append(l.lat, time.Since(start))
	}
	return st, err
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	c := slices.Clone(ds)
	slices.Sort(c)
	return c[len(c)/2]
}

func dirSize(dir string) (size int64, files int, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size += info.Size()
		files++
		return nil
	})
	return size, files, err
}

func soak(ctx context.Context, t *testing.T, s soakConfig) error {
	const pipeline = "soak"
	ident := table.Identifier{"soak", "ledger"}
	cat, err := iceberg.Open(ctx, iceberg.Config{DataDir: s.dir})
	if err != nil {
		return err
	}
	defer cat.Close()
	sink, err := cat.NewSink(ctx, ident, pipeline)
	if err != nil {
		return err
	}
	mopts := iceberg.MaintainOptions{
		RetainLast: 50,
		// Time runs fast in a soak (20,000 commits in minutes); orphans of a minute are old.
		OrphanOlderThan: time.Minute,
		MinInputFiles:   iceberg.DefaultMinInputFiles,
	}
	trigger := s.trigger
	if trigger <= 0 {
		trigger = time.Hour // batches close on size; the trigger never fires
	}
	// Warnings only: a line per batch would drown the figures.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mopts.Logger = log
	obs := newObserver(cat, ident, trigger, log)
	timed := &latencyTable{Table: sink}
	sinks := obs.wrap(engine.Sinks{Ledger: timed})
	eng := engine.New(engine.Config{Pipeline: pipeline, Trigger: trigger, MaxBatchRecords: s.rowsPerCommit, Logger: log}, sinks)
	obs.stats = eng.Stats()
	src := &synthSource{next: engine.Offsets{}, gen: ledger.NewGenerator(42, ledger.GeneratorOptions{}), trigger: s.trigger, per: s.rowsPerCommit}
	for i := 0; i < s.partitions; i++ {
		src.parts = append(src.parts, engine.Partition{Topic: "soak", Partition: int32(i)})
	}
	obs.source = src
	start, err := eng.Resume(ctx, src.parts)
	if err != nil {
		return err
	}
	for p, off := range start {
		src.next[p] = max(off, 0)
	}

	reg := metrics.NewRegistry()
	reg.Register(metrics.Engine(obs.stats))
	reg.Register(obs)
	srv, err := metrics.Listen("127.0.0.1:0", metrics.Handler(reg, obs.ready))
	if err != nil {
		return err
	}
	defer srv.Close()

	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	metaDir := filepath.Join(strings.TrimPrefix(tbl.Location(), "file://"), "metadata")
	auto := newScheduler(cat, ident, Schedule{EveryCommits: s.maintainEvery, Options: mopts}, obs, eng.Refresh, log)
	t.Logf("soak: %d commits of %d rows on %d partitions, trigger %s, maintenance every %d commits (retain-last %d), data in %s",
		s.commits, s.rowsPerCommit, s.partitions, s.trigger, s.maintainEvery, mopts.RetainLast, s.dir)
	t.Logf("%8s %9s %10s %6s %6s %9s %10s %6s %s", "commits", "elapsed", "median", "snaps", "files", "manifests", "metadata", "mfiles", "check")

	var failures []string
	began := time.Now()
	var startMedian, maxMeta int64
	var maintTotal time.Duration
	checked := -1
	check := func() error {
		n := len(timed.lat)
		if n == checked {
			return nil
		}
		checked = n
		med := median(timed.lat[max(0, n-s.window):])
		if startMedian == 0 && n >= s.window {
			startMedian = int64(median(timed.lat[:s.window]))
		}
		size, files, err := dirSize(metaDir)
		if err != nil {
			return err
		}
		maxMeta = max(maxMeta, size)
		st, err := cat.Stats(ctx, ident)
		if err != nil {
			return err
		}
		verdict := "ok"
		if err := soakVerify(ctx, cat, ident, sink); err != nil {
			verdict = "FAIL: " + err.Error()
			failures = append(failures, fmt.Sprintf("at %d commits: %v", n, err))
		}
		t.Logf("%8d %9s %10s %6d %6d %9d %10s %6d %s", n, time.Since(began).Round(time.Second), med.Round(10*time.Microsecond),
			st.Snapshots, st.DataFiles, st.Manifests, bytesStr(size), files, verdict)
		return nil
	}
	// The steps of loop, with checks between them.
	for len(timed.lat) < s.commits {
		t0, before := time.Now(), obs.stats.Batches.Load()
		if _, err := eng.Step(ctx, src); err != nil {
			return err
		}
		obs.step(t0, obs.stats.Batches.Load() > before)
		m0, runs := time.Now(), obs.maintRuns.Load()
		auto.maybe(ctx, obs.stats.Batches.Load())
		if obs.maintRuns.Load() > runs {
			maintTotal += time.Since(m0)
		}
		if len(timed.lat)%s.checkEvery == 0 && obs.stats.Batches.Load() > before {
			if err := check(); err != nil {
				return err
			}
		}
	}
	if err := check(); err != nil {
		return err
	}
	maintRuns := obs.maintRuns.Load()
	if maintRuns != int64(s.commits)/s.maintainEvery || obs.maintErrs.Load() != 0 {
		failures = append(failures, fmt.Sprintf("maintenance ran %d times with %d errors, want %d runs without errors",
			maintRuns, obs.maintErrs.Load(), int64(s.commits)/s.maintainEvery))
	}
	endMedian := median(timed.lat[max(0, len(timed.lat)-s.window):])
	if startMedian == 0 {
		startMedian = int64(median(timed.lat))
	}
	ratio := float64(endMedian) / float64(max(startMedian, 1))
	t.Logf("commit latency median: first %d commits %s, last %d commits %s (x%.2f, target <= 1.5)",
		s.window, time.Duration(startMedian).Round(10*time.Microsecond), s.window, endMedian.Round(10*time.Microsecond), ratio)
	t.Logf("metadata folder: at most %s; maintenance ran %d times, %s in total (mean %s)",
		bytesStr(maxMeta), maintRuns, maintTotal.Round(time.Millisecond), (maintTotal / time.Duration(max(maintRuns, 1))).Round(time.Millisecond))
	if s.latency && ratio > 1.5 {
		failures = append(failures, fmt.Sprintf("end latency is %.2fx the start", ratio))
	}
	if err := soakCompareMetrics(ctx, t, cat, ident, obs, srv.Addr()); err != nil {
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 {
		return errors.New("soak failed: " + strings.Join(failures, "; "))
	}
	return nil
}

func bytesStr(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// soakVerify is verify's invariant on a ledger fed by synthSource (no rejects): for every
// partition, every offset below the committed one is in exactly one row, none above, and no
// transaction id appears twice.
func soakVerify(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier, sink *iceberg.Sink) error {
	st, err := sink.Load(ctx)
	if err != nil {
		return err
	}
	seen := map[engine.Partition]map[int64]bool{}
	ids := map[string]bool{}
	var problems []string
	err = cat.ScanLedger(ctx, ident, st.SnapshotID, func(r ledger.Row, _ time.Time) error {
		p := engine.Partition{Topic: r.SourceTopic, Partition: r.SourcePartition}
		if seen[p] == nil {
			seen[p] = map[int64]bool{}
		}
		if seen[p][r.SourceOffset] && len(problems) < 5 {
			problems = append(problems, fmt.Sprintf("%s/%d@%d twice", p.Topic, p.Partition, r.SourceOffset))
		}
		seen[p][r.SourceOffset] = true
		if ids[r.TransactionID] && len(problems) < 5 {
			problems = append(problems, "id "+r.TransactionID+" twice")
		}
		ids[r.TransactionID] = true
		return nil
	})
	if err != nil {
		return err
	}
	for p, next := range st.Offsets {
		if got := int64(len(seen[p])); got != next {
			problems = append(problems, fmt.Sprintf("%s/%d: %d rows for %d committed offsets", p.Topic, p.Partition, got, next))
		}
		for off := range seen[p] {
			if off >= next {
				problems = append(problems, fmt.Sprintf("%s/%d@%d beyond the committed offset %d", p.Topic, p.Partition, off, next))
				break
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// soakCompareMetrics scrapes the endpoint and checks it against report's row count and the
// table's committed offsets.
func soakCompareMetrics(ctx context.Context, t *testing.T, cat *iceberg.Catalog, ident table.Identifier, obs *observer, addr string) error {
	obs.poll(ctx, true) // table figures as of now
	b := report.NewBuilder(0)
	if err := cat.ScanLedger(ctx, ident, 0, func(r ledger.Row, p time.Time) error { b.Add(r, p); return nil }); err != nil {
		return err
	}
	rep := b.Report()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	m, err := metrics.Parse(resp.Body)
	if err != nil {
		return err
	}
	var committed float64
	for k, v := range m {
		if strings.HasPrefix(k, "ledgerstream_committed_offset{") {
			committed += v
		}
	}
	name := identName(ident)
	figures := []struct {
		what string
		got  float64
	}{
		{"ledgerstream_records_accepted_total", m["ledgerstream_records_accepted_total"]},
		{`ledgerstream_table_records{table="` + name + `"}`, m[`ledgerstream_table_records{table="`+name+`"}`]},
		{"sum of ledgerstream_committed_offset", committed},
	}
	t.Logf("report: %d rows, %d distinct ids, %d distinct hashes", rep.Rows, rep.DistinctIDs, rep.DistinctHashes)
	var bad []string
	for _, f := range figures {
		t.Logf("metrics: %s = %.0f", f.what, f.got)
		if int64(f.got) != rep.Rows {
			bad = append(bad, fmt.Sprintf("%s = %.0f, report says %d rows", f.what, f.got, rep.Rows))
		}
	}
	if accepted := obs.stats.Accepted.Load(); rep.Rows != accepted || rep.Rows == 0 {
		bad = append(bad, fmt.Sprintf("report says %d rows, the engine accepted %d", rep.Rows, accepted))
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
