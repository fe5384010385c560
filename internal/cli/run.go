package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// RunFlags are the streaming service's settings, shared by run and demo.
type RunFlags struct {
	Trigger         time.Duration
	Duration        time.Duration
	AvailableNow    bool
	Pipeline        string
	StartingOffsets string
	OnGap           string
	MaxOffsets      int
	MaxBatchRecords int
	WorkerID        string
	SessionTimeout  time.Duration
	OutageTimeout   time.Duration
	MaxMessageBytes int
	IndexDir        string
	IndexScope      string
	CPUProfile      string
	MemProfile      string
	MemoryLimitMiB  int64
	CreateTable     string // auto, yes or no: pipeline.CreateMode
	Ops             OpsFlags
}

// AddFlags registers run's flags on f.
func (r *RunFlags) AddFlags(f *pflag.FlagSet) {
	f.DurationVar(&r.Trigger, "trigger", 10*time.Second, "micro-batch interval")
	f.DurationVar(&r.Duration, "duration", 0, "stop after this long (0 = until stopped)")
	f.BoolVar(&r.AvailableNow, "available-now", false, "process everything in the topic now, then exit 0")
	f.StringVar(&r.Pipeline, "pipeline", "exactly-once-processor", "pipeline id: the consumer group, and the owner of the offsets in the table")
	f.StringVar(&r.StartingOffsets, "starting-offsets", "earliest", "where a partition the table has never seen starts: earliest or latest")
	f.StringVar(&r.CreateTable, "create-table", "auto", "create a missing ledger table: auto (only when its namespace holds no other ledger), yes, or no")
	f.StringVar(&r.OnGap, "on-gap", "fail", "records deleted from the topic before they were read (retention, DeleteRecords): fail stops and names them; record writes the gap to the rejects table (reason lost_before_processing) and reads on")
	f.IntVar(&r.MaxOffsets, "max-offsets-per-trigger", 0, "records per batch at most (0 = no limit but --max-batch-records)")
	f.IntVar(&r.MaxBatchRecords, "max-batch-records", engine.DefaultMaxBatchRecords, "records per batch at most, bounding memory")
	f.StringVar(&r.IndexDir, "index-dir", "", "directory of the transaction id index files (default <data-dir>/index)")
	f.StringVar(&r.IndexScope, "index-scope", pipeline.IndexScopeGlobal, "transaction id index: global (every worker indexes every id) or partition (each worker only its partitions' ids; only for producers that key every message by its transaction id: a record keyed otherwise stops the worker)")
	f.StringVar(&r.WorkerID, "worker-id", "", "stable worker id for static group membership (group.instance.id)")
	f.DurationVar(&r.SessionTimeout, "session-timeout", 10*time.Second, "how long the group waits for a silent worker")
	f.DurationVar(&r.OutageTimeout, "outage-timeout", retry.DefaultOutageTimeout, "exit non-zero when one outage of Kafka, the catalog or the storage lasts longer (shorter ones are waited out; 0 = wait for ever)")
	f.IntVar(&r.MaxMessageBytes, "max-message-bytes", 1<<20, "larger messages are rejected as too_large")
	f.StringVar(&r.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file (for go tool pprof)")
	f.StringVar(&r.MemProfile, "memprofile", "", "write a profile of the run's allocations to this file at its end (for go tool pprof -sample_index alloc_space)")
	f.Int64Var(&r.MemoryLimitMiB, "memory-limit-mib", 0, "soft limit of the Go runtime's memory, MiB (0 = 128 MiB + 2 KiB per --max-batch-records; -1 = none; GOMEMLIMIT, when set, wins)")
	r.Ops.AddFlags(f)
	limitRunFlags(f)
}

// OpsFlags are run's operational settings: metrics, progress and automatic maintenance.
type OpsFlags struct {
	MetricsListen  string
	OnListen       func(addr string) // not a flag: demo prints the status page's address
	Progress       bool
	MaintainEvery  time.Duration
	MaintainEveryN int64
	Maintain       MaintainFlags
}

// AddFlags registers o's flags on f.
func (o *OpsFlags) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.MetricsListen, "metrics-listen", "", "serve the status page (/), Prometheus /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464; empty = off)")
	f.BoolVar(&o.Progress, "progress", true, "with --available-now, show a progress line on stderr (rewritten in place on a terminal)")
	f.DurationVar(&o.MaintainEvery, "maintain-every", 0, "run maintenance between batches this often (0 = off; see `ledgerstream maintain`)")
	f.Int64Var(&o.MaintainEveryN, "maintain-every-commits", 0, "run maintenance between batches every N committed batches (0 = off)")
	o.Maintain.AddFlags(f, "maintain-")
}

// createTableModes are run's --create-table values (pipeline.CreateMode).
var createTableModes = []string{"auto", "yes", "no"}

// WorkerConfig is the worker the run flags describe: everything but the catalog and the
// Kafka client, which the caller opens and chooses. Created tables are announced on out.
func (r RunFlags) WorkerConfig(g *Globals, out io.Writer) (pipeline.Config, error) {
	starting := engine.OffsetEarliest
	switch r.StartingOffsets {
	case "earliest":
	case "latest":
		starting = engine.OffsetLatest
	default:
		return pipeline.Config{}, fmt.Errorf("--starting-offsets must be earliest or latest, not %q", r.StartingOffsets)
	}
	onGap, err := engine.ParseOnGap(r.OnGap)
	if err != nil {
		return pipeline.Config{}, err
	}
	var sched pipeline.Schedule
	if r.Ops.MaintainEvery > 0 || r.Ops.MaintainEveryN > 0 {
		opts, err := r.Ops.Maintain.Options(false)
		if err != nil {
			return pipeline.Config{}, err
		}
		sched = pipeline.Schedule{Every: r.Ops.MaintainEvery, EveryCommits: r.Ops.MaintainEveryN, Options: opts}
	}
	if r.IndexScope != "" && r.IndexScope != pipeline.IndexScopeGlobal && r.IndexScope != pipeline.IndexScopePartition {
		return pipeline.Config{}, fmt.Errorf("--index-scope %q: want %s or %s", r.IndexScope, pipeline.IndexScopeGlobal, pipeline.IndexScopePartition)
	}
	if !slices.Contains(createTableModes, r.CreateTable) {
		return pipeline.Config{}, fmt.Errorf("--create-table %q: want one of %s", r.CreateTable, strings.Join(createTableModes, ", "))
	}
	contract, err := g.ContractFlag()
	if err != nil {
		return pipeline.Config{}, err
	}
	rules := ledger.DefaultRules()
	rules.MaxMessageBytes = r.MaxMessageBytes
	batch := r.MaxBatchRecords
	if r.MaxOffsets > 0 {
		batch = min(batch, r.MaxOffsets)
	}
	indexDir := r.IndexDir
	if indexDir == "" {
		indexDir = g.DataPath("index")
	}
	cfg := pipeline.Config{
		CreateTable: pipeline.CreateMode(r.CreateTable),
		OnCreated: func(c pipeline.Created) {
			where := c.Catalog + " catalog"
			if c.Warehouse != "" {
				where += ", warehouse " + c.Warehouse
			}
			fmt.Fprintf(out, "Created ledger table %s (and %s for its rejects) in the %s\n", c.Table, c.Rejects, where)
		},
		Contract:       contract,
		Topic:          g.Topic,
		WorkerID:       r.WorkerID,
		SessionTimeout: r.SessionTimeout,
		OutageTimeout:  r.OutageTimeout,
		IndexDir:       indexDir,
		IndexScope:     r.IndexScope,
		Engine: engine.Config{
			Pipeline:        r.Pipeline,
			Trigger:         r.Trigger,
			MaxBatchRecords: batch,
			AvailableNow:    r.AvailableNow,
			StartingOffsets: starting,
			OnGap:           onGap,
			Rules:           &rules,
			Logger:          slog.Default(),
		},
		MetricsListen: r.Ops.MetricsListen,
		OnListen:      r.Ops.OnListen,
		Maintain:      sched,
		MemoryLimit:   pipeline.MemoryLimit(r.MemoryLimitMiB, batch),
		Logger:        slog.Default(),
	}
	if r.AvailableNow && r.Ops.Progress {
		p := NewProgress(os.Stderr)
		cfg.Progress = func(pr pipeline.Progress) { p.Show(runProgressLine(pr), pr.Final) }
	}
	return cfg, nil
}

// StartCPUProfile profiles the process into path until the returned func is called.
func StartCPUProfile(path string) (func(), error) {
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

// WriteMemProfile writes the allocations profile (every allocation sampled since the
// process began, and what is still in use) to path; a failure is logged, the run's result
// stands.
func WriteMemProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		slog.Warn("could not write the memory profile", "path", path, "error", err)
	}
}
