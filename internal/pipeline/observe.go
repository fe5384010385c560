package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// timedTable is an engine.Table that times its commits and remembers the last state it
// saw: the commit-duration histogram and the committed offsets come from here, without a
// hook in the engine.
type timedTable[R any] struct {
	engine.Table[R]
	commits    *metrics.Histogram
	last       atomic.Pointer[engine.TableState]
	lastCommit atomic.Int64 // unix nanoseconds of the last successful commit
	lastTook   atomic.Int64 // duration of the last successful commit, nanoseconds
	// onCommit, when set, is told of every successful commit (before Commit returns).
	onCommit func(st engine.TableState, at time.Time)
}

func newTimedTable[R any](t engine.Table[R]) *timedTable[R] {
	return &timedTable[R]{Table: t, commits: metrics.NewHistogram(metrics.DurationBuckets)}
}

func (t *timedTable[R]) Load(ctx context.Context) (engine.TableState, error) {
	st, err := t.Table.Load(ctx)
	if err == nil {
		t.last.Store(&st)
	}
	return st, err
}

func (t *timedTable[R]) Commit(ctx context.Context, base engine.TableState, staged engine.Staged, c engine.Commit) (engine.TableState, error) {
	start := time.Now()
	st, err := t.Table.Commit(ctx, base, staged, c)
	t.commits.ObserveDuration(time.Since(start))
	if err == nil {
		now := time.Now()
		t.last.Store(&st)
		t.lastCommit.Store(now.UnixNano())
		t.lastTook.Store(int64(now.Sub(start)))
		if t.onCommit != nil {
			t.onCommit(st, now)
		}
	}
	return st, err
}

// offsets is the table's offsets map for this pipeline as last seen (nil before any load).
func (t *timedTable[R]) offsets() engine.Offsets {
	if st := t.last.Load(); st != nil {
		return st.Offsets
	}
	return nil
}

// observer holds what the metrics endpoint, /readyz and the progress line report beside the
// engine's own counters.
type observer struct {
	stats     *engine.Stats
	cat       *iceberg.Catalog
	tables    []table.Identifier // the ledger, and its rejects table
	ledger    *timedTable[ledger.Row]
	rejects   *timedTable[ledger.RejectRow] // nil without a rejects table
	batches   *metrics.Histogram
	maintDur  *metrics.Histogram
	maintRuns atomic.Int64
	maintErrs atomic.Int64
	trigger   time.Duration
	log       *slog.Logger

	// source, when set, gives the assigned partitions and the lag behind the topic.
	source lagSource
	// deps, when set, is what the engine's retries and the Kafka client know of the
	// dependencies: /readyz and ledgerstream_dependency_up read it.
	deps    *retry.Tracker
	started time.Time

	mu         sync.Mutex
	lags       map[engine.Partition]kafka.PartitionLag // last polled; nil before
	tableStats map[string]iceberg.TableStats
	stepped    time.Time // when the loop last finished a step (a commit, or nothing to do)

	status statusState // the status page's own figures
	// group says whether the worker is in its consumer group, and why not (a hand-off).
	group outOfGroup
}

// newObserver observes a run on the ledger ident; set stats (and source) once the engine
// (and the source) exist.
func newObserver(cat *iceberg.Catalog, ident table.Identifier, trigger time.Duration, log *slog.Logger) *observer {
	return &observer{
		cat: cat, trigger: trigger, log: log, started: time.Now(),
		tables:     []table.Identifier{ident, iceberg.RejectsIdent(ident)},
		batches:    metrics.NewHistogram(metrics.DurationBuckets),
		maintDur:   metrics.NewHistogram(append(slices.Clone(metrics.DurationBuckets), 120, 300, 600)),
		tableStats: map[string]iceberg.TableStats{},
		status:     statusState{table: identName(ident), started: time.Now(), visible: metrics.NewVisible()},
	}
}

// wrap puts timing wrappers around the sinks the engine will use.
func (o *observer) wrap(s engine.Sinks) engine.Sinks {
	o.ledger = newTimedTable(s.Ledger)
	o.ledger.onCommit = func(st engine.TableState, at time.Time) { o.status.visible.Committed(st.Offsets, at) }
	s.Ledger = o.ledger
	if s.Rejects != nil {
		o.rejects = newTimedTable(s.Rejects)
		s.Rejects = o.rejects
	}
	return s
}

// step records the end of one engine step that began at start; committed says whether it
// committed a batch.
func (o *observer) step(start time.Time, committed bool) {
	now := time.Now()
	if committed {
		o.batches.ObserveDuration(now.Sub(start))
		o.recordCommit(now, now.Sub(start))
	}
	o.mu.Lock()
	o.stepped = now
	o.mu.Unlock()
}

// ready is /readyz: every dependency up (else the one line saying which is down, since
// when, doing what, and its last error), partitions assigned, and the loop finished a step (a commit, or a
// trigger with nothing to do) within the last three triggers. A loop stuck retrying a
// commit, or waiting on a catalog that does not answer, is not ready.
func (o *observer) ready() error {
	if reason := o.group.reason(time.Now()); reason != "" {
		return errors.New(reason)
	}
	if o.deps != nil {
		if reason := o.deps.Reason(); reason != "" {
			return errors.New(reason)
		}
	}
	if o.source != nil && len(o.source.Assigned()) == 0 {
		return errors.New("no partitions assigned")
	}
	o.mu.Lock()
	last := o.stepped
	o.mu.Unlock()
	if last.IsZero() {
		return errors.New("no batch completed yet")
	}
	limit := max(3*o.trigger, o.trigger+30*time.Second)
	if age := time.Since(last); age > limit {
		return fmt.Errorf("no batch completed for %s", age.Round(time.Second))
	}
	return nil
}

// poll refreshes the lag behind the topic and the table figures. Errors are logged:
// metrics must not stop the pipeline.
func (o *observer) poll(ctx context.Context, withTables bool) {
	if o.source != nil {
		var committed engine.Offsets
		if o.ledger != nil {
			committed = o.ledger.offsets()
		}
		lags, err := o.source.Lag(ctx, committed)
		if err != nil {
			o.log.Debug("metrics: lag behind the topic", "error", err)
		} else {
			o.mu.Lock()
			o.lags = lags
			o.mu.Unlock()
		}
	}
	if !withTables || o.cat == nil {
		return
	}
	for _, id := range o.tables {
		st, err := o.cat.Stats(ctx, id)
		if err != nil {
			continue // the rejects table may not exist
		}
		o.mu.Lock()
		o.tableStats[identName(id)] = st
		o.mu.Unlock()
	}
}

// lag returns the total lag of the topic's partitions behind the ledger, and whether it
// is known (polled at least once).
func (o *observer) lag() (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lags == nil {
		return 0, false
	}
	var total int64
	for _, l := range o.lags {
		total += l.Lag
	}
	return total, true
}

// pollLoop polls every period until ctx ends.
func (o *observer) pollLoop(ctx context.Context, period time.Duration) error {
	t := time.NewTicker(period)
	defer t.Stop()
	tables := time.Time{}
	for {
		// Table figures need a catalog round trip: at most every 10 s.
		withTables := time.Since(tables) >= 10*time.Second
		if withTables {
			tables = time.Now()
		}
		o.poll(ctx, withTables)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Collect is the metrics.Collector of everything but the engine's counters.
func (o *observer) Collect(e *metrics.Emitter) {
	if o.ledger != nil {
		e.Histogram("ledgerstream_commit_duration_seconds", "Duration of one table commit attempt (conditional append).",
			o.ledger.commits, metrics.Label{Name: "table", Value: "ledger"})
	}
	if o.rejects != nil {
		e.Histogram("ledgerstream_commit_duration_seconds", "Duration of one table commit attempt (conditional append).",
			o.rejects.commits, metrics.Label{Name: "table", Value: "rejects"})
	}
	e.Histogram("ledgerstream_batch_duration_seconds", "Duration of one batch, from its first fetch to its last commit (includes the trigger wait).", o.batches)
	e.Counter("ledgerstream_maintenance_runs_total", "Automatic maintenance runs.", float64(o.maintRuns.Load()))
	e.Counter("ledgerstream_maintenance_errors_total", "Automatic maintenance runs that failed.", float64(o.maintErrs.Load()))
	e.Histogram("ledgerstream_maintenance_duration_seconds", "Duration of an automatic maintenance run.", o.maintDur)
	since := o.started
	if o.ledger != nil {
		if ts := o.ledger.lastCommit.Load(); ts != 0 {
			since = time.Unix(0, ts)
			e.Gauge("ledgerstream_last_commit_timestamp_seconds", "Unix time of the last ledger commit.", float64(ts)/1e9)
		}
	}
	if !since.IsZero() {
		e.Gauge("ledgerstream_last_commit_age_seconds", "Seconds since the last successful ledger commit (since the start before the first).",
			time.Since(since).Seconds())
	}
	if o.deps != nil {
		for _, st := range o.deps.States() {
			up := 0.0
			if st.Up {
				up = 1
			}
			e.Gauge("ledgerstream_dependency_up", "1 while the dependency answers, 0 from its first failure to its next success.",
				up, metrics.Label{Name: "dependency", Value: string(st.Dependency)})
		}
	}
	if o.source != nil {
		e.Gauge("ledgerstream_assigned_partitions", "Partitions this worker owns.", float64(len(o.source.Assigned())))
	}
	in, handOffs := o.group.member()
	member := 0.0
	if in {
		member = 1
	}
	e.Gauge("ledgerstream_group_member", "1 while the worker is a member of its consumer group, 0 while it is out (it gave its partitions up: the catalog or the storage unreachable for longer than the session timeout).", member)
	e.Counter("ledgerstream_handoffs_total", "Times the worker left its consumer group because the catalog or the storage was unreachable for longer than the session timeout.", float64(handOffs))

	o.mu.Lock()
	lags := maps.Clone(o.lags)
	stats := make(map[string]iceberg.TableStats, len(o.tableStats))
	for k, v := range o.tableStats {
		stats[k] = v
	}
	o.mu.Unlock()
	var committed engine.Offsets
	if o.ledger != nil {
		committed = o.ledger.offsets()
	}
	parts := make([]engine.Partition, 0, len(committed)+len(lags))
	for p := range committed {
		parts = append(parts, p)
	}
	for p := range lags {
		if _, ok := committed[p]; !ok {
			parts = append(parts, p)
		}
	}
	slices.SortFunc(parts, func(a, b engine.Partition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	for _, p := range parts {
		ls := []metrics.Label{{Name: "topic", Value: p.Topic}, {Name: "partition", Value: strconv.Itoa(int(p.Partition))}}
		if c, ok := committed[p]; ok {
			e.Gauge("ledgerstream_committed_offset", "Next offset to read per partition, as committed in the ledger.", float64(c), ls...)
		}
		if l, ok := lags[p]; ok {
			e.Gauge("ledgerstream_high_watermark", "End offset per partition (read_committed: last stable offset).", float64(l.End), ls...)
			e.Gauge("ledgerstream_lag", "Records not yet committed to the ledger per partition (from the last stable offset).", float64(l.Lag), ls...)
		}
	}
	names := make([]string, 0, len(stats))
	for k := range stats {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		st := stats[name]
		l := metrics.Label{Name: "table", Value: name}
		e.Gauge("ledgerstream_table_snapshots", "Snapshots in the table's metadata.", float64(st.Snapshots), l)
		e.Gauge("ledgerstream_table_data_files", "Live data files of the table's current snapshot.", float64(st.DataFiles), l)
		e.Gauge("ledgerstream_table_records", "Live rows of the table's current snapshot.", float64(st.Records), l)
		e.Gauge("ledgerstream_table_manifests", "Manifests in the current snapshot's manifest list.", float64(st.Manifests), l)
		e.Gauge("ledgerstream_table_metadata_files", "Metadata files the table's log references.", float64(st.MetadataFiles), l)
	}
}
