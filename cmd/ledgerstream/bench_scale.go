package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
)

// scaleRow is one worker count's figures in the scale-out stage.
type scaleRow struct {
	workers        int
	commitsPerSec  float64
	conflictsPer   float64 // ledger and rejects commit conflicts (each one a retry) per committed batch
	unknownPer     float64 // commits with an unknown outcome per committed batch
	fenced         int64
	p99            time.Duration
	rowsReadPer    float64 // index rows each worker read from the ledger (other workers' commits), mean
	rowsReadMax    int64
	cpuPerTx       time.Duration // CPU of all workers while the rate ran, per transaction
	cpuPerWorkerS  float64       // CPU seconds per second per worker
	accepted       int64
	seconds        float64
	batchesPerSec1 float64 // commits per second per worker
}

// scaleOut runs, for each worker count in --scale-workers, that many `run` workers of one
// pipeline on one table (1 s trigger, static members, one index each) while a fixed total
// rate is produced to a topic of --scale-partitions partitions, and reports what grows with
// the worker count: commits per second, conflicts and retries per commit, fenced batches,
// p99 produce-to-visible latency, index rows each worker synced from the others' commits,
// and CPU per transaction. On one machine the throughput cannot grow with the workers;
// these per-commit and per-worker costs are what extrapolates (README, "Scaling out").
func (b *benchRun) scaleOut(ctx context.Context) error {
	var rows []scaleRow
	for _, n := range b.f.scaleWorkers {
		r, err := b.scaleStage(ctx, n)
		if err != nil {
			return fmt.Errorf("scale-out, %d workers: %w", n, err)
		}
		rows = append(rows, r)
	}
	fmt.Fprintf(b.out, "\nscale-out: %d/s offered for %s to %d partitions, trigger 1s, one table, SQLite catalog\n\n",
		b.f.scaleRate, b.f.scaleDuration, b.f.scalePartitions)
	fmt.Fprintln(b.out, "| workers | commits/s | commits/s per worker | conflicts (retries) per commit | unknown per commit | fenced batches | p99 produce→visible | index rows synced per worker (mean / max) | CPU per tx | CPU per worker |")
	fmt.Fprintln(b.out, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(b.out, "| %d | %.2f | %.2f | %.2f | %.2f | %d | %.2f s | %.0f / %d | %.1f µs | %.2f cores |\n",
			r.workers, r.commitsPerSec, r.batchesPerSec1, r.conflictsPer, r.unknownPer, r.fenced, r.p99.Seconds(),
			r.rowsReadPer, r.rowsReadMax, float64(r.cpuPerTx.Nanoseconds())/1000, r.cpuPerWorkerS)
	}
	return nil
}

// scaleWorker is one `run` process of the scale-out stage.
type scaleWorker struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	addr string
}

// syncBuffer is a buffer that a child process writes to (stdout and stderr at once) while
// another goroutine reads it (the bench, the e2e tests).
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (b *benchRun) scaleStage(ctx context.Context, n int) (scaleRow, error) {
	topic := fmt.Sprintf("bench_scale_%d", n)
	table := "demo." + topic
	pipeline := "bench-" + topic
	if err := kafka.CreateTopicPartitions(ctx, b.client(), topic, int32(b.f.scalePartitions)); err != nil {
		return scaleRow{}, err
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
		addr, err := freeAddr()
		if err != nil {
			return scaleRow{}, err
		}
		args := append([]string{"run", "--trigger", "1s", "--create-table=yes", "--pipeline", pipeline, "--worker-id", fmt.Sprintf("w%02d", i),
			"--metrics-listen", addr}, b.common(topic, table)...)
		args = append(args, "--log-level", "info") // the index's figures are logged at its close
		cmd := exec.CommandContext(runCtx, b.self, args...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		w := &scaleWorker{cmd: cmd, out: &syncBuffer{}, addr: addr}
		cmd.Stdout, cmd.Stderr = w.out, w.out
		if err := cmd.Start(); err != nil {
			return scaleRow{}, err
		}
		workers[i] = w
	}
	for _, w := range workers {
		if err := waitReady(ctx, "http://"+w.addr+"/readyz", 3*time.Minute); err != nil {
			return scaleRow{}, fmt.Errorf("worker %s: %w\n%s", w.addr, err, lastLines(w.out.String(), 20))
		}
	}
	total := b.f.scaleRate * int(b.f.scaleDuration/time.Second)
	cpu0 := make([]time.Duration, n)
	for i, w := range workers {
		cpu0[i] = procCPU(w.cmd.Process.Pid)
	}
	start := time.Now()
	if err := b.produce(ctx, topic, total, b.f.scaleRate); err != nil {
		return scaleRow{}, err
	}
	// Drained: every transaction committed by some worker.
	deadline := time.Now().Add(2 * time.Minute)
	var per []map[string]float64
	for {
		var err error
		if per, err = scrapeAll(ctx, workers); err != nil {
			return scaleRow{}, err
		}
		if sum(per, "ledgerstream_records_accepted_total") >= float64(total) {
			break
		}
		if time.Now().After(deadline) {
			return scaleRow{}, fmt.Errorf("%v of %d transactions committed 2 minutes after the producer ended",
				sum(per, "ledgerstream_records_accepted_total"), total)
		}
		time.Sleep(250 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var cpu time.Duration
	for i, w := range workers {
		cpu += procCPU(w.cmd.Process.Pid) - cpu0[i]
	}
	stop()
	r := scaleRow{workers: n, accepted: int64(sum(per, "ledgerstream_records_accepted_total")), seconds: elapsed.Seconds()}
	var errs []error
	readRE := regexp.MustCompile(`transaction id index closed.* rows_read=(\d+)`)
	var read int64
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
		r.rowsReadMax = max(r.rowsReadMax, v)
	}
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	batches := sum(per, "ledgerstream_batches_total")
	r.commitsPerSec = batches / elapsed.Seconds()
	r.batchesPerSec1 = r.commitsPerSec / float64(n)
	if batches > 0 {
		r.conflictsPer = sum(per, "ledgerstream_commit_conflicts_total") / batches
		r.unknownPer = sum(per, "ledgerstream_commit_unknown_total") / batches
	}
	r.fenced = int64(sum(per, "ledgerstream_batches_fenced_total"))
	r.rowsReadPer = float64(read) / float64(n)
	if r.accepted > 0 {
		r.cpuPerTx = cpu / time.Duration(r.accepted)
	}
	r.cpuPerWorkerS = cpu.Seconds() / elapsed.Seconds() / float64(n)
	lat, err := b.latencies(ctx, table, pipeline)
	if err != nil {
		return r, err
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p99 = lat[min(len(lat)-1, int(0.99*float64(len(lat))))]
	}
	stage := fmt.Sprintf("scale-out %d workers", n)
	b.add(benchResult{Stage: stage, Records: r.accepted, Seconds: r.seconds,
		Note: fmt.Sprintf("commits/s %.2f, conflicts/commit %.2f, fenced %d, p99 %.2fs, index rows synced/worker %.0f, CPU/tx %.1fµs",
			r.commitsPerSec, r.conflictsPer, r.fenced, r.p99.Seconds(), r.rowsReadPer, float64(r.cpuPerTx.Nanoseconds())/1000)})
	for _, v := range []struct {
		name  string
		value float64
		unit  string
	}{
		{"commits/s", r.commitsPerSec, "1/s"},
		{"conflicts per commit", r.conflictsPer, "ratio"},
		{"fenced batches", float64(r.fenced), "batches"},
		{"p99 produce-to-visible", r.p99.Seconds(), "s"},
		{"index rows synced per worker", r.rowsReadPer, "rows"},
		{"CPU per transaction", float64(r.cpuPerTx.Nanoseconds()) / 1000, "µs"},
	} {
		b.results = append(b.results, benchResult{Run: b.id, Stage: stage + ": " + v.name, Value: v.value, Unit: v.unit})
	}
	b.verify(ctx, stage, topic, table)
	return r, nil
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

// scrape reads the unlabelled samples of a Prometheus text endpoint.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

func sum(per []map[string]float64, name string) float64 {
	var s float64
	for _, m := range per {
		s += m[name]
	}
	return s
}

// procCPU is a live process's user and system CPU time (/proc/PID/stat, in clock ticks of
// 1/100 s, the USER_HZ of every Linux architecture Go supports).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after its closing paren.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
