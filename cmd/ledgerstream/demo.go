package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/audit"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		p                 produceFlags
		r                 runFlags
		validate, cleanup bool
		partitions        int
	)
	r.trigger, r.duration = 10*time.Second, 35*time.Second
	p.firstID = -1        // a demo on an existing data directory adds new transactions
	r.createTable = "yes" // the demo's own table, in its own data directory
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The reference notebook in one command: broker, produce, stream, report, validate",
		Long: `Starts an embedded Kafka-protocol broker on a free loopback port, produces
--transactions transactions, streams them into the ledger for --duration with a batch
every --trigger, prints the summary, the duplicate check and the latest 10, and runs the
validations (exit 1 if one fails). Everything lives in a fresh directory unless
--data-dir is given. The notebook's parameter names work too (num_transactions,
checkpoint_interval_seconds, streaming_duration_seconds, enable_validation, enable_cleanup).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), cmd, g, p, r, partitions, validate, cleanup)
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.count, "transactions", 200, "transactions to produce")
	f.DurationVar(&r.trigger, "trigger", r.trigger, "micro-batch interval, with a unit (10s)")
	f.DurationVar(&r.duration, "duration", r.duration, "how long to stream, with a unit (35s)")
	// The notebook's *_seconds parameters take bare seconds; --trigger and --duration take a
	// unit, as run's do, so that "--trigger 5" means the same (an error) everywhere.
	f.Var((*seconds)(&r.trigger), "checkpoint-interval-seconds", "the notebook's name for --trigger, in seconds")
	f.Var((*seconds)(&r.duration), "streaming-duration-seconds", "the notebook's name for --duration, in seconds")
	_ = f.MarkHidden("checkpoint-interval-seconds")
	_ = f.MarkHidden("streaming-duration-seconds")
	f.BoolVar(&validate, "validate", true, "run the validations; exit 1 if one fails")
	f.BoolVar(&cleanup, "cleanup", false, "drop the ledger table at the end")
	f.Int64Var(&p.seed, "seed", 0, "random seed for the data (0 = a new one)")
	f.IntVar(&partitions, "partitions", 3, "partitions of the demo topic")
	f.StringVar(&r.pipeline, "pipeline", "exactly-once-processor", "pipeline id")
	f.StringVar(&r.ops.metricsListen, "metrics-listen", "127.0.0.1:0", "serve the status page and /metrics on this address while streaming (port 0 picks a free one; empty = off)")
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		// The notebook's parameter names, as flags or config keys.
		switch name {
		case "num-transactions", "num_transactions":
			name = "transactions"
		case "checkpoint_interval_seconds":
			name = "checkpoint-interval-seconds"
		case "streaming_duration_seconds":
			name = "streaming-duration-seconds"
		case "enable-validation", "enable_validation":
			name = "validate"
		case "enable-cleanup", "enable_cleanup":
			name = "cleanup"
		}
		return pflag.NormalizedName(name)
	})
	limitProduceFlags(f, "transactions")
	limitDurations(f, "trigger", "checkpoint-interval-seconds")
	flagRange(f, "duration", "1ms", unbounded)
	flagRange(f, "streaming-duration-seconds", "1ms", unbounded)
	flagRange(f, "partitions", "1", strconv.Itoa(maxPartitions))
	return cmd
}

func demo(ctx context.Context, cmd *cobra.Command, g *globals, p produceFlags, r runFlags, partitions int, validate, cleanup bool) error {
	out := cmd.OutOrStdout()
	fresh := !cmd.Flags().Changed("data-dir") && os.Getenv("LEDGERSTREAM_DATA_DIR") == ""
	if fresh {
		dir, err := os.MkdirTemp("", "ledgerstream-demo-")
		if err != nil {
			return err
		}
		g.dataDir = dir
		if cleanup {
			defer os.RemoveAll(dir) // after the broker stops (defers run last-in first-out)
		}
	}
	r.startingOffsets, r.maxBatchRecords, r.sessionTimeout, r.maxMessageBytes = "earliest", 0, 10*time.Second, 1<<20
	r.outageTimeout = retry.DefaultOutageTimeout

	broker, err := kafka.StartBroker(ctx, kafka.BrokerConfig{
		DataDir: dataPath(g, "kafka"), Partitions: partitions, Topics: []string{g.topic}, Logger: slog.Default(),
	})
	if err != nil {
		return err
	}
	defer broker.Close()
	g.brokers = broker.Addr()

	fmt.Fprintf(out, "Pattern: exactly-once streaming, Kafka -> ledgerstream -> Iceberg\n")
	fmt.Fprintf(out, "  broker      %s (embedded, %d partitions)\n", broker.Addr(), partitions)
	fmt.Fprintf(out, "  data dir    %s\n", dataPath(g, ""))
	fmt.Fprintf(out, "  table       %s\n  topic       %s\n\n", g.table, g.topic)

	if existing, err := demoExisting(ctx, g); err != nil {
		return err
	} else if existing != "" {
		fmt.Fprintf(out, "%s\n\n", existing)
	}
	if _, err := sendTransactions(ctx, g, p, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nExactly-once processing started\n")
	fmt.Fprintf(out, "   Trigger: a batch every %s; offsets committed atomically with each Iceberg snapshot\n", r.trigger)
	r.ops.onListen = func(addr string) {
		fmt.Fprintf(out, "   Status page: http://%s/ (live while streaming; metrics at /metrics)\n", addr)
	}
	fmt.Fprintf(out, "   Processing for %s...\n", r.duration)
	rctx, cancel := context.WithTimeout(ctx, r.duration)
	st, err := runPipeline(rctx, g, r, out)
	cancel()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintln(out, "Streaming stopped")
	fmt.Fprintln(out, thisRun(st, p.count))
	fmt.Fprintln(out)

	rep, err := buildReport(ctx, g, audit.AsOf{})
	if err != nil {
		return err
	}
	if err := rep.WriteText(out); err != nil {
		return err
	}
	if validate {
		fmt.Fprintln(out, "\nValidation:")
		res, err := verify(ctx, g, r.pipeline, true, audit.AsOf{})
		if err != nil {
			return err
		}
		if err := writeVerify(out, res, false); err != nil {
			return err
		}
	}
	if cleanup {
		if err := dropLedger(ctx, g); err != nil {
			return err
		}
		fmt.Fprintln(out, "Cleanup completed: table dropped")
		if fresh {
			fmt.Fprintln(out, "Cleanup completed: data directory removed")
		}
	}
	return nil
}

// dropLedger drops the ledger table and its rejects table and purges their files.
func dropLedger(ctx context.Context, g *globals) error {
	ident, cat, err := openLedger(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	return dropTables(ctx, cat, ident)
}

// demoExisting describes what an existing data directory already holds, so that the
// report (of the whole ledger) is not mistaken for this run's; "" for a fresh one.
func demoExisting(ctx context.Context, g *globals) (string, error) {
	if _, err := os.Stat(filepath.Join(dataPath(g, ""), "catalog.db")); err != nil || g.catalog != "" {
		return "", nil
	}
	rep, err := buildReport(ctx, g, audit.AsOf{})
	if err != nil || rep.Rows == 0 {
		return "", nil //nolint:nilerr // nothing there yet is not an error here
	}
	return fmt.Sprintf("The data directory already holds a ledger of %d rows: this run adds new transactions (ids after the highest on the topic), and the report below covers the whole ledger.", rep.Rows), nil
}

// thisRun says what became of this run's records: rows committed, and rejects by reason.
func thisRun(st *engine.Stats, produced int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This run: %d transactions produced, %d records read, %d rows committed, %d rejected",
		produced, st.Records.Load(), st.Accepted.Load(), st.Rejected.Load())
	by := st.RejectedBy()
	reasons := slices.Sorted(maps.Keys(by))
	for i, r := range reasons {
		sep := ", "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(&b, "%s%d %s", sep, by[r], r)
	}
	if len(reasons) > 0 {
		b.WriteString("; `ledgerstream rejects list` shows them)")
	}
	if rest := int64(produced) - st.Records.Load(); rest > 0 {
		fmt.Fprintf(&b, "; %d not read within --duration", rest)
	}
	return b.String()
}

// seconds is a duration flag that also takes a bare number of seconds, as the notebook's
// *_seconds parameters do.
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }
func (s *seconds) Type() string   { return "duration" }
func (s *seconds) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		*s = seconds(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*s = seconds(d)
	return nil
}
