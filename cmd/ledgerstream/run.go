package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
)

func newRunCmd(g *cli.Globals) *cobra.Command {
	var (
		r  cli.RunFlags
		ff faultFlags // test builds only (go:build faults): faults.go
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Stream the topic into the ledger table, exactly once",
		Long: `Consumes the topic with read_committed in a consumer group (the pipeline id), turns
each valid message into a ledger row, and appends a micro-batch every --trigger to the
Iceberg table, with the offsets it covers in the snapshot summary. On start it resumes
from the offsets in the table, not from Kafka's group offsets. SIGINT/SIGTERM stop it
cleanly after committing what it holds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if r.Duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, r.Duration)
				defer cancel()
			}
			st, err := runPipeline(ctx, g, r, ff, cmd.OutOrStdout())
			if cmd.Context().Err() != nil && r.AvailableNow {
				// --available-now promises a drained topic; a signal broke that promise, and
				// scripts must see it. What was committed stays committed.
				var rows int64
				if st != nil {
					rows = st.Accepted.Load()
				}
				return &cli.ExitError{Code: cli.InterruptedCode(cmd.Context()), Msg: fmt.Sprintf(
					"run --available-now interrupted before the topic was drained (%d rows committed, safe); run it again to finish", rows)}
			}
			if err != nil && errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
				// SIGINT/SIGTERM while starting (opening the catalog, the tables, the
				// index): nothing was read, nothing is left to commit. A clean stop.
				slog.Info("stopped while starting", "cause", err)
				return nil
			}
			return err
		},
	}
	addFaultFlags(cmd.Flags(), &ff) // before run's own: the range rule sees them
	r.AddFlags(cmd.Flags())
	return cmd
}

// runPipeline runs the streaming service until ctx ends or, with --available-now, the
// backlog is done, and prints a one-line summary.
func runPipeline(ctx context.Context, g *cli.Globals, r cli.RunFlags, ff faultFlags, out io.Writer) (*engine.Stats, error) {
	cfg, err := r.WorkerConfig(g, out)
	if err != nil {
		return nil, err
	}
	wrap, err := ff.apply(&cfg.Engine)
	if err != nil {
		return nil, err
	}
	cfg.Kafka = g.KafkaConfig()
	if r.AvailableNow {
		// A person waits on --available-now: no broker, or no topic, is an answer at once.
		cfg.Kafka = g.KafkaConfigBounded()
		if _, err := kafka.TopicPartitions(ctx, cfg.Kafka, g.Topic); err != nil {
			return nil, err
		}
	}
	ident, cat, err := g.OpenLedger(ctx)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	cfg.Catalog, cfg.Table = cat, ident
	if r.CPUProfile != "" {
		stop, err := cli.StartCPUProfile(r.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	if r.MemProfile != "" {
		defer cli.WriteMemProfile(r.MemProfile)
	}
	res, err := pipeline.Run(ctx, cfg, wrap...)
	if res.Stats == nil {
		return nil, err
	}
	res.WriteSummary(out)
	return res.Stats, err
}
