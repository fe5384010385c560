package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// soakFlags configure soak-maintenance.
type soakFlags struct {
	commits       int
	rowsPerCommit int
	partitions    int
	trigger       time.Duration
	maintainEvery int64
	checkEvery    int
	window        int
	dir           string
	listen        string
	cpuProfile    string
	maintain      maintainFlags
}

func newSoakCmd(g *globals) *cobra.Command {
	var s soakFlags
	cmd := &cobra.Command{
		Use:    "soak-maintenance",
		Hidden: true,
		Short:  "Soak test: many small commits with automatic maintenance, watching commit latency and metadata size",
		Long: `Drives the real engine and the real Iceberg commit path with a synthetic in-process
source (no Kafka): --commits batches of --rows-per-commit rows, as fast as possible
(--trigger 0) or one per --trigger, with automatic maintenance every
--maintain-every-commits batches. Every --check-every commits it prints the median commit
latency of the last --window commits, the snapshot, file and manifest counts, the size of
the metadata folder, and checks the ledger like verify does (every offset below the
committed one exactly once, no id twice). At the end it compares the start and end
latency and checks that the metrics endpoint reports what report does. Exit 1 on a
failed check. The tables live in a fresh temporary directory unless --dir is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return soak(cmd.Context(), s, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&s.commits, "commits", 20000, "batches to commit")
	f.IntVar(&s.rowsPerCommit, "rows-per-commit", 5, "rows per batch")
	f.IntVar(&s.partitions, "partitions", 3, "synthetic partitions")
	f.DurationVar(&s.trigger, "trigger", 0, "one batch per trigger (0 = as fast as possible)")
	f.Int64Var(&s.maintainEvery, "maintain-every-commits", 50, "automatic maintenance every N batches")
	f.IntVar(&s.checkEvery, "check-every", 1000, "print figures and check the table every N commits")
	f.IntVar(&s.window, "window", 500, "commits over which a median latency is taken")
	f.StringVar(&s.dir, "dir", "", "data directory (default: a fresh temporary one, removed at the end)")
	f.StringVar(&s.listen, "metrics-listen", "127.0.0.1:0", "metrics endpoint address")
	f.StringVar(&s.cpuProfile, "cpuprofile", "", "write a CPU profile of the soak to this file (for go tool pprof)")
	addMaintainFlags(f, &s.maintain, "")
	_ = f.Set("retain-last", "50")
	// Time runs fast in a soak (20,000 commits in minutes); orphans of a minute are old.
	_ = f.Set("orphan-older-than", "1m")
	return cmd
}

// synthSource is an engine.Source of generated transactions on n partitions, delivering at
// most perTrigger records per trigger (or without limit when trigger is 0).
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

func soak(ctx context.Context, s soakFlags, out io.Writer) (err error) {
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "ledgerstream-soak-"); err != nil {
			return err
		}
		defer os.RemoveAll(s.dir)
	}
	if s.cpuProfile != "" {
		stop, err := startCPUProfile(s.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
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
	mopts, err := s.maintain.options(false)
	if err != nil {
		return err
	}
	trigger := s.trigger
	if trigger <= 0 {
		trigger = time.Hour // batches close on size; the trigger never fires
	}
	obs := newObserver(cat, ident, trigger)
	sinks := obs.wrap(engine.Sinks{Ledger: sink})
	var lat []time.Duration
	obs.ledger.onCommit = func(d time.Duration) { lat = append(lat, d) } // the loop's goroutine
	eng := engine.New(engine.Config{Pipeline: pipeline, Trigger: trigger, MaxBatchRecords: s.rowsPerCommit}, sinks)
	obs.stats = eng.Stats()
	src := &synthSource{next: engine.Offsets{}, gen: ledger.NewGenerator(42, ledger.GeneratorOptions{}), trigger: s.trigger, per: s.rowsPerCommit}
	for i := 0; i < s.partitions; i++ {
		src.parts = append(src.parts, engine.Partition{Topic: "soak", Partition: int32(i)})
	}
	obs.assigned = src.Assigned
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
	srv, err := metrics.Listen(s.listen, metrics.Handler(reg, obs.ready))
	if err != nil {
		return err
	}
	defer srv.Close()

	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	metaDir := filepath.Join(strings.TrimPrefix(tbl.Location(), "file://"), "metadata")
	var maintTotal time.Duration
	var maintRuns int
	auto := &autoMaintainer{cat: cat, ident: ident, opts: mopts, everyN: s.maintainEvery, obs: obs, refresh: eng.Refresh,
		after: func(_ []*iceberg.MaintainResult, took time.Duration) { maintTotal += took; maintRuns++ }}
	fmt.Fprintf(out, "soak: %d commits of %d rows on %d partitions, trigger %s, maintenance every %d commits (retain-last %d), data in %s, metrics on http://%s/metrics\n",
		s.commits, s.rowsPerCommit, s.partitions, s.trigger, s.maintainEvery, s.maintain.retainLast, s.dir, srv.Addr())
	fmt.Fprintf(out, "%8s %9s %10s %6s %6s %9s %10s %6s %s\n", "commits", "elapsed", "median", "snaps", "files", "manifests", "metadata", "mfiles", "check")

	var failures []string
	began := time.Now()
	var startMedian, maxMeta int64
	check := func(final bool) error {
		n := len(lat)
		w := lat[max(0, n-s.window):]
		med := median(w)
		if startMedian == 0 && n >= s.window {
			startMedian = int64(median(lat[:s.window]))
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
		fmt.Fprintf(out, "%8d %9s %10s %6d %6d %9d %10s %6d %s\n", n, time.Since(began).Round(time.Second), med.Round(10*time.Microsecond),
			st.Snapshots, st.DataFiles, st.Manifests, bytesStr(size), files, verdict)
		return nil
	}
	for len(lat) < s.commits && ctx.Err() == nil {
		t0, before := time.Now(), obs.stats.Batches.Load()
		if _, err := eng.Step(ctx, src); err != nil {
			return err
		}
		obs.step(t0, obs.stats.Batches.Load() > before)
		auto.maybe(ctx, obs.stats.Batches.Load())
		if len(lat)%s.checkEvery == 0 && obs.stats.Batches.Load() > before {
			if err := check(false); err != nil {
				return err
			}
		}
	}
	// Interrupted (SIGINT) or done: the final figures are still wanted.
	ctx = context.WithoutCancel(ctx)
	if err := check(true); err != nil {
		return err
	}
	endMedian := median(lat[max(0, len(lat)-s.window):])
	if startMedian == 0 {
		startMedian = int64(median(lat))
	}
	ratio := float64(endMedian) / float64(max(startMedian, 1))
	fmt.Fprintf(out, "commit latency median: first %d commits %s, last %d commits %s (x%.2f, target <= 1.5)\n",
		s.window, time.Duration(startMedian).Round(10*time.Microsecond), s.window, endMedian.Round(10*time.Microsecond), ratio)
	fmt.Fprintf(out, "metadata folder: at most %s; maintenance ran %d times, %s in total (mean %s)\n",
		bytesStr(maxMeta), maintRuns, maintTotal.Round(time.Millisecond), (maintTotal / time.Duration(max(maintRuns, 1))).Round(time.Millisecond))
	if ratio > 1.5 {
		failures = append(failures, fmt.Sprintf("end latency is %.2fx the start", ratio))
	}
	if err := soakCompareMetrics(ctx, out, cat, ident, obs, srv.Addr()); err != nil {
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 {
		return &exitError{code: 1, msg: "soak failed: " + strings.Join(failures, "; ")}
	}
	fmt.Fprintln(out, "soak passed")
	return nil
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
func soakCompareMetrics(ctx context.Context, out io.Writer, cat *iceberg.Catalog, ident table.Identifier, obs *observer, addr string) error {
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
	fmt.Fprintf(out, "report: %d rows, %d distinct ids, %d distinct hashes\n", rep.Rows, rep.DistinctIDs, rep.DistinctHashes)
	var bad []string
	for _, f := range figures {
		fmt.Fprintf(out, "metrics: %s = %.0f\n", f.what, f.got)
		if int64(f.got) != rep.Rows {
			bad = append(bad, fmt.Sprintf("%s = %.0f, report says %d rows", f.what, f.got, rep.Rows))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	fmt.Fprintln(out, "metrics endpoint agrees with report")
	return nil
}
