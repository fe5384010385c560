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
	"github.com/ledgerstream/ledgerstream/internal/demo"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
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
			return runDemo(cmd.Context(), cmd, g, p, r, partitions, validate, cleanup)
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

func runDemo(ctx context.Context, cmd *cobra.Command, g *globals, p produceFlags, r runFlags, partitions int, validate, cleanup bool) error {
	out := cmd.OutOrStdout()
	fresh := !cmd.Flags().Changed("data-dir") && os.Getenv("LEDGERSTREAM_DATA_DIR") == ""
	if fresh {
		dir, err := os.MkdirTemp("", "ledgerstream-demo-")
		if err != nil {
			return err
		}
		g.dataDir = dir
	}
	r.startingOffsets, r.maxBatchRecords, r.sessionTimeout, r.maxMessageBytes = "earliest", 0, 10*time.Second, 1<<20
	r.outageTimeout = retry.DefaultOutageTimeout
	worker, wrap, err := r.workerConfig(g, out)
	if err != nil {
		return err
	}
	ident, err := iceberg.ParseIdent(g.table)
	if err != nil {
		return err
	}
	produce, err := p.options(g, newProgress(out))
	if err != nil {
		return err
	}
	cfg := demo.Config{
		DataDir: dataPath(g, ""), Fresh: fresh, Partitions: partitions, Topic: g.topic, Table: ident,
		Catalog: g.icebergConfig(), Kafka: g.kafkaConfig(), ConnectTimeout: g.connectTimeout,
		Produce: produce, Worker: worker, Wrap: wrap, Duration: r.duration, Cleanup: cleanup,
	}
	if validate {
		cfg.Validate = func(ctx context.Context, kc kafka.ClientConfig, out io.Writer) error {
			g.brokers = strings.Join(kc.Brokers, ",")
			res, err := verify(ctx, g, r.pipeline, true, audit.AsOf{})
			if err != nil {
				return err
			}
			return writeVerify(out, res, false)
		}
	}
	return interrupted(ctx, demo.Run(ctx, cfg, out))
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
