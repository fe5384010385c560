package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// benchFlags tune the benchmark.
type benchFlags struct {
	records      int
	catchup      int
	rate         int
	steady       time.Duration
	results      string
	keep         bool
	targetRate   float64
	targetRatio  float64
	targetP99    time.Duration
	targetRSSMiB int64
	// The scale-out stage (bench_scale.go): worker counts, total offered rate, how long
	// each count runs, the topic's partitions, and whether only it runs.
	scaleWorkers    []int
	scaleRate       int
	scaleDuration   time.Duration
	scalePartitions int
	scaleOnly       bool
}

// benchResult is one line of the results file: one stage of one run.
type benchResult struct {
	Run     string  `json:"run"`
	Stage   string  `json:"stage"`
	Records int64   `json:"records"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec,omitempty"`
	Value   float64 `json:"value,omitempty"`
	Unit    string  `json:"unit,omitempty"`
	Note    string  `json:"note,omitempty"`
}

func newBenchCmd(g *globals) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Race the pipeline against the machine's limits and print one table",
		Long: `Starts the embedded broker as a separate process, produces a backlog, and measures
in one run: raw consume (records fetched and discarded), transform only, Parquet writing
only, the exactly-once pipeline end to end (run --available-now as its own process, with
its peak RSS), produce-to-visible latency at a fixed offered rate with a 1 s trigger, and
the peak RSS of a larger catch-up. verify runs after each pipeline run and must pass.
Results are appended as JSON lines to --results so runs can be compared (default
<user cache dir>/ledgerstream/bench-results.jsonl, e.g. ~/.cache/ledgerstream/…: not in
the checkout; "none" appends nowhere).

Exit status: 0 when every stage ran and every target was met; 2 when every stage ran
(verify passing after each pipeline run) but a target was not met, named on stderr; 1
when a stage failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench(cmd.Context(), g, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.records, "records", 1_000_000, "backlog for the throughput stages")
	fl.IntVar(&f.catchup, "catchup-records", 5_000_000, "backlog of the peak-RSS catch-up (0 skips it)")
	fl.IntVar(&f.rate, "rate", 50_000, "offered rate of the steady-state latency stage (0 skips it)")
	fl.DurationVar(&f.steady, "steady-duration", 20*time.Second, "how long the steady-state stage produces")
	fl.StringVar(&f.results, "results", "", `append results to this JSON lines file (default <user cache dir>/ledgerstream/bench-results.jsonl; "none" = nowhere)`)
	fl.BoolVar(&f.keep, "keep", false, "keep the benchmark's data directory")
	fl.Float64Var(&f.targetRate, "target-rate", 400_000, "end-to-end target, transactions/s")
	fl.Float64Var(&f.targetRatio, "target-ratio", 0.5, "end-to-end target as a fraction of raw consume")
	fl.DurationVar(&f.targetP99, "target-p99", 1500*time.Millisecond, "steady-state p99 latency target")
	fl.Int64Var(&f.targetRSSMiB, "target-rss-mib", 512, "catch-up peak RSS target")
	fl.IntSliceVar(&f.scaleWorkers, "scale-workers", nil, "scale-out stage: run these worker counts of one pipeline on one table, e.g. 1,2,4,8,16 (none: skip it)")
	fl.IntVar(&f.scaleRate, "scale-rate", 20_000, "scale-out stage: total offered rate, transactions/s, whatever the worker count")
	fl.DurationVar(&f.scaleDuration, "scale-duration", 20*time.Second, "scale-out stage: how long each worker count is offered the rate")
	fl.IntVar(&f.scalePartitions, "scale-partitions", 16, "scale-out stage: partitions of its topics")
	fl.BoolVar(&f.scaleOnly, "scale-only", false, "run only the scale-out stage")
	flagRange(fl, "scale-rate", "1", unbounded)
	flagRange(fl, "scale-duration", "1s", unbounded)
	flagRange(fl, "scale-partitions", "1", "10000")
	return cmd
}

// benchRun carries one benchmark run's shared state.
type benchRun struct {
	g       *globals
	f       benchFlags
	out     io.Writer
	self    string // this binary, run as child processes
	dir     string
	brokers string
	id      string
	results []benchResult
	failed  []string
}

func bench(ctx context.Context, g *globals, f benchFlags, out io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ledgerstream-bench-")
	if err != nil {
		return err
	}
	if !f.keep {
		defer os.RemoveAll(dir)
	}
	b := &benchRun{g: g, f: f, out: out, self: self, dir: dir, id: time.Now().UTC().Format(time.RFC3339)}
	fmt.Fprintf(out, "ledgerstream bench %s\n%s\n\n", b.id, machine())

	broker, addr, err := b.startBroker(ctx)
	if err != nil {
		return err
	}
	defer func() {
		_ = broker.Process.Signal(syscall.SIGTERM)
		_ = broker.Wait()
	}()
	b.brokers = addr
	for _, n := range f.scaleWorkers {
		if n < 1 || n > f.scalePartitions {
			return fmt.Errorf("--scale-workers %d: want from 1 to --scale-partitions (%d): a worker without a partition only waits", n, f.scalePartitions)
		}
	}
	if f.scaleOnly {
		if len(f.scaleWorkers) == 0 {
			return errors.New("--scale-only: give the worker counts with --scale-workers, e.g. 1,2,4,8,16")
		}
		if err := b.scaleOut(ctx); err != nil {
			return err
		}
		b.print()
		return b.save()
	}

	if err := b.produce(ctx, "bench", f.records, 0); err != nil {
		return err
	}
	raw, err := b.rawConsume(ctx, "bench")
	if err != nil {
		return err
	}
	if err := b.transformOnly(f.records); err != nil {
		return err
	}
	if err := b.parquetOnly(ctx, min(f.records, 1_000_000)); err != nil {
		return err
	}
	e2e, err := b.pipeline(ctx, "end-to-end", "bench", "demo.bench_e2e", f.records)
	if err != nil {
		return err
	}
	if e2e != nil {
		b.target(fmt.Sprintf("end-to-end >= %.0f tx/s", f.targetRate), e2e.PerSec >= f.targetRate, fmt.Sprintf("%.0f", e2e.PerSec))
		ratio := e2e.PerSec / raw.PerSec
		b.add(benchResult{Stage: "end-to-end / raw consume", Value: ratio, Unit: "ratio"})
		b.target(fmt.Sprintf("end-to-end >= %.2f x raw consume", f.targetRatio), ratio >= f.targetRatio, fmt.Sprintf("%.2f", ratio))
	}
	if f.rate > 0 {
		if err := b.steadyState(ctx); err != nil {
			return err
		}
	}
	if f.catchup > 0 {
		if err := b.produce(ctx, "bench_catchup", f.catchup, 0); err != nil {
			return err
		}
		res, err := b.pipeline(ctx, "catch-up", "bench_catchup", "demo.bench_catchup", f.catchup)
		if err != nil {
			return err
		}
		if res != nil {
			mib := res.Value
			b.target(fmt.Sprintf("catch-up peak RSS < %d MiB", f.targetRSSMiB), mib < float64(f.targetRSSMiB), fmt.Sprintf("%.0f MiB", mib))
		}
	}
	if len(f.scaleWorkers) > 0 {
		if err := b.scaleOut(ctx); err != nil {
			return err
		}
	}
	b.print()
	if err := b.save(); err != nil {
		return err
	}
	if len(b.failed) > 0 {
		return &exitError{code: 2, msg: "bench: not met: " + strings.Join(b.failed, "; ")}
	}
	return nil
}

func (b *benchRun) add(r benchResult) {
	r.Run = b.id
	if r.PerSec == 0 && r.Seconds > 0 && r.Records > 0 {
		r.PerSec = float64(r.Records) / r.Seconds
	}
	b.results = append(b.results, r)
	fmt.Fprintf(b.out, "  %-34s %s\n", r.Stage, r.cell())
}

func (r benchResult) cell() string {
	switch {
	case r.Unit != "":
		return fmt.Sprintf("%.2f %s %s", r.Value, r.Unit, r.Note)
	default:
		return fmt.Sprintf("%d records in %.2fs = %.0f/s %s", r.Records, r.Seconds, r.PerSec, r.Note)
	}
}

func (b *benchRun) target(name string, ok bool, got string) {
	verdict := "met"
	if !ok {
		verdict = "NOT MET"
		b.failed = append(b.failed, name+" (got "+got+")")
	}
	b.results = append(b.results, benchResult{Run: b.id, Stage: "target: " + name, Note: verdict + ": " + got})
}

// print writes the results as one aligned table.
func (b *benchRun) print() {
	fmt.Fprintln(b.out)
	w := 0
	for _, r := range b.results {
		w = max(w, len(r.Stage))
	}
	line := strings.Repeat("-", w+2) + "+" + strings.Repeat("-", 14) + "+" + strings.Repeat("-", 10) + "+" + strings.Repeat("-", 16) + "+" + strings.Repeat("-", 30)
	fmt.Fprintf(b.out, "%-*s | %12s | %8s | %14s | %s\n%s\n", w, "stage", "records", "seconds", "per second", "value / note", line)
	for _, r := range b.results {
		rec, sec, ps := "", "", ""
		if r.Records > 0 {
			rec = fmt.Sprint(r.Records)
		}
		if r.Seconds > 0 {
			sec = fmt.Sprintf("%.2f", r.Seconds)
		}
		if r.PerSec > 0 {
			ps = fmt.Sprintf("%.0f", r.PerSec)
		}
		note := r.Note
		if r.Unit != "" {
			note = strings.TrimSpace(fmt.Sprintf("%.2f %s %s", r.Value, r.Unit, r.Note))
		}
		fmt.Fprintf(b.out, "%-*s | %12s | %8s | %14s | %s\n", w, r.Stage, rec, sec, ps, note)
	}
}

func (b *benchRun) save() error {
	path, err := benchResultsPath(b.f.results)
	if path == "" || err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("bench results: %w", err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, r := range b.results {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	fmt.Fprintf(b.out, "\nresults appended to %s\n", path)
	return nil
}

// benchResultsPath is where --results appends: the flag's file, "" for "none", or by
// default a file in the user's cache directory, so that a bench run from a checkout leaves
// nothing in it.
func benchResultsPath(flag string) (string, error) {
	switch flag {
	case "none":
		return "", nil
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("bench results: no cache directory (%w): pass --results FILE", err)
		}
		dir = filepath.Join(dir, "ledgerstream")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("bench results: %w", err)
		}
		return filepath.Join(dir, "bench-results.jsonl"), nil
	}
	return flag, nil
}

// machine describes the machine for the results.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	return fmt.Sprintf("machine: %d cores (GOMAXPROCS %d), %s, %s %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0),
		model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// startBroker runs `ledgerstream broker` as a child process and returns its address.
func (b *benchRun) startBroker(ctx context.Context) (*exec.Cmd, string, error) {
	cmd := exec.CommandContext(ctx, b.self, "broker", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(b.dir, "broker"), "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start broker: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "broker listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }() // drained until the broker exits
			return cmd, addr, nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, "", errors.New("broker did not report its address")
}

func (b *benchRun) client() kafka.ClientConfig {
	return kafka.ClientConfig{Brokers: []string{b.brokers}}
}

// produce sends n generated transactions to topic, at rate per second (0: at once).
func (b *benchRun) produce(ctx context.Context, topic string, n, rate int) error {
	prod, err := kafka.NewProducer(b.client())
	if err != nil {
		return err
	}
	defer prod.Close()
	gen := ledger.NewGenerator(int64(len(topic)), ledger.GeneratorOptions{})
	msgs := iter.Seq2[[]byte, []byte](func(yield func([]byte, []byte) bool) {
		for range n {
			m := gen.Next(time.Now())
			if !yield(m.Key, m.Value) {
				return
			}
		}
	})
	start := time.Now()
	st, err := prod.Produce(ctx, topic, msgs, kafka.ProduceOptions{Rate: float64(rate)})
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	if rate == 0 {
		b.add(benchResult{Stage: "produce backlog (" + topic + ")", Records: st.Acked, Seconds: time.Since(start).Seconds()})
	}
	return nil
}

// rawConsume reads the topic with read_committed and discards the records: the floor of
// what the source costs.
func (b *benchRun) rawConsume(ctx context.Context, topic string) (benchResult, error) {
	start := time.Now()
	var n int64
	if _, err := kafka.ReadTopic(ctx, b.client(), topic, func(engine.Record) error { n++; return nil }); err != nil {
		return benchResult{}, fmt.Errorf("raw consume: %w", err)
	}
	r := benchResult{Stage: "raw consume", Records: n, Seconds: time.Since(start).Seconds()}
	b.add(r)
	r.PerSec = float64(n) / r.Seconds
	return r, nil
}

// transformOnly decodes, validates and hashes generated messages held in memory.
func (b *benchRun) transformOnly(n int) error {
	gen := ledger.NewGenerator(1, ledger.GeneratorOptions{})
	values := make([][]byte, min(n, 200_000))
	for i := range values {
		values[i] = gen.Next(time.Now()).Value
	}
	rules := ledger.DefaultRules()
	start := time.Now()
	for i := range n {
		if _, rej := rules.Decode(values[i%len(values)]); rej != nil {
			return fmt.Errorf("transform: %v", rej)
		}
	}
	b.add(benchResult{Stage: "transform only", Records: int64(n), Seconds: time.Since(start).Seconds()})
	return nil
}

// parquetOnly writes rows as the ledger's data files without committing them.
func (b *benchRun) parquetOnly(ctx context.Context, n int) error {
	cat, err := iceberg.Open(ctx, iceberg.Config{DataDir: filepath.Join(b.dir, "parquet")})
	if err != nil {
		return err
	}
	defer cat.Close()
	ident, err := iceberg.ParseIdent("demo.bench_parquet")
	if err != nil {
		return err
	}
	sink, err := cat.NewSink(ctx, ident, "bench")
	if err != nil {
		return err
	}
	if _, err := sink.Load(ctx); err != nil {
		return err
	}
	gen := ledger.NewGenerator(2, ledger.GeneratorOptions{})
	rules := ledger.DefaultRules()
	rows := make([]ledger.Row, n)
	for i := range rows {
		rows[i], _ = rules.Decode(gen.Next(time.Now()).Value)
		rows[i].SourceTopic, rows[i].SourceOffset = "bench", int64(i)
	}
	const batch = 250_000
	start := time.Now()
	for lo := 0; lo < n; lo += batch {
		staged, err := sink.Stage(ctx, rows[lo:min(lo+batch, n)], time.Now())
		if err != nil {
			return fmt.Errorf("parquet: %w", err)
		}
		defer func() { _ = sink.Discard(ctx, staged) }()
	}
	b.add(benchResult{Stage: "parquet writing only", Records: int64(n), Seconds: time.Since(start).Seconds()})
	return nil
}

// child runs this binary with args and returns its peak RSS in MiB.
func (b *benchRun) child(ctx context.Context, args ...string) (float64, string, error) {
	cmd := exec.CommandContext(ctx, b.self, args...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	// The child's peak resident set as the kernel keeps it (VmHWM), read until it exits.
	// Not the rusage of wait: Linux counts there the memory of the parent that forked the
	// child (this process, which holds a million rows for the Parquet stage) as the
	// child's peak.
	done := make(chan struct{})
	var hwm float64
	poll := make(chan struct{})
	go func() { // ends with the child; waited for below
		defer close(poll)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := peakRSS(cmd.Process.Pid); ok {
				hwm = max(hwm, v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-poll
	rss := hwm
	if err != nil {
		return rss, out.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(b.self), strings.Join(args, " "), err, lastLines(out.String(), 20))
	}
	return rss, out.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (b *benchRun) common(topic, table string) []string {
	return []string{"--brokers", b.brokers, "--topic", topic, "--table", table,
		"--data-dir", filepath.Join(b.dir, "lake"), "--log-level", "warn"}
}

// pipeline runs `run --available-now` over the topic as its own process, then verify.
func (b *benchRun) pipeline(ctx context.Context, stage, topic, table string, n int) (*benchResult, error) {
	args := append([]string{"run", "--available-now", "--create-table=yes", "--pipeline", "bench-" + topic}, b.common(topic, table)...)
	start := time.Now()
	rss, _, err := b.child(ctx, args...)
	if err != nil {
		return nil, err
	}
	r := benchResult{Stage: stage + " (exactly once)", Records: int64(n), Seconds: time.Since(start).Seconds()}
	r.PerSec = float64(n) / r.Seconds
	b.add(r)
	b.add(benchResult{Stage: stage + " peak RSS", Value: rss, Unit: "MiB"})
	b.verify(ctx, stage, topic, table)
	res := r
	res.Value = rss
	return &res, nil
}

// verify runs `verify` on the table; the bench fails if it does.
func (b *benchRun) verify(ctx context.Context, stage, topic, table string) {
	_, out, err := b.child(ctx, append([]string{"verify", "--pipeline", "bench-" + topic}, b.common(topic, table)...)...)
	ok := err == nil && strings.Contains(out, "PASS exactly_once")
	b.target(stage+": verify passes (exactly once)", ok, map[bool]string{true: "passed", false: "failed"}[ok])
}

// steadyState streams at a fixed offered rate with a 1 s trigger and measures, for every
// row, the time from its production (its event timestamp, set by the producer) to the
// commit of the snapshot that made it visible.
func (b *benchRun) steadyState(ctx context.Context) error {
	const topic, table = "bench_steady", "demo.bench_steady"
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	if err := kafka.CreateTopic(ctx, b.client(), topic); err != nil {
		return err // run is ready only once it owns partitions
	}
	args := append([]string{"run", "--trigger", "1s", "--create-table=yes", "--pipeline", "bench-" + topic, "--metrics-listen", addr}, b.common(topic, table)...)
	cmd := exec.CommandContext(runCtx, b.self, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	// Steady state: the producer starts once run is ready (in the group, a batch done), so
	// that joining the group is not counted as latency.
	if err := waitReady(ctx, "http://"+addr+"/readyz", time.Minute); err != nil {
		return fmt.Errorf("steady run: %w\n%s", err, lastLines(out.String(), 20))
	}
	n := b.f.rate * int(b.f.steady/time.Second)
	if err := b.produce(ctx, topic, n, b.f.rate); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the last batch
	stop()
	// Stopped by SIGTERM through cmd.Cancel: Wait reports the cancellation even on exit 0.
	if err := cmd.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("steady run: %w\n%s", err, lastLines(out.String(), 20))
	}
	lat, err := b.latencies(ctx, table, "bench-"+topic)
	if err != nil {
		return err
	}
	if len(lat) == 0 {
		return errors.New("steady state: no rows became visible")
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	note := fmt.Sprintf("offered %d/s, trigger 1s", b.f.rate)
	b.add(benchResult{Stage: "latency p50", Records: int64(len(lat)), Value: q(0.50).Seconds(), Unit: "s", Note: note})
	b.add(benchResult{Stage: "latency p99", Records: int64(len(lat)), Value: q(0.99).Seconds(), Unit: "s", Note: note})
	b.add(benchResult{Stage: "latency max", Records: int64(len(lat)), Value: lat[len(lat)-1].Seconds(), Unit: "s", Note: note})
	b.target(fmt.Sprintf("p99 produce-to-visible < %s", b.f.targetP99), q(0.99) < b.f.targetP99, q(0.99).Round(time.Millisecond).String())
	b.verify(ctx, "steady state", topic, table)
	return nil
}

// latencies maps every row to the snapshot that made it visible (the first whose offsets
// map passes the row's offset) and returns commit time minus event time.
func (b *benchRun) latencies(ctx context.Context, table, pipeline string) ([]time.Duration, error) {
	cat, err := iceberg.Open(ctx, iceberg.Config{DataDir: filepath.Join(b.dir, "lake")})
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	ident, err := iceberg.ParseIdent(table)
	if err != nil {
		return nil, err
	}
	snaps, err := cat.Snapshots(ctx, ident)
	if err != nil {
		return nil, err
	}
	slices.Reverse(snaps) // oldest first
	type commit struct {
		at      time.Time
		offsets engine.Offsets
	}
	var commits []commit
	for _, s := range snaps {
		if s.Pipeline == pipeline {
			commits = append(commits, commit{s.Time, s.Offsets})
		}
	}
	var lat []time.Duration
	err = cat.ScanLedger(ctx, ident, 0, func(row ledger.Row, _ time.Time) error {
		p := engine.Partition{Topic: row.SourceTopic, Partition: row.SourcePartition}
		i, _ := slices.BinarySearchFunc(commits, row.SourceOffset, func(c commit, off int64) int {
			if c.offsets[p] > off {
				return 1
			}
			return -1
		})
		if i < len(commits) {
			lat = append(lat, commits[i].at.Sub(row.EventTime))
		}
		return nil
	})
	return lat, err
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls url until it answers 200 or the timeout passes.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s", url, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// peakRSS reads a live process's peak resident set (VmHWM) in MiB.
func peakRSS(pid int) (float64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kib float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kib); err == nil {
				return kib / 1024, true
			}
		}
	}
	return 0, false
}
