package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// runFlags are the streaming service's settings, shared by run and demo.
type runFlags struct {
	trigger         time.Duration
	duration        time.Duration
	availableNow    bool
	pipeline        string
	startingOffsets string
	onGap           string
	maxOffsets      int
	maxBatchRecords int
	workerID        string
	sessionTimeout  time.Duration
	outageTimeout   time.Duration
	maxMessageBytes int
	indexDir        string
	cpuProfile      string
	memoryLimitMiB  int64
	createTable     string     // auto, yes or no: pipeline.CreateMode
	faults          faultFlags // test builds only (go:build faults): faults.go
	ops             opsFlags   // metrics, progress, automatic maintenance
}

func newRunCmd(g *globals) *cobra.Command {
	var r runFlags
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
			if r.duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, r.duration)
				defer cancel()
			}
			st, err := runPipeline(ctx, g, r, cmd.OutOrStdout())
			if cmd.Context().Err() != nil && r.availableNow {
				// --available-now promises a drained topic; a signal broke that promise, and
				// scripts must see it. What was committed stays committed.
				var rows int64
				if st != nil {
					rows = st.Accepted.Load()
				}
				return &exitError{code: interruptedCode(cmd.Context()), msg: fmt.Sprintf(
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
	addRunFlags(cmd, &r)
	return cmd
}

func addRunFlags(cmd *cobra.Command, r *runFlags) {
	f := cmd.Flags()
	f.DurationVar(&r.trigger, "trigger", 10*time.Second, "micro-batch interval")
	f.DurationVar(&r.duration, "duration", 0, "stop after this long (0 = until stopped)")
	f.BoolVar(&r.availableNow, "available-now", false, "process everything in the topic now, then exit 0")
	f.StringVar(&r.pipeline, "pipeline", "exactly-once-processor", "pipeline id: the consumer group, and the owner of the offsets in the table")
	f.StringVar(&r.startingOffsets, "starting-offsets", "earliest", "where a partition the table has never seen starts: earliest or latest")
	f.StringVar(&r.createTable, "create-table", "auto", "create a missing ledger table: auto (only when its namespace holds no other ledger), yes, or no")
	f.StringVar(&r.onGap, "on-gap", "fail", "records deleted from the topic before they were read (retention, DeleteRecords): fail stops and names them; record writes the gap to the rejects table (reason lost_before_processing) and reads on")
	f.IntVar(&r.maxOffsets, "max-offsets-per-trigger", 0, "records per batch at most (0 = no limit but --max-batch-records)")
	f.IntVar(&r.maxBatchRecords, "max-batch-records", engine.DefaultMaxBatchRecords, "records per batch at most, bounding memory")
	f.StringVar(&r.indexDir, "index-dir", "", "directory of the transaction id index files (default <data-dir>/index)")
	f.StringVar(&r.workerID, "worker-id", "", "stable worker id for static group membership (group.instance.id)")
	f.DurationVar(&r.sessionTimeout, "session-timeout", 10*time.Second, "how long the group waits for a silent worker")
	f.DurationVar(&r.outageTimeout, "outage-timeout", retry.DefaultOutageTimeout, "exit non-zero when one outage of Kafka, the catalog or the storage lasts longer (shorter ones are waited out; 0 = wait for ever)")
	f.IntVar(&r.maxMessageBytes, "max-message-bytes", 1<<20, "larger messages are rejected as too_large")
	addFaultFlags(f, &r.faults)
	f.StringVar(&r.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (for go tool pprof)")
	f.Int64Var(&r.memoryLimitMiB, "memory-limit-mib", 0, "soft limit of the Go runtime's memory, MiB (0 = 128 MiB + 2 KiB per --max-batch-records; -1 = none; GOMEMLIMIT, when set, wins)")
	addOpsFlags(f, &r.ops)
	limitRunFlags(f)
}

// opsFlags are run's operational settings: metrics, progress and automatic maintenance.
type opsFlags struct {
	metricsListen  string
	onListen       func(addr string) // not a flag: demo prints the status page's address
	progress       bool
	maintainEvery  time.Duration
	maintainEveryN int64
	maintain       maintainFlags
}

func addOpsFlags(f *pflag.FlagSet, o *opsFlags) {
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve the status page (/), Prometheus /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464; empty = off)")
	f.BoolVar(&o.progress, "progress", true, "with --available-now, show a progress line on stderr (rewritten in place on a terminal)")
	f.DurationVar(&o.maintainEvery, "maintain-every", 0, "run maintenance between batches this often (0 = off; see `ledgerstream maintain`)")
	f.Int64Var(&o.maintainEveryN, "maintain-every-commits", 0, "run maintenance between batches every N committed batches (0 = off)")
	addMaintainFlags(f, &o.maintain, "maintain-")
}

// createTableModes are run's --create-table values (pipeline.CreateMode).
var createTableModes = []string{"auto", "yes", "no"}

// workerConfig is the worker the run flags describe (everything but the catalog and the
// Kafka client, which the caller opens and chooses), and the fault decorators of a faults
// build. Created tables are announced on out.
func (r runFlags) workerConfig(g *globals, out io.Writer) (pipeline.Config, []pipeline.Wrapper, error) {
	starting := engine.OffsetEarliest
	switch r.startingOffsets {
	case "earliest":
	case "latest":
		starting = engine.OffsetLatest
	default:
		return pipeline.Config{}, nil, fmt.Errorf("--starting-offsets must be earliest or latest, not %q", r.startingOffsets)
	}
	onGap, err := engine.ParseOnGap(r.onGap)
	if err != nil {
		return pipeline.Config{}, nil, err
	}
	var sched pipeline.Schedule
	if r.ops.maintainEvery > 0 || r.ops.maintainEveryN > 0 {
		opts, err := r.ops.maintain.options(false)
		if err != nil {
			return pipeline.Config{}, nil, err
		}
		sched = pipeline.Schedule{Every: r.ops.maintainEvery, EveryCommits: r.ops.maintainEveryN, Options: opts}
	}
	if !slices.Contains(createTableModes, r.createTable) {
		return pipeline.Config{}, nil, fmt.Errorf("--create-table %q: want one of %s", r.createTable, strings.Join(createTableModes, ", "))
	}
	contract, err := g.contractFlag()
	if err != nil {
		return pipeline.Config{}, nil, err
	}
	rules := ledger.DefaultRules()
	rules.MaxMessageBytes = r.maxMessageBytes
	batch := r.maxBatchRecords
	if r.maxOffsets > 0 {
		batch = min(batch, r.maxOffsets)
	}
	indexDir := r.indexDir
	if indexDir == "" {
		indexDir = dataPath(g, "index")
	}
	cfg := pipeline.Config{
		CreateTable: pipeline.CreateMode(r.createTable),
		OnCreated: func(c pipeline.Created) {
			where := c.Catalog + " catalog"
			if c.Warehouse != "" {
				where += ", warehouse " + c.Warehouse
			}
			fmt.Fprintf(out, "Created ledger table %s (and %s for its rejects) in the %s\n", c.Table, c.Rejects, where)
		},
		Contract:       contract,
		Topic:          g.topic,
		WorkerID:       r.workerID,
		SessionTimeout: r.sessionTimeout,
		OutageTimeout:  r.outageTimeout,
		IndexDir:       indexDir,
		Engine: engine.Config{
			Pipeline:        r.pipeline,
			Trigger:         r.trigger,
			MaxBatchRecords: batch,
			AvailableNow:    r.availableNow,
			StartingOffsets: starting,
			OnGap:           onGap,
			Rules:           &rules,
			Logger:          slog.Default(),
		},
		MetricsListen: r.ops.metricsListen,
		OnListen:      r.ops.onListen,
		Maintain:      sched,
		MemoryLimit:   pipeline.MemoryLimit(r.memoryLimitMiB, batch),
		Logger:        slog.Default(),
	}
	wrap, err := r.faults.apply(&cfg.Engine)
	if err != nil {
		return pipeline.Config{}, nil, err
	}
	if r.availableNow && r.ops.progress {
		p := newProgress(os.Stderr)
		cfg.Progress = func(pr pipeline.Progress) { p.show(progressLine(pr), pr.Final) }
	}
	return cfg, wrap, nil
}

// runPipeline runs the streaming service until ctx ends or, with --available-now, the
// backlog is done, and prints a one-line summary.
func runPipeline(ctx context.Context, g *globals, r runFlags, out io.Writer) (*engine.Stats, error) {
	cfg, wrap, err := r.workerConfig(g, out)
	if err != nil {
		return nil, err
	}
	cfg.Kafka = g.kafkaConfig()
	if r.availableNow {
		// A person waits on --available-now: no broker, or no topic, is an answer at once.
		cfg.Kafka = g.kafkaConfigBounded()
		if _, err := kafka.TopicPartitions(ctx, cfg.Kafka, g.topic); err != nil {
			return nil, err
		}
	}
	ident, cat, err := openLedger(ctx, g)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	cfg.Catalog, cfg.Table = cat, ident
	if r.cpuProfile != "" {
		stop, err := startCPUProfile(r.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	res, err := pipeline.Run(ctx, cfg, wrap...)
	if res.Stats == nil {
		return nil, err
	}
	res.WriteSummary(out)
	return res.Stats, err
}

// startCPUProfile profiles the process into path until the returned func is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
