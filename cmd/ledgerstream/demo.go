package main

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/audit"
	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/demo"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

func newDemoCmd(g *cli.Globals) *cobra.Command {
	var (
		p                 cli.ProduceFlags
		r                 cli.RunFlags
		validate, cleanup bool
		partitions        int
	)
	r.Trigger, r.Duration = 10*time.Second, 35*time.Second
	p.FirstID = -1        // a demo on an existing data directory adds new transactions
	r.CreateTable = "yes" // the demo's own table, in its own data directory
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
			return runDemo(cmd.Context(), cmd, g, p, r, partitions, validate, cleanup)
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.Count, "transactions", 200, "transactions to produce")
	f.DurationVar(&r.Trigger, "trigger", r.Trigger, "micro-batch interval, with a unit (10s)")
	f.DurationVar(&r.Duration, "duration", r.Duration, "how long to stream, with a unit (35s)")
	// The notebook's *_seconds parameters take bare seconds; --trigger and --duration take a
	// unit, as run's do, so that "--trigger 5" means the same (an error) everywhere.
	f.Var((*cli.Seconds)(&r.Trigger), "checkpoint-interval-seconds", "the notebook's name for --trigger, in seconds")
	f.Var((*cli.Seconds)(&r.Duration), "streaming-duration-seconds", "the notebook's name for --duration, in seconds")
	_ = f.MarkHidden("checkpoint-interval-seconds")
	_ = f.MarkHidden("streaming-duration-seconds")
	f.BoolVar(&validate, "validate", true, "run the validations; exit 1 if one fails")
	f.BoolVar(&cleanup, "cleanup", false, "drop the ledger table at the end")
	f.Int64Var(&p.Seed, "seed", 0, "random seed for the data (0 = a new one)")
	f.IntVar(&partitions, "partitions", 3, "partitions of the demo topic")
	f.StringVar(&r.Pipeline, "pipeline", "exactly-once-processor", "pipeline id")
	f.StringVar(&r.Ops.MetricsListen, "metrics-listen", "127.0.0.1:0", "serve the status page and /metrics on this address while streaming (port 0 picks a free one; empty = off)")
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
	cli.LimitProduceFlags(f, "transactions")
	cli.LimitDurations(f, "trigger", "checkpoint-interval-seconds")
	cli.FlagRange(f, "duration", "1ms", cli.Unbounded)
	cli.FlagRange(f, "streaming-duration-seconds", "1ms", cli.Unbounded)
	cli.FlagRange(f, "partitions", "1", strconv.Itoa(cli.MaxPartitions))
	return cmd
}

func runDemo(ctx context.Context, cmd *cobra.Command, g *cli.Globals, p cli.ProduceFlags, r cli.RunFlags, partitions int, validate, cleanup bool) error {
	out := cmd.OutOrStdout()
	fresh := !cmd.Flags().Changed("data-dir") && os.Getenv("LEDGERSTREAM_DATA_DIR") == ""
	if fresh {
		dir, err := os.MkdirTemp("", "ledgerstream-demo-")
		if err != nil {
			return err
		}
		g.DataDir = dir
	}
	r.StartingOffsets, r.MaxBatchRecords, r.SessionTimeout, r.MaxMessageBytes = "earliest", 0, 10*time.Second, 1<<20
	r.OutageTimeout = retry.DefaultOutageTimeout
	worker, err := r.WorkerConfig(g, out)
	if err != nil {
		return err
	}
	ident, err := iceberg.ParseIdent(g.Table)
	if err != nil {
		return err
	}
	produce, err := p.Options(g, cli.NewProgress(out))
	if err != nil {
		return err
	}
	cfg := demo.Config{
		DataDir: g.DataPath(""), Fresh: fresh, Partitions: partitions, Topic: g.Topic, Table: ident,
		Catalog: g.IcebergConfig(), Kafka: g.KafkaConfig(), ConnectTimeout: g.ConnectTimeout,
		Produce: produce, Worker: worker, Duration: r.Duration, Cleanup: cleanup,
	}
	if validate {
		cfg.Validate = func(ctx context.Context, kc kafka.ClientConfig, out io.Writer) error {
			g.Brokers = strings.Join(kc.Brokers, ",")
			res, err := verify(ctx, g, r.Pipeline, true, audit.AsOf{}, iceberg.Window{})
			if err != nil {
				return err
			}
			return writeVerify(out, res, false)
		}
	}
	return cli.Interrupted(ctx, demo.Run(ctx, cfg, out))
}
