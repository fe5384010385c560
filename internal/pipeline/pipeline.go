// Package pipeline runs one ledgerstream worker: it wires the Kafka source, the ledger
// and rejects tables, the transaction id index and the engine, and runs the loop between
// batches with what surrounds it in production (commit timing, metrics and readiness, the
// progress line, automatic maintenance). The exactly-once protocol itself is the engine's;
// the command line (cmd/ledgerstream, with internal/cli) only turns flags into a Config and
// prints.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"
	"golang.org/x/sync/errgroup"

	"github.com/ledgerstream/ledgerstream/internal/dedup"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// Config is what a worker runs with.
type Config struct {
	// Catalog holds the tables; the caller opens and closes it.
	Catalog *iceberg.Catalog
	// Table is the ledger; its rejects table is iceberg.RejectsIdent(Table). A missing
	// ledger is created as CreateTable allows, and announced to OnCreated; a missing
	// rejects table is created.
	Table table.Identifier
	// CreateTable says whether a missing ledger may be created ("" is CreateAlways).
	CreateTable CreateMode
	// OnCreated, when set, is told that Run created the ledger.
	OnCreated func(Created)
	// Contract is what the messages look like and what the ledger makes of them (see
	// iceberg.EnsureLedger): nil means the table's own, or the default contract for a new
	// table; another contract than the table's must be an evolution it accepts.
	Contract *ledger.Contract
	// Kafka says how to reach the cluster, Topic what to consume.
	Kafka kafka.ClientConfig
	Topic string
	// WorkerID, when set, makes the worker a static group member (group.instance.id) and
	// names its index file.
	WorkerID string
	// SessionTimeout is how long the group waits for a silent worker.
	SessionTimeout time.Duration
	// OutageTimeout ends the run when one outage of a dependency (Kafka, the catalog, the
	// storage) lasts longer; shorter ones are waited out, loudly. 0 waits for ever. Used
	// when Engine.Retry is nil, as is SessionTimeout: a worker cut off from the catalog or
	// the storage that long leaves its group until they answer again.
	OutageTimeout time.Duration
	// IndexDir is the directory of the transaction id index files.
	IndexDir string
	// IndexScope is IndexScopeGlobal (""), every id of the pipeline in one index, or
	// IndexScopePartition: only the ids of the partitions the worker reads, for producers
	// that key every message by its transaction id (docs/design.md §4.6).
	IndexScope string
	// Engine tunes the engine; Engine.Pipeline is also the consumer group.
	Engine engine.Config
	// MetricsListen, when set, is the address of the Prometheus /metrics, /healthz and
	// /readyz endpoint, and of the status page at /.
	MetricsListen string
	// OnListen, when set, is told the address MetricsListen resolved to (port 0 picks one).
	OnListen func(addr string)
	// Progress, when set and Engine.AvailableNow, is called every second and once at the
	// end with how far the run has come (from the loop's helper goroutine).
	Progress func(Progress)
	// Maintain schedules automatic maintenance between batches (off when both periods
	// are zero).
	Maintain Schedule
	// MemoryLimit, when above 0, is the Go runtime's soft memory limit that Run sets for the
	// process (MemoryLimit computes run's); a worker is alone in its process.
	MemoryLimit int64
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Result is what a run did.
type Result struct {
	// Stats are the engine's totals.
	Stats *engine.Stats
	// Elapsed is how long the worker streamed (from joining the group to the end).
	Elapsed time.Duration
}

// Wrapper decorates what the engine talks to: its sinks, its source, and the callback
// through which the source resumes newly assigned partitions. The faults build of the
// binary (cmd/ledgerstream/faults.go) passes one that kills the process at a fault point
// (internal/faults); the product passes none.
type Wrapper interface {
	Sinks(engine.Sinks) engine.Sinks
	Source(engine.Source) engine.Source
	Resume(engine.ResumeFunc) engine.ResumeFunc
}

// WriteSummary prints what the run did, on one line, and the gaps it recorded on another.
func (r Result) WriteSummary(w io.Writer) {
	st, took := r.Stats, r.Elapsed
	fmt.Fprintf(w, "Streamed %d records in %s (%.0f/s): %d rows committed in %d batches, %d rejected, %d conflicts, %d fenced\n",
		st.Records.Load(), took.Round(time.Millisecond), float64(st.Records.Load())/max(took.Seconds(), 1e-9),
		st.Accepted.Load(), st.Batches.Load(), st.Rejected.Load(), st.Conflicts.Load(), st.Fenced.Load())
	if n := st.Gaps.Load(); n > 0 {
		fmt.Fprintf(w, "Recorded %d gaps in the rejects table: %d offsets lost before processing (deleted from the topic before they were read; reason lost_before_processing)\n",
			n, st.LostOffsets.Load())
	}
}

// Run runs a worker until ctx ends (it then commits what it holds) or, with
// Engine.AvailableNow, until the backlog it found is committed. An error means the
// worker must stop; its uncommitted work is safe to redo. Result.Stats is set once the
// worker has joined the group, even with an error. wrap decorates what the engine talks
// to, outermost last.
func Run(ctx context.Context, cfg Config, wrap ...Wrapper) (Result, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
		log.Debug("soft memory limit", "MiB", cfg.MemoryLimit>>20)
	}
	cat, ident := cfg.Catalog, cfg.Table
	ecfg := cfg.Engine
	if ecfg.Logger == nil {
		ecfg.Logger = log
	}
	if ecfg.Retry == nil {
		// A worker cut off from the catalog or the storage for as long as the group would
		// wait for a silent member gives its partitions up (docs/design.md §7).
		session := cfg.SessionTimeout
		if session <= 0 {
			session = kafka.DefaultSessionTimeout
		}
		ecfg.Retry = &retry.Policy{OutageTimeout: cfg.OutageTimeout, HandOffAfter: session, Logger: log, Clock: ecfg.Clock}
	}
	// Before it joins the group a worker holds nothing to hand off: it waits.
	tbls, err := ensureLedger(ctx, cfg, ecfg.Retry.WithoutHandOff())
	if err != nil {
		return Result{}, err
	}
	contract := tbls.contract
	sinks, closeSinks, err := openSinks(cfg, tbls, log)
	if err != nil {
		return Result{}, err
	}
	defer closeSinks()
	obs := newObserver(cat, ident, cfg.Engine.Trigger, log)
	obs.status.workerID, obs.status.pipeline, obs.status.topic = workerName(cfg.WorkerID), cfg.Engine.Pipeline, cfg.Topic
	sinks = obs.wrap(sinks) // commit timing and committed offsets for metrics
	for _, w := range wrap {
		sinks = w.Sinks(sinks)
	}
	if _, scoped := sinks.Index.(engine.ScopedIndex); cfg.IndexScope == IndexScopePartition && !scoped {
		// The engine covers a partition before it classifies its records only through
		// engine.ScopedIndex: an index decorator that hid it would let duplicates through.
		return Result{}, fmt.Errorf("index scope partition: the index (%T) does not cover partitions; a decorator hides engine.ScopedIndex", sinks.Index)
	}
	rules := ledger.DefaultRules()
	if ecfg.Rules != nil {
		rules = *ecfg.Rules
	}
	rules.Contract = contract
	ecfg.Rules = &rules
	obs.deps = ecfg.Retry.Track()
	eng := engine.New(ecfg, sinks)
	resume := eng.Resume
	for _, w := range wrap {
		resume = w.Resume(resume)
	}
	src, err := kafka.NewSource(ctx, kafka.SourceConfig{
		Client:         cfg.Kafka,
		Topic:          cfg.Topic,
		Group:          ecfg.Pipeline,
		InstanceID:     cfg.WorkerID,
		SessionTimeout: cfg.SessionTimeout,
		Resume:         resume,
		Logger:         log,
		Tracker:        obs.deps,
	})
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	log.Info("streaming", "topic", cfg.Topic, "table", identName(ident), "pipeline", ecfg.Pipeline,
		"trigger", ecfg.Trigger, "available_now", ecfg.AvailableNow)
	start := time.Now()
	err = runWorker(ctx, cfg, eng, src, obs, wrap, log)
	return Result{Stats: eng.Stats(), Elapsed: time.Since(start)}, err
}

// The transaction id index scopes (run --index-scope).
const (
	IndexScopeGlobal    = "global"
	IndexScopePartition = "partition"
)

// openSinks opens what a worker writes to, on the tables ensureLedger loaded: the ledger,
// its rejects table, and this worker's transaction id index file,
// <index-dir>/<table>~<pipeline>[~<worker>].idx. The index file is locked: two workers on
// one machine need distinct worker ids (or index directories). Call the returned func when
// done.
func openSinks(cfg Config, t tables, log *slog.Logger) (engine.Sinks, func() error, error) {
	pipeline, contract := cfg.Engine.Pipeline, t.contract
	sink, err := cfg.Catalog.NewContractSinkOn(cfg.Table, pipeline, t.ledger, contract)
	if err != nil {
		return engine.Sinks{}, nil, err
	}
	rejects, err := cfg.Catalog.NewRejectSinkOn(cfg.Table, pipeline, t.rejects)
	if err != nil {
		return engine.Sinks{}, nil, err
	}
	path := filepath.Join(cfg.IndexDir, dedup.FileName(identName(cfg.Table), pipeline, cfg.WorkerID))
	ids := cfg.Catalog.NewContractLedgerIDs(cfg.Table, sink, contract)
	switch cfg.IndexScope {
	case IndexScopeGlobal, "":
	case IndexScopePartition:
		idx, err := dedup.OpenScoped(path, ids, dedup.Options{Logger: log})
		if err != nil {
			return engine.Sinks{}, nil, err
		}
		log.Info("transaction id index scoped per partition: each partition's ids are indexed by the worker that reads it", "path", path)
		return engine.Sinks{Ledger: sink, Rejects: rejects, Index: idx, Checks: []engine.FileChecker{sink, rejects}}, idx.Close, nil
	default:
		return engine.Sinks{}, nil, fmt.Errorf("index scope %q: want %s or %s", cfg.IndexScope, IndexScopeGlobal, IndexScopePartition)
	}
	idx, err := dedup.Open(path, ids, dedup.Options{Logger: log})
	if err != nil {
		return engine.Sinks{}, nil, err
	}
	st := idx.Stats()
	log.Info("transaction id index opened", "path", path, "ids", st.Rows, "bloom_bytes", st.BloomBytes)
	return engine.Sinks{Ledger: sink, Rejects: rejects, Index: idx, Checks: []engine.FileChecker{sink, rejects}}, idx.Close, nil
}

// lagSource is what the observer asks the source: the partitions it owns, and how far the
// pipeline is behind the topic's last stable offsets. *kafka.Source implements it.
type lagSource interface {
	Assigned() []engine.Partition
	Lag(ctx context.Context, committed engine.Offsets) (map[engine.Partition]kafka.PartitionLag, error)
}

// runWorker runs the loop with the metrics endpoint, the progress line and automatic
// maintenance around it, and stops them when the loop ends.
func runWorker(ctx context.Context, cfg Config, eng *engine.Engine, src *kafka.Source, obs *observer, wrap []Wrapper, log *slog.Logger) error {
	obs.stats = eng.Stats()
	obs.source = src

	var auto *scheduler
	if cfg.Maintain.Every > 0 || cfg.Maintain.EveryCommits > 0 {
		auto = newScheduler(cfg.Catalog, cfg.Table, cfg.Maintain, obs, eng.Refresh, log)
	}
	progress := cfg.Engine.AvailableNow && cfg.Progress != nil

	// The helpers live as long as the loop; they end with it, and the group waits for them.
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(bg)
	if cfg.MetricsListen != "" {
		reg := metrics.NewRegistry()
		reg.Register(metrics.Engine(obs.stats))
		reg.Register(obs)
		reg.Register(obs.status.visible)
		srv, err := metrics.Listen(cfg.MetricsListen, obs.handler(reg))
		if err != nil {
			return err
		}
		log.Info("metrics endpoint listening", "address", "http://"+srv.Addr()+"/metrics")
		log.Info("status page listening", "address", "http://"+srv.Addr()+"/")
		if cfg.OnListen != nil {
			cfg.OnListen(srv.Addr())
		}
		g.Go(func() error {
			<-gctx.Done()
			return srv.Close()
		})
	}
	if cfg.MetricsListen != "" || progress {
		period := 5 * time.Second
		if progress {
			period = time.Second
		}
		g.Go(func() error { return obs.pollLoop(gctx, period) })
	}
	if progress {
		g.Go(func() error { return runProgress(gctx, cfg.Progress, obs.stats, obs) })
	}
	// The source as the engine sees it: each fetch is shown to the produce-to-visible
	// latency measure.
	var feed engine.Source = visibleSource{metrics.VisibleSource{Source: src, V: obs.status.visible}, src}
	for _, w := range wrap {
		feed = w.Source(feed)
	}
	err := loop(ctx, eng, feed, src, obs, auto)
	cancel()
	return errors.Join(err, g.Wait())
}

// loop is the production loop of a worker: engine steps until the run is over, with what
// happens between batches: the step timing for metrics and readiness (obs, may be nil),
// automatic maintenance (auto, may be nil), and the hand-off of the partitions when the
// catalog or the storage is unreachable for the session timeout (through g, the group
// membership; nil ends the run instead). Maintenance runs here, in the loop's goroutine,
// so it never overlaps a commit of this worker.
func loop(ctx context.Context, eng *engine.Engine, src engine.Source, g member, obs *observer, auto *scheduler) error {
	st := eng.Stats()
	out, log := &outOfGroup{}, slog.Default()
	if obs != nil {
		out, log = &obs.group, obs.log
	}
	for {
		start, before := time.Now(), st.Batches.Load()
		done, err := eng.Step(ctx, src)
		if obs != nil {
			obs.step(start, st.Batches.Load() > before)
		}
		var h *retry.HandOffError
		if err != nil && !done && g != nil && errors.As(err, &h) {
			if err := handOff(ctx, h, g, eng, out, log); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if err != nil || done {
			return err
		}
		if auto != nil && ctx.Err() == nil {
			auto.maybe(ctx, st.Batches.Load())
		}
	}
}

func identName(id table.Identifier) string { return strings.Join(id, ".") }

// workerName names the worker on the status page: its --worker-id, else the host and
// process (a dynamic group member has no id of its own).
func workerName(id string) string {
	if id != "" {
		return id
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s pid %d (no --worker-id)", host, os.Getpid())
}

// visibleSource is the Kafka source as the engine sees it: fetches measured for the
// produce-to-visible latency, and the topic described for the engine's gap and re-created
// topic checks (engine.TopicDescriber). The measuring wrapper alone would hide the second:
// the engine would then take a re-created topic at its word.
type visibleSource struct {
	metrics.VisibleSource
	kafka *kafka.Source
}

// Topic describes the topic as the cluster has it now.
func (s visibleSource) Topic(ctx context.Context) (engine.TopicState, error) {
	return s.kafka.Topic(ctx)
}

var _ engine.TopicDescriber = visibleSource{}
