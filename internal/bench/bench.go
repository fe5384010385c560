// Package bench is the harness behind `ledgerstream bench`: it races the pipeline against
// the machine's limits, running the product binary as separate processes (the embedded
// broker, `run`, `verify`) as a user would, and returns one result per stage. Printing
// the results is the caller's.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/subprocess"
)

// Options are a benchmark run's settings; `ledgerstream bench` has a flag for each.
type Options struct {
	// Binary is the ledgerstream executable run as child processes (broker, run, verify):
	// the pipeline stages measure the product as users run it, each in its own process,
	// so that its peak RSS and CPU are its own. Required.
	Binary string
	// RunID names the run in the results (Result.Run); default the start time, RFC 3339.
	RunID string
	// Progress, when set, is called with each stage's result as it is measured.
	Progress func(Result)

	// Records is the backlog of the throughput stages: raw consume, transform only, the
	// pipeline end to end (Parquet writing only takes at most a million of them).
	Records int
	// CatchupRecords is the backlog of the peak-RSS catch-up; 0 skips the stage.
	CatchupRecords int
	// Rate is the offered rate, transactions/s, of the steady-state latency stage (1 s
	// trigger, produce-to-visible per row); 0 skips the stage.
	Rate int
	// SteadyDuration is how long the steady-state stage produces.
	SteadyDuration time.Duration
	// Contract, when set, is a ledger contract file (`run --contract`): after the default
	// contract's end-to-end stage, its transform and end-to-end stages run again on
	// messages its generator makes (ledger.ContractGenerator: every field valid, keys
	// counted), and the ratios of the two are reported.
	Contract string
	// Catalog is the Iceberg catalog of the pipeline and scale-out stages' tables, as
	// `--catalog` takes it (postgres://…, http(s)://…); empty for a SQLite catalog in the
	// run's data directory. Another catalog gets its tables in a namespace of the run's
	// own, bench_<start time>, dropped at the end (the Parquet files stay in the run's data
	// directory). Its secrets reach the child processes through their environment
	// (PGPASSWORD, LEDGERSTREAM_CATALOG_TOKEN, …), never their command lines.
	Catalog string
	// Keep keeps the run's data directory (broker log, lake) instead of removing it.
	Keep bool

	// TargetRate is the end-to-end target, transactions/s.
	TargetRate float64
	// TargetRatio is the end-to-end target as a fraction of what kcat (librdkafka's
	// consumer, read_committed) reads of the same topic in the same run; not checked,
	// and said so, when kcat is not on PATH. The franz-go raw consume, which fetches and
	// discards, is reported beside it as the source's floor.
	TargetRatio float64
	// TargetP99 is the steady-state p99 produce-to-visible latency target.
	TargetP99 time.Duration
	// TargetRSSMiB is the catch-up's peak RSS target, MiB.
	TargetRSSMiB int64

	// ScaleWorkers are the worker counts of the scale-out stage: for each, that many `run`
	// processes of one pipeline on one table (scale.go); none skips the stage. Each count
	// is at most ScalePartitions: a worker without a partition only waits.
	ScaleWorkers []int
	// ScaleRate is the scale-out stage's total offered rate, transactions/s, whatever the
	// worker count, so that the per-commit and per-worker costs compare.
	ScaleRate int
	// ScaleDuration is how long each worker count is offered ScaleRate.
	ScaleDuration time.Duration
	// ScalePartitions is the partition count of the scale-out stage's topics.
	ScalePartitions int
	// ScaleOnly runs the scale-out stage alone.
	ScaleOnly bool
	// ScaleIndexScope is the workers' `run --index-scope` ("" means global).
	ScaleIndexScope string
}

// Result is one line of the results file: one stage of one run.
type Result struct {
	Run     string  `json:"run"`
	Stage   string  `json:"stage"`
	Records int64   `json:"records"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec,omitempty"`
	Value   float64 `json:"value,omitempty"`
	Unit    string  `json:"unit,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// Report is what a run measured.
type Report struct {
	// Results are the stages' figures and the targets' verdicts, in the order measured.
	Results []Result
	// Scale are the scale-out stage's figures, one per worker count.
	Scale []ScaleRow
	// Failed names the targets not met, with what was measured; empty when all were.
	Failed []string
}

// run carries one benchmark run's shared state.
type run struct {
	o        Options
	contract *ledger.Contract // Options.Contract's, nil without one
	ns       string           // the tables' namespace
	tables   []string         // ledger tables made, dropped at the end from another catalog
	dir      string
	brokers  string
	rep      Report
}

// Run runs the benchmark's stages in order and returns their results. An error means a
// stage could not run; a target not met is not an error but a line of Report.Failed.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Binary == "" {
		return nil, errors.New("bench: no ledgerstream binary to run as child processes (Options.Binary)")
	}
	for _, n := range o.ScaleWorkers {
		if n < 1 || n > o.ScalePartitions {
			return nil, fmt.Errorf("--scale-workers %d: want from 1 to --scale-partitions (%d): a worker without a partition only waits", n, o.ScalePartitions)
		}
	}
	if o.ScaleOnly && len(o.ScaleWorkers) == 0 {
		return nil, errors.New("--scale-only: give the worker counts with --scale-workers, e.g. 1,2,4,8,16")
	}
	var contract *ledger.Contract
	if o.Contract != "" {
		data, err := os.ReadFile(o.Contract)
		if err != nil {
			return nil, fmt.Errorf("bench --contract: %w", err)
		}
		if contract, err = ledger.ParseContract(data); err != nil {
			return nil, fmt.Errorf("bench --contract %s: %w", o.Contract, err)
		}
		if _, err := ledger.NewGeneratorFor(contract, 1, ledger.GeneratorOptions{}); err != nil {
			return nil, fmt.Errorf("bench --contract %s: %w", o.Contract, err)
		}
	}
	if o.RunID == "" {
		o.RunID = time.Now().UTC().Format(time.RFC3339)
	}
	dir, err := os.MkdirTemp("", "ledgerstream-bench-")
	if err != nil {
		return nil, err
	}
	if !o.Keep {
		defer os.RemoveAll(dir)
	}
	b := &run{o: o, dir: dir, contract: contract, ns: "demo"}
	if o.Catalog != "" {
		b.ns = "bench_" + strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, o.RunID)
		defer b.dropTables()
	}
	broker, addr, err := b.startBroker(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = broker.Process.Signal(syscall.SIGTERM)
		_ = broker.Wait()
	}()
	b.brokers = addr
	if err := b.stages(ctx); err != nil {
		return nil, err
	}
	return &b.rep, nil
}

func (b *run) stages(ctx context.Context) error {
	o := b.o
	if o.ScaleOnly {
		return b.scaleOut(ctx)
	}
	if err := b.produce(ctx, "bench", o.Records, 0, nil); err != nil {
		return err
	}
	raw, err := b.rawConsume(ctx, "bench")
	if err != nil {
		return err
	}
	kcat, haveKcat, err := b.kcatConsume(ctx, "bench", raw.Records)
	if err != nil {
		return err
	}
	transform, err := b.transformOnly(o.Records, nil)
	if err != nil {
		return err
	}
	if err := b.parquetOnly(ctx, min(o.Records, 1_000_000)); err != nil {
		return err
	}
	e2e, e2eCPU, err := b.pipeline(ctx, "end-to-end", "bench", b.ns+".bench_e2e", o.Records, "")
	if err != nil {
		return err
	}
	if b.contract != nil {
		// Right after the default contract's stages, so that the ratio compares runs
		// under the same load.
		if err := b.contractStages(ctx, transform, e2e, e2eCPU); err != nil {
			return err
		}
	}
	b.target(fmt.Sprintf("end-to-end >= %.0f tx/s", o.TargetRate), e2e.PerSec >= o.TargetRate, fmt.Sprintf("%.0f", e2e.PerSec))
	b.add(Result{Stage: "end-to-end / raw consume", Value: e2e.PerSec / raw.PerSec, Unit: "ratio", Note: "franz-go, records fetched and discarded"})
	if haveKcat {
		ratio := e2e.PerSec / kcat.PerSec
		b.add(Result{Stage: "end-to-end / kcat consume", Value: ratio, Unit: "ratio"})
		b.target(fmt.Sprintf("end-to-end >= %.2f x kcat consume", o.TargetRatio), ratio >= o.TargetRatio, fmt.Sprintf("%.2f", ratio))
	} else {
		b.rep.Results = append(b.rep.Results, Result{Run: o.RunID, Stage: fmt.Sprintf("target: end-to-end >= %.2f x kcat consume", o.TargetRatio),
			Note: "not checked: kcat is not on PATH (install Debian's kcat)"})
	}
	if o.Rate > 0 {
		if err := b.steadyState(ctx); err != nil {
			return err
		}
	}
	if o.CatchupRecords > 0 {
		if err := b.produce(ctx, "bench_catchup", o.CatchupRecords, 0, nil); err != nil {
			return err
		}
		res, _, err := b.pipeline(ctx, "catch-up", "bench_catchup", b.ns+".bench_catchup", o.CatchupRecords, "")
		if err != nil {
			return err
		}
		mib := res.Value
		b.target(fmt.Sprintf("catch-up peak RSS < %d MiB", o.TargetRSSMiB), mib < float64(o.TargetRSSMiB), fmt.Sprintf("%.0f MiB", mib))
	}
	if len(o.ScaleWorkers) > 0 {
		return b.scaleOut(ctx)
	}
	return nil
}

// contractStages measures the contract's transform and end-to-end stages and their ratios
// to the default contract's.
func (b *run) contractStages(ctx context.Context, transform, e2e Result, e2eCPU time.Duration) error {
	topic, table := "bench_contract", b.ns+".bench_contract"
	if err := b.produce(ctx, topic, b.o.Records, 0, b.contract); err != nil {
		return err
	}
	ct, err := b.transformOnly(b.o.Records, b.contract)
	if err != nil {
		return err
	}
	ce2e, ccpu, err := b.pipeline(ctx, "end-to-end, contract", topic, table, b.o.Records, b.o.Contract)
	if err != nil {
		return err
	}
	note := filepath.Base(b.o.Contract) + " / default"
	b.add(Result{Stage: "transform only, contract / default", Value: ct.PerSec / transform.PerSec, Unit: "ratio", Note: note + ", records/s"})
	if transform.Value > 0 && ct.Value > 0 {
		b.add(Result{Stage: "transform CPU per record, contract / default", Value: ct.Value / transform.Value, Unit: "ratio", Note: note})
	}
	b.add(Result{Stage: "end-to-end, contract / default", Value: ce2e.PerSec / e2e.PerSec, Unit: "ratio", Note: note + ", transactions/s"})
	if e2eCPU > 0 && ccpu > 0 {
		b.add(Result{Stage: "end-to-end CPU per tx, contract / default", Value: float64(ccpu) / float64(e2eCPU), Unit: "ratio", Note: note})
	}
	return nil
}

// add records a measured stage and reports it to Progress.
func (b *run) add(r Result) {
	r.Run = b.o.RunID
	if r.PerSec == 0 && r.Seconds > 0 && r.Records > 0 {
		r.PerSec = float64(r.Records) / r.Seconds
	}
	b.rep.Results = append(b.rep.Results, r)
	if b.o.Progress != nil {
		b.o.Progress(r)
	}
}

// target records a target's verdict (in the results, not in the progress).
func (b *run) target(name string, ok bool, got string) {
	verdict := "met"
	if !ok {
		verdict = "NOT MET"
		b.rep.Failed = append(b.rep.Failed, name+" (got "+got+")")
	}
	b.rep.Results = append(b.rep.Results, Result{Run: b.o.RunID, Stage: "target: " + name, Note: verdict + ": " + got})
}

// AppendResults appends the results to the JSON lines file at path.
func AppendResults(path string, results []Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("bench results: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return fmt.Errorf("bench results: write %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench results: write %s: %w", path, err)
	}
	return nil
}

// ResultsPath is where results are appended: the file given, "" for "none", or by default
// a file in the user's cache directory, so that a bench run from a checkout leaves nothing
// in it.
func ResultsPath(flag string) (string, error) {
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

// Machine describes the machine for the results.
func Machine() string {
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

func (b *run) client() kafka.ClientConfig {
	return kafka.ClientConfig{Brokers: []string{b.brokers}}
}

// produce sends n generated transactions to topic, at rate per second (0: at once): the
// notebook's, or contract's when it is not nil.
func (b *run) produce(ctx context.Context, topic string, n, rate int, contract *ledger.Contract) error {
	gen, err := ledger.NewGeneratorFor(contract, int64(len(topic)), ledger.GeneratorOptions{})
	if err != nil {
		return err
	}
	prod, err := kafka.NewProducer(b.client())
	if err != nil {
		return err
	}
	defer prod.Close()
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
		b.add(Result{Stage: "produce backlog (" + topic + ")", Records: st.Acked, Seconds: time.Since(start).Seconds()})
	}
	return nil
}

// rawConsume reads the topic with read_committed and discards the records: the floor of
// what the source costs.
func (b *run) rawConsume(ctx context.Context, topic string) (Result, error) {
	start := time.Now()
	var n int64
	if _, err := kafka.ReadTopic(ctx, b.client(), topic, func(engine.Record) error { n++; return nil }); err != nil {
		return Result{}, fmt.Errorf("raw consume: %w", err)
	}
	r := Result{Stage: "raw consume", Records: n, Seconds: time.Since(start).Seconds()}
	b.add(r)
	r.PerSec = float64(n) / r.Seconds
	return r, nil
}

// transformOnly decodes, validates and hashes generated messages held in memory: the
// notebook's, or contract's when it is not nil.
func (b *run) transformOnly(n int, contract *ledger.Contract) (Result, error) {
	gen, err := ledger.NewGeneratorFor(contract, 1, ledger.GeneratorOptions{})
	if err != nil {
		return Result{}, err
	}
	values := make([][]byte, min(n, 200_000))
	for i := range values {
		values[i] = gen.Next(time.Now()).Value
	}
	rules := ledger.DefaultRules()
	rules.Contract = contract
	dec := rules.NewDecoder() // as the engine decodes
	cpu0 := selfCPU()
	start := time.Now()
	for i := range n {
		if _, rej := dec.Decode(values[i%len(values)]); rej != nil {
			return Result{}, fmt.Errorf("transform: %v", rej)
		}
	}
	r := Result{Stage: "transform only", Records: int64(n), Seconds: time.Since(start).Seconds()}
	if contract != nil {
		r.Stage += ", contract"
	}
	b.add(r)
	r.PerSec = float64(n) / r.Seconds
	// The harness's CPU while it decoded (GC included; nothing else runs in it then):
	// Value, in µs per record.
	r.Value = float64((selfCPU() - cpu0).Nanoseconds()) / 1000 / float64(max(n, 1))
	if b.contract != nil {
		b.add(Result{Stage: r.Stage + ": CPU per record", Value: r.Value, Unit: "µs", Note: "user+sys"})
	}
	return r, nil
}

// selfCPU is this process's CPU time so far (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parquetOnly writes rows as the ledger's data files without committing them.
func (b *run) parquetOnly(ctx context.Context, n int) error {
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
	b.add(Result{Stage: "parquet writing only", Records: int64(n), Seconds: time.Since(start).Seconds()})
	return nil
}

func (b *run) common(topic, table string) []string {
	if !slices.Contains(b.tables, table) {
		b.tables = append(b.tables, table)
	}
	args := []string{"--brokers", b.brokers, "--topic", topic, "--table", table,
		"--data-dir", filepath.Join(b.dir, "lake"), "--log-level", "warn"}
	if b.o.Catalog != "" {
		args = append(args, "--catalog", b.o.Catalog)
	}
	return args
}

// catalog opens the stages' catalog.
func (b *run) catalog(ctx context.Context) (*iceberg.Catalog, error) {
	return iceberg.Open(ctx, iceberg.Config{CatalogURI: b.o.Catalog, DataDir: filepath.Join(b.dir, "lake")})
}

// dropTables drops the run's tables from a catalog that outlives the run (their files go
// with the run's data directory); what cannot be dropped is logged with what to do.
func (b *run) dropTables() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat, err := b.catalog(ctx)
	if err != nil {
		slog.Warn("bench: cannot drop the run's tables: drop them by hand", "namespace", b.ns, "error", err)
		return
	}
	defer cat.Close()
	for _, name := range b.tables {
		for _, t := range []string{name, name + "_rejects"} {
			ident, err := iceberg.ParseIdent(t)
			if err != nil {
				continue
			}
			if ok, err := cat.TableExists(ctx, ident); err == nil && !ok {
				continue
			}
			if err := cat.DropTable(ctx, ident, false); err != nil {
				slog.Warn("bench: cannot drop a table of the run: drop it by hand", "table", t, "error", err)
			}
		}
	}
	if err := cat.Unwrap().DropNamespace(ctx, table.Identifier{b.ns}); err != nil {
		slog.Warn("bench: cannot drop the run's namespace: drop it by hand", "namespace", b.ns, "error", err)
	}
}

// pipeline runs `run --available-now` over the topic as its own process (with the
// contract file, if not ""), then verify. The result's Value is the run's peak RSS, MiB,
// and cpu its CPU time (user and system) per transaction.
func (b *run) pipeline(ctx context.Context, stage, topic, table string, n int, contract string) (r Result, cpu time.Duration, err error) {
	args := append([]string{"run", "--available-now", "--create-table=yes", "--pipeline", "bench-" + topic}, b.common(topic, table)...)
	if contract != "" {
		args = append(args, "--contract", contract)
	}
	start := time.Now()
	c, err := b.child(ctx, args...)
	if err != nil {
		return Result{}, 0, err
	}
	r = Result{Stage: stage + " (exactly once)", Records: int64(n), Seconds: time.Since(start).Seconds()}
	r.PerSec = float64(n) / r.Seconds
	b.add(r)
	b.add(Result{Stage: stage + " peak RSS", Value: c.rssMiB, Unit: "MiB"})
	cpu = c.cpu / time.Duration(max(n, 1))
	if b.contract != nil {
		// Beside the contract's: CPU time is what a loaded machine does not distort.
		b.add(Result{Stage: stage + " CPU per tx", Value: float64(cpu.Nanoseconds()) / 1000, Unit: "µs", Note: "user+sys of run"})
	}
	b.verify(ctx, stage, topic, table)
	r.Value = c.rssMiB
	return r, cpu, nil
}

// verify runs `verify` on the table; the bench fails if it does.
func (b *run) verify(ctx context.Context, stage, topic, table string) {
	c, err := b.child(ctx, append([]string{"verify", "--pipeline", "bench-" + topic}, b.common(topic, table)...)...)
	ok := err == nil && strings.Contains(c.out, "PASS exactly_once")
	b.target(stage+": verify passes (exactly once)", ok, map[bool]string{true: "passed", false: "failed"}[ok])
}

// steadyState streams at a fixed offered rate with a 1 s trigger and measures, for every
// row, the time from its production (its event timestamp, set by the producer) to the
// commit of the snapshot that made it visible.
func (b *run) steadyState(ctx context.Context) error {
	topic, table := "bench_steady", b.ns+".bench_steady"
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	addr, err := subprocess.FreeAddr()
	if err != nil {
		return err
	}
	if err := kafka.CreateTopic(ctx, b.client(), topic); err != nil {
		return err // run is ready only once it owns partitions
	}
	args := append([]string{"run", "--trigger", "1s", "--create-table=yes", "--pipeline", "bench-" + topic, "--metrics-listen", addr}, b.common(topic, table)...)
	cmd, out := b.service(runCtx, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	// Steady state: the producer starts once run is ready (in the group, a batch done), so
	// that joining the group is not counted as latency.
	if err := waitReady(ctx, "http://"+addr+"/readyz", cmd.Process.Pid, time.Minute); err != nil {
		return fmt.Errorf("steady run: %w\n%s", err, lastLines(out.String(), 20))
	}
	n := b.o.Rate * int(b.o.SteadyDuration/time.Second)
	if err := b.produce(ctx, topic, n, b.o.Rate, nil); err != nil {
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
	note := fmt.Sprintf("offered %d/s, trigger 1s", b.o.Rate)
	b.add(Result{Stage: "latency p50", Records: int64(len(lat)), Value: q(0.50).Seconds(), Unit: "s", Note: note})
	b.add(Result{Stage: "latency p99", Records: int64(len(lat)), Value: q(0.99).Seconds(), Unit: "s", Note: note})
	b.add(Result{Stage: "latency max", Records: int64(len(lat)), Value: lat[len(lat)-1].Seconds(), Unit: "s", Note: note})
	b.target(fmt.Sprintf("p99 produce-to-visible < %s", b.o.TargetP99), q(0.99) < b.o.TargetP99, q(0.99).Round(time.Millisecond).String())
	b.verify(ctx, "steady state", topic, table)
	return nil
}

// latencies maps every row to the snapshot that made it visible (the first whose offsets
// map passes the row's offset) and returns commit time minus event time.
func (b *run) latencies(ctx context.Context, table, pipeline string) ([]time.Duration, error) {
	cat, err := b.catalog(ctx)
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
