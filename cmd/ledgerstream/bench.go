package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/bench"
	"github.com/ledgerstream/ledgerstream/internal/cli"
)

func newBenchCmd(g *cli.Globals) *cobra.Command {
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
			o.Contract = g.Contract
			o.Catalog = g.Catalog
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
	fl.StringVar(&o.ScaleIndexScope, "scale-index-scope", "global", "scale-out stage: the workers' --index-scope (global or partition)")
	cli.FlagRange(fl, "scale-rate", "1", cli.Unbounded)
	cli.FlagRange(fl, "scale-duration", "1s", cli.Unbounded)
	cli.FlagRange(fl, "scale-partitions", "1", "10000")
	return cmd
}

// runBench runs the benchmark, printing each stage as it is measured and then the tables,
// and appends the results to the results file.
func runBench(cmd *cobra.Command, o bench.Options, results string, out io.Writer) error {
	o.RunID = time.Now().UTC().Format(time.RFC3339)
	fmt.Fprintf(out, "ledgerstream bench %s\n%s\n\n", o.RunID, bench.Machine())
	o.Progress = func(r bench.Result) { fmt.Fprintf(out, "  %-34s %s\n", r.Stage, r.Cell()) }
	rep, err := bench.Run(cmd.Context(), o)
	if err != nil {
		return err
	}
	if len(rep.Scale) > 0 {
		bench.WriteScale(out, o, rep.Scale)
	}
	bench.WriteTable(out, rep.Results)
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
		return &cli.ExitError{Code: 2, Msg: "bench: not met: " + strings.Join(rep.Failed, "; ")}
	}
	return nil
}
