package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/subprocess"
)

// ScaleRow is one worker count's figures in the scale-out stage.
type ScaleRow struct {
	Workers int
	// CommitsPerSec are the ledger commits of all workers per second, and
	// CommitsPerSecPerWorker the same per worker.
	CommitsPerSec          float64
	CommitsPerSecPerWorker float64
	// ConflictsPerCommit are ledger and rejects commit conflicts (each one a retry) per
	// committed batch; UnknownPerCommit the commits with an unknown outcome per batch.
	ConflictsPerCommit float64
	UnknownPerCommit   float64
	// CommitSeconds is the mean time of one ledger commit attempt (the conditional append):
	// what one table's commits are serialised on.
	CommitSeconds float64
	// Fenced are the batches fenced (another worker took the partition first).
	Fenced int64
	// P99 is the p99 produce-to-visible latency of the rows.
	P99 time.Duration
	// IndexRowsSyncedMean and Max are the transaction id index rows each worker read from
	// the ledger (the other workers' commits).
	IndexRowsSyncedMean float64
	IndexRowsSyncedMax  int64
	// IndexRowsScannedMean are the ledger rows each worker read back: with the global
	// index, the rows synced; with --index-scope partition, also the other partitions'
	// rows in the same files, passed over (the ledger is not partitioned).
	IndexRowsScannedMean float64
	// CPUPerTx is the CPU of all workers while the rate ran, per transaction, and
	// CPUPerWorker their CPU seconds per second per worker.
	CPUPerTx     time.Duration
	CPUPerWorker float64
	// Accepted are the transactions committed, in Seconds (producer start to the last
	// commit).
	Accepted int64
	Seconds  float64
	// Load is the machine's 1-minute load average when the rate ended: on a shared
	// machine, what the latency and the wall-clock figures must be read with.
	Load float64
}

// scaleOut runs, for each worker count in ScaleWorkers, that many `run` workers of one
// pipeline on one table (1 s trigger, static members, one index each) while a fixed total
// rate is produced to a topic of ScalePartitions partitions, and reports what grows with
// the worker count: commits per second, conflicts and retries per commit, fenced batches,
// p99 produce-to-visible latency, index rows each worker synced from the others' commits,
// and CPU per transaction. On one machine the throughput cannot grow with the workers;
// these per-commit and per-worker costs are what extrapolates (README, "Scaling out").
func (b *run) scaleOut(ctx context.Context) error {
	for _, n := range b.o.ScaleWorkers {
		r, err := b.scaleStage(ctx, n)
		if err != nil {
			return fmt.Errorf("scale-out, %d workers: %w", n, err)
		}
		b.rep.Scale = append(b.rep.Scale, r)
	}
	return nil
}

// scaleWorker is one `run` process of the scale-out stage.
type scaleWorker struct {
	cmd  *exec.Cmd
	out  *subprocess.Output
	addr string
}

func (b *run) scaleStage(ctx context.Context, n int) (ScaleRow, error) {
	topic := fmt.Sprintf("bench_scale_%d", n)
	table := b.ns + "." + topic
	pipeline := "bench-" + topic
	if err := kafka.CreateTopicPartitions(ctx, b.client(), topic, int32(b.o.ScalePartitions)); err != nil {
		return ScaleRow{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	workers := make([]*scaleWorker, n)
	defer func() { // on an early return: no worker outlives the stage
		for _, w := range workers {
			if w != nil && w.cmd.ProcessState == nil {
				_ = w.cmd.Process.Kill()
				_ = w.cmd.Wait()
			}
		}
	}()
	for i := range workers {
		addr, err := subprocess.FreeAddr()
		if err != nil {
			return ScaleRow{}, err
		}
		args := append([]string{"run", "--trigger", "1s", "--create-table=yes", "--pipeline", pipeline, "--worker-id", fmt.Sprintf("w%02d", i),
			"--metrics-listen", addr}, b.common(topic, table)...)
		args = append(args, "--log-level", "info") // the index's figures are logged at its close
		if b.o.ScaleIndexScope != "" {
			args = append(args, "--index-scope", b.o.ScaleIndexScope)
		}
		cmd, out := b.service(runCtx, args...)
		if err := cmd.Start(); err != nil {
			return ScaleRow{}, err
		}
		workers[i] = &scaleWorker{cmd: cmd, out: out, addr: addr}
	}
	for _, w := range workers {
		if err := waitReady(ctx, "http://"+w.addr+"/readyz", w.cmd.Process.Pid, 3*time.Minute); err != nil {
			return ScaleRow{}, fmt.Errorf("worker %s: %w\n%s", w.addr, err, lastLines(w.out.String(), 20))
		}
	}
	total := b.o.ScaleRate * int(b.o.ScaleDuration/time.Second)
	cpu0, err := workersCPU(workers)
	if err != nil {
		return ScaleRow{}, err
	}
	start := time.Now()
	if err := b.produce(ctx, topic, total, b.o.ScaleRate, nil); err != nil {
		return ScaleRow{}, err
	}
	// Drained: every transaction committed by some worker.
	deadline := time.Now().Add(2 * time.Minute)
	var per []map[string]float64
	for {
		var err error
		if per, err = scrapeAll(ctx, workers); err != nil {
			return ScaleRow{}, err
		}
		if sum(per, "ledgerstream_records_accepted_total") >= float64(total) {
			break
		}
		if time.Now().After(deadline) {
			return ScaleRow{}, fmt.Errorf("%v of %d transactions committed 2 minutes after the producer ended",
				sum(per, "ledgerstream_records_accepted_total"), total)
		}
		time.Sleep(250 * time.Millisecond)
	}
	elapsed := time.Since(start)
	load := loadAverage()
	cpu1, err := workersCPU(workers)
	if err != nil {
		return ScaleRow{}, err
	}
	cpu := cpu1 - cpu0
	stop()
	r := ScaleRow{Workers: n, Accepted: int64(sum(per, "ledgerstream_records_accepted_total")), Seconds: elapsed.Seconds(), Load: load}
	var errs []error
	readRE := regexp.MustCompile(`transaction id index closed.* rows_read=(\d+)`)
	scanRE := regexp.MustCompile(`transaction id index closed.* rows_scanned=(\d+)`)
	var read, scanned int64
	for _, w := range workers {
		// Stopped by SIGTERM through cmd.Cancel: Wait reports the cancellation even on exit 0.
		if err := w.cmd.Wait(); err != nil && !errors.Is(err, context.Canceled) && w.cmd.ProcessState.ExitCode() != 0 {
			errs = append(errs, fmt.Errorf("worker %s: %w\n%s", w.addr, err, lastLines(w.out.String(), 20)))
		}
		m := readRE.FindStringSubmatch(w.out.String())
		if m == nil {
			errs = append(errs, fmt.Errorf("worker %s did not log its index figures\n%s", w.addr, lastLines(w.out.String(), 10)))
			continue
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		read += v
		if m := scanRE.FindStringSubmatch(w.out.String()); m != nil {
			s, _ := strconv.ParseInt(m[1], 10, 64)
			scanned += s
		} else {
			scanned += v // the global index reads exactly the rows it records
		}
		r.IndexRowsSyncedMax = max(r.IndexRowsSyncedMax, v)
	}
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	batches := sum(per, "ledgerstream_batches_total")
	r.CommitsPerSec = batches / elapsed.Seconds()
	r.CommitsPerSecPerWorker = r.CommitsPerSec / float64(n)
	if batches > 0 {
		r.ConflictsPerCommit = sum(per, "ledgerstream_commit_conflicts_total") / batches
		r.UnknownPerCommit = sum(per, "ledgerstream_commit_unknown_total") / batches
	}
	r.Fenced = int64(sum(per, "ledgerstream_batches_fenced_total"))
	if n := sum(per, `ledgerstream_commit_duration_seconds_count{table="ledger"}`); n > 0 {
		r.CommitSeconds = sum(per, `ledgerstream_commit_duration_seconds_sum{table="ledger"}`) / n
	}
	r.IndexRowsSyncedMean = float64(read) / float64(n)
	r.IndexRowsScannedMean = float64(scanned) / float64(n)
	if r.Accepted > 0 {
		r.CPUPerTx = cpu / time.Duration(r.Accepted)
	}
	r.CPUPerWorker = cpu.Seconds() / elapsed.Seconds() / float64(n)
	lat, err := b.latencies(ctx, table, pipeline)
	if err != nil {
		return r, err
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P99 = lat[min(len(lat)-1, int(0.99*float64(len(lat))))]
	}
	stage := fmt.Sprintf("scale-out %d workers", n)
	if b.o.ScaleIndexScope != "" && b.o.ScaleIndexScope != "global" {
		stage += ", index scope " + b.o.ScaleIndexScope
	}
	b.add(Result{Stage: stage, Records: r.Accepted, Seconds: r.Seconds,
		Note: fmt.Sprintf("commits/s %.2f, conflicts/commit %.2f, fenced %d, p99 %.2fs, index rows synced/worker %.0f, CPU/tx %.1fµs",
			r.CommitsPerSec, r.ConflictsPerCommit, r.Fenced, r.P99.Seconds(), r.IndexRowsSyncedMean, float64(r.CPUPerTx.Nanoseconds())/1000)})
	for _, v := range []struct {
		name  string
		value float64
		unit  string
	}{
		{"commits/s", r.CommitsPerSec, "1/s"},
		{"conflicts per commit", r.ConflictsPerCommit, "ratio"},
		{"fenced batches", float64(r.Fenced), "batches"},
		{"mean commit attempt", r.CommitSeconds, "s"},
		{"p99 produce-to-visible", r.P99.Seconds(), "s"},
		{"index rows synced per worker", r.IndexRowsSyncedMean, "rows"},
		{"ledger rows scanned per worker", r.IndexRowsScannedMean, "rows"},
		{"CPU per transaction", float64(r.CPUPerTx.Nanoseconds()) / 1000, "µs"},
		{"load average", r.Load, "1-minute"},
	} {
		b.rep.Results = append(b.rep.Results, Result{Run: b.o.RunID, Stage: stage + ": " + v.name, Value: v.value, Unit: v.unit})
	}
	b.verify(ctx, stage, topic, table)
	return r, nil
}

// loadAverage is the machine's 1-minute load average (/proc/loadavg), 0 where unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// workersCPU is the CPU time the workers have used so far.
func workersCPU(workers []*scaleWorker) (time.Duration, error) {
	var total time.Duration
	for _, w := range workers {
		c, err := procCPU(w.cmd.Process.Pid)
		if err != nil {
			return 0, fmt.Errorf("worker %s: %w", w.addr, err)
		}
		total += c
	}
	return total, nil
}

// scrapeAll reads every worker's metrics.
func scrapeAll(ctx context.Context, workers []*scaleWorker) ([]map[string]float64, error) {
	out := make([]map[string]float64, len(workers))
	for i, w := range workers {
		m, err := scrape(ctx, "http://"+w.addr+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w\n%s", w.addr, err, lastLines(w.out.String(), 20))
		}
		out[i] = m
	}
	return out, nil
}

func sum(per []map[string]float64, name string) float64 {
	var s float64
	for _, m := range per {
		s += m[name]
	}
	return s
}
