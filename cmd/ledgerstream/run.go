package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// runFlags are the streaming service's settings, shared by run and demo.
type runFlags struct {
	trigger         time.Duration
	duration        time.Duration
	availableNow    bool
	pipeline        string
	startingOffsets string
	maxOffsets      int
	maxBatchRecords int
	workerID        string
	sessionTimeout  time.Duration
	maxMessageBytes int
	fault           string
	indexDir        string
	cpuProfile      string
	memoryLimitMiB  int64
	stageAheadRows  int
	ops             opsFlags // metrics, progress, automatic maintenance: ops.go
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
			_, err := runPipeline(ctx, g, r, cmd.OutOrStdout())
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
	f.IntVar(&r.maxOffsets, "max-offsets-per-trigger", 0, "records per batch at most (0 = no limit but --max-batch-records)")
	f.IntVar(&r.maxBatchRecords, "max-batch-records", engine.DefaultMaxBatchRecords, "records per batch at most, bounding memory")
	f.StringVar(&r.indexDir, "index-dir", "", "directory of the transaction id index files (default <data-dir>/index)")
	f.StringVar(&r.workerID, "worker-id", "", "stable worker id for static group membership (group.instance.id)")
	f.DurationVar(&r.sessionTimeout, "session-timeout", 10*time.Second, "how long the group waits for a silent worker")
	f.IntVar(&r.maxMessageBytes, "max-message-bytes", 1<<20, "larger messages are rejected as too_large")
	f.StringVar(&r.fault, "fault", "", "testing only: die like kill -9 at a fault point, as POINT or POINT@N (the Nth time)")
	_ = f.MarkHidden("fault")
	f.IntVar(&r.stageAheadRows, "stage-ahead-rows", 0, "tuning and tests: accepted rows a batch gathers before writing them while it reads on (0 = 25,000)")
	_ = f.MarkHidden("stage-ahead-rows")
	f.StringVar(&r.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (for go tool pprof)")
	f.Int64Var(&r.memoryLimitMiB, "memory-limit-mib", 0, "soft limit of the Go runtime's memory, MiB (0 = 128 MiB + 2 KiB per --max-batch-records; -1 = none; GOMEMLIMIT, when set, wins)")
	addOpsFlags(f, &r.ops)
}

// runPipeline runs the streaming service until ctx ends or, with --available-now, the
// backlog is done, and prints a one-line summary.
func runPipeline(ctx context.Context, g *globals, r runFlags, out io.Writer) (*engine.Stats, error) {
	starting := engine.OffsetEarliest
	switch r.startingOffsets {
	case "earliest":
	case "latest":
		starting = engine.OffsetLatest
	default:
		return nil, fmt.Errorf("--starting-offsets must be earliest or latest, not %q", r.startingOffsets)
	}
	fault, err := parseFault(r.fault)
	if err != nil {
		return nil, err
	}
	ident, cat, err := openLedger(ctx, g)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	if _, err := cat.EnsureTable(ctx, ident, iceberg.LedgerSchema()); err != nil {
		return nil, err
	}
	sinks, closeSinks, err := openSinks(ctx, cat, g, ident, r)
	if err != nil {
		return nil, err
	}
	defer closeSinks()
	obs := newObserver(cat, ident, r.trigger)
	sinks = obs.wrap(sinks) // commit timing and committed offsets for metrics
	rules := ledger.DefaultRules()
	rules.MaxMessageBytes = r.maxMessageBytes
	batch := r.maxBatchRecords
	if r.maxOffsets > 0 {
		batch = min(batch, r.maxOffsets)
	}
	if limit := memoryLimit(r.memoryLimitMiB, batch); limit > 0 {
		debug.SetMemoryLimit(limit)
		slog.Debug("soft memory limit", "MiB", limit>>20)
	}
	eng := engine.New(engine.Config{
		Pipeline:        r.pipeline,
		Trigger:         r.trigger,
		MaxBatchRecords: batch,
		StageAheadRows:  r.stageAheadRows,
		AvailableNow:    r.availableNow,
		StartingOffsets: starting,
		Rules:           &rules,
		Fault:           fault,
		Logger:          slog.Default(),
	}, sinks)
	src, err := kafka.NewSource(ctx, kafka.SourceConfig{
		Client:         g.kafkaConfig(),
		Topic:          g.topic,
		Group:          r.pipeline,
		InstanceID:     r.workerID,
		SessionTimeout: r.sessionTimeout,
		Resume:         eng.Resume,
		Logger:         slog.Default(),
	})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if r.cpuProfile != "" {
		stop, err := startCPUProfile(r.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	slog.Info("streaming", "topic", g.topic, "table", g.table, "pipeline", r.pipeline,
		"trigger", r.trigger, "available_now", r.availableNow)
	start := time.Now()
	err = runOps(ctx, r, g.topic, cat, ident, eng, src, obs)
	st := eng.Stats()
	took := time.Since(start)
	fmt.Fprintf(out, "Streamed %d records in %s (%.0f/s): %d rows committed in %d batches, %d rejected, %d conflicts, %d fenced\n",
		st.Records.Load(), took.Round(time.Millisecond), float64(st.Records.Load())/max(took.Seconds(), 1e-9),
		st.Accepted.Load(), st.Batches.Load(), st.Rejected.Load(), st.Conflicts.Load(), st.Fenced.Load())
	return st, err
}

// parseFault turns --fault POINT[@N] into a hook that kills the process, as kill -9 would,
// the Nth time the engine reaches POINT. Empty means no faults.
func parseFault(spec string) (func(string), error) {
	if spec == "" {
		return nil, nil
	}
	point, nth := spec, 1
	if i := strings.IndexByte(spec, '@'); i >= 0 {
		n, err := strconv.Atoi(spec[i+1:])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--fault %q: want POINT or POINT@N with N >= 1", spec)
		}
		point, nth = spec[:i], n
	}
	switch point {
	case engine.FaultAfterFetch, engine.FaultAfterStage, engine.FaultAfterCommit, engine.FaultInRebalance, engine.FaultAfterAdvised:
	default:
		return nil, fmt.Errorf("--fault: unknown fault point %q", point)
	}
	var seen atomic.Int64 // points are reached from the loop and from the rebalance callback
	return func(at string) {
		if at != point || seen.Add(1) < int64(nth) {
			return
		}
		slog.Warn("fault point reached: killing the process", "point", at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it
	}, nil
}

// memoryLimit is the soft memory limit run sets, or -1 to leave the runtime's. The Go heap
// otherwise grows to twice what is live before collecting, and what is live is mostly the
// batch (its records, rows and the parts being written: about 1 KiB a record at the
// generator's message size), so the default follows --max-batch-records: memory is bounded
// by the batch, not by the backlog. Larger messages need a larger limit (the runtime then
// collects more often; it never fails an allocation for it).
func memoryLimit(mib int64, batchRecords int) int64 {
	switch {
	case os.Getenv("GOMEMLIMIT") != "" || mib < 0:
		return -1
	case mib > 0:
		return mib << 20
	}
	return 128<<20 + int64(batchRecords)*2<<10
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
