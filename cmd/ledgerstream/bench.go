package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		o       bench.Options
		results string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Race the pipeline against the machine's limits and print one table",
		Long: `Starts the embedded broker as a separate process, produces a backlog, and measures
in one run: raw consume (records fetched and discarded), transform only, Parquet writing
only, the exactly-once pipeline end to end (run --available-now as its own process, with
its peak RSS), produce-to-visible latency at a fixed offered rate with a 1 s trigger, and
the peak RSS of a larger catch-up. verify runs after each pipeline run and must pass.
With --catalog, the pipeline stages' tables are in that catalog (a namespace of the run's
own, dropped at the end) instead of a SQLite catalog in the run's data directory.
With --contract FILE, the transform and end-to-end stages run a second time on messages
made for that contract (every field valid, keys counted), right after the default
contract's, and their ratios to the default's are reported.
Results are appended as JSON lines to --results so runs can be compared (default
<user cache dir>/ledgerstream/bench-results.jsonl, e.g. ~/.cache/ledgerstream/…: not in
the checkout; "none" appends nowhere).

Exit status: 0 when every stage ran and every target was met; 2 when every stage ran
(verify passing after each pipeline run) but a target was not met, named on stderr; 1
when a stage failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable() // the stages run this binary as child processes
			if err != nil {
				return fmt.Errorf("bench: find this program's executable to run as child processes: %w", err)
			}
			o.Binary = self
			o.Contract = g.contract
			o.Catalog = g.catalog
			return runBench(cmd, o, results, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Records, "records", 1_000_000, "backlog for the throughput stages")
	fl.IntVar(&o.CatchupRecords, "catchup-records", 5_000_000, "backlog of the peak-RSS catch-up (0 skips it)")
	fl.IntVar(&o.Rate, "rate", 50_000, "offered rate of the steady-state latency stage (0 skips it)")
	fl.DurationVar(&o.SteadyDuration, "steady-duration", 20*time.Second, "how long the steady-state stage produces")
	fl.StringVar(&results, "results", "", `append results to this JSON lines file (default <user cache dir>/ledgerstream/bench-results.jsonl; "none" = nowhere)`)
	fl.BoolVar(&o.Keep, "keep", false, "keep the benchmark's data directory")
	fl.Float64Var(&o.TargetRate, "target-rate", 400_000, "end-to-end target, transactions/s")
	fl.Float64Var(&o.TargetRatio, "target-ratio", 0.5, "end-to-end target as a fraction of kcat's read_committed consume of the same topic (not checked without kcat)")
	fl.DurationVar(&o.TargetP99, "target-p99", 1500*time.Millisecond, "steady-state p99 latency target")
	fl.Int64Var(&o.TargetRSSMiB, "target-rss-mib", 512, "catch-up peak RSS target")
	fl.IntSliceVar(&o.ScaleWorkers, "scale-workers", nil, "scale-out stage: run these worker counts of one pipeline on one table, e.g. 1,2,4,8,16 (none: skip it)")
	fl.IntVar(&o.ScaleRate, "scale-rate", 20_000, "scale-out stage: total offered rate, transactions/s, whatever the worker count")
	fl.DurationVar(&o.ScaleDuration, "scale-duration", 20*time.Second, "scale-out stage: how long each worker count is offered the rate")
	fl.IntVar(&o.ScalePartitions, "scale-partitions", 16, "scale-out stage: partitions of its topics")
	fl.BoolVar(&o.ScaleOnly, "scale-only", false, "run only the scale-out stage")
	flagRange(fl, "scale-rate", "1", unbounded)
	flagRange(fl, "scale-duration", "1s", unbounded)
	flagRange(fl, "scale-partitions", "1", "10000")
	return cmd
}

// runBench runs the benchmark, printing each stage as it is measured and then the tables,
// and appends the results to the results file.
func runBench(cmd *cobra.Command, o bench.Options, results string, out io.Writer) error {
	o.RunID = time.Now().UTC().Format(time.RFC3339)
	fmt.Fprintf(out, "ledgerstream bench %s\n%s\n\n", o.RunID, bench.Machine())
	o.Progress = func(r bench.Result) { fmt.Fprintf(out, "  %-34s %s\n", r.Stage, benchCell(r)) }
	rep, err := bench.Run(cmd.Context(), o)
	if err != nil {
		return err
	}
	if len(rep.Scale) > 0 {
		printScale(out, o, rep.Scale)
	}
	printBench(out, rep.Results)
	path, err := bench.ResultsPath(results)
	if err != nil {
		return err
	}
	if path != "" {
		if err := bench.AppendResults(path, rep.Results); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nresults appended to %s\n", path)
	}
	if len(rep.Failed) > 0 {
		return &exitError{code: 2, msg: "bench: not met: " + strings.Join(rep.Failed, "; ")}
	}
	return nil
}

func benchCell(r bench.Result) string {
	if r.Unit != "" {
		return fmt.Sprintf("%.2f %s %s", r.Value, r.Unit, r.Note)
	}
	return fmt.Sprintf("%d records in %.2fs = %.0f/s %s", r.Records, r.Seconds, r.PerSec, r.Note)
}

// printScale writes the scale-out figures as a Markdown table, as the README shows them.
func printScale(out io.Writer, o bench.Options, rows []bench.ScaleRow) {
	kind := "SQLite"
	switch {
	case strings.HasPrefix(o.Catalog, "postgres"):
		kind = "PostgreSQL"
	case strings.HasPrefix(o.Catalog, "http"):
		kind = "REST"
	}
	fmt.Fprintf(out, "\nscale-out: %d/s offered for %s to %d partitions, trigger 1s, one table, %s catalog\n\n",
		o.ScaleRate, o.ScaleDuration, o.ScalePartitions, kind)
	fmt.Fprintln(out, "| workers | commits/s | commits/s per worker | conflicts (retries) per commit | unknown per commit | mean commit attempt | fenced batches | p99 produce→visible | index rows synced per worker (mean / max) | CPU per tx | CPU per worker | load average |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %d | %.2f | %.2f | %.2f | %.2f | %.0f ms | %d | %.2f s | %.0f / %d | %.1f µs | %.2f cores | %.1f |\n",
			r.Workers, r.CommitsPerSec, r.CommitsPerSecPerWorker, r.ConflictsPerCommit, r.UnknownPerCommit, r.CommitSeconds*1000, r.Fenced, r.P99.Seconds(),
			r.IndexRowsSyncedMean, r.IndexRowsSyncedMax, float64(r.CPUPerTx.Nanoseconds())/1000, r.CPUPerWorker, r.Load)
	}
}

// printBench writes the results as one aligned table.
func printBench(out io.Writer, results []bench.Result) {
	fmt.Fprintln(out)
	w := 0
	for _, r := range results {
		w = max(w, len(r.Stage))
	}
	line := strings.Repeat("-", w+2) + "+" + strings.Repeat("-", 14) + "+" + strings.Repeat("-", 10) + "+" + strings.Repeat("-", 16) + "+" + strings.Repeat("-", 30)
	fmt.Fprintf(out, "%-*s | %12s | %8s | %14s | %s\n%s\n", w, "stage", "records", "seconds", "per second", "value / note", line)
	for _, r := range results {
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
		fmt.Fprintf(out, "%-*s | %12s | %8s | %14s | %s\n", w, r.Stage, rec, sec, ps, note)
	}
}
