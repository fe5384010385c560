package dedup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// Scoped is the transaction id index of `run --index-scope partition` (docs/design.md
// §4.6): one Index per Kafka partition the worker reads, each over a view of the ledger
// that passes only that partition's rows, so that a worker indexes the ids of its own
// partitions and not the whole pipeline's. It is valid only when producers key every
// message by its transaction id (the engine checks each record's key: see
// engine.ScopedIndex). A partition's Index keeps, as its synced snapshot, the partition's
// watermark: gaining the partition again syncs it from there.
type Scoped struct {
	base string // the worker's index path; a partition's is base~<topic>-<partition>
	l    Ledger
	opts Options

	mu      sync.Mutex
	parts   map[engine.Partition]*Index
	order   []engine.Partition // parts' keys, sorted: lookups ask them in this order
	head    engine.TableState  // the state every partition's index is synced to
	hasHead bool
	dropped Stats // figures of the partitions' indexes closed by Keep
	scanned int64 // ledger rows read to find the covered partitions' rows
	skipped int64 // snapshots not read: their summaries moved other partitions only
	cache   readCache
	hist    historyCache
	lock    *os.File
	closed  bool
}

var _ engine.ScopedIndex = (*Scoped)(nil)

// OpenScoped returns the partition-scoped index of the worker whose global index would be
// at base. No partition is covered until the engine asks (Cover). It is locked, as Open's
// index is: a second worker on the same files fails here, at start, with ErrLocked.
func OpenScoped(base string, l Ledger, opts Options) (*Scoped, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return nil, fmt.Errorf("dedup: open %s: %w", base, err)
	}
	lock, err := lockDir(base+"~scope.lock", opts.LockTimeout)
	if errors.Is(err, errLockTimeout) {
		return nil, fmt.Errorf("%w: %s (give each worker its own --worker-id or --index-dir)", ErrLocked, base)
	}
	if err != nil {
		return nil, fmt.Errorf("dedup: open %s: %w", base, err)
	}
	return &Scoped{base: base, l: l, opts: opts, lock: lock, parts: map[engine.Partition]*Index{}}, nil
}

// PartitionPath is the index directory of partition p under a worker's base path.
func PartitionPath(base string, p engine.Partition) string {
	return base + "~" + clean(p.Topic) + "-" + strconv.Itoa(int(p.Partition))
}

// Cover makes the index hold p's ids up to the snapshot the other partitions are synced
// to: it opens p's index and syncs it from its watermark (the snapshots committed since,
// p's rows only), or from a full scan filtered to p when it has none or it left main's
// history.
func (s *Scoped) Cover(ctx context.Context, p engine.Partition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("dedup: the partition-scoped index is closed")
	}
	if _, ok := s.parts[p]; ok {
		return nil
	}
	path := PartitionPath(s.base, p)
	x, err := Open(path, &partitionView{s: s, p: p}, s.opts)
	if err != nil {
		return fmt.Errorf("dedup: cover partition %s: %w", p, err)
	}
	x.closeMsg = "transaction id index of a partition closed"
	if s.hasHead {
		before := x.Synced()
		if err := x.Sync(ctx, s.head); err != nil {
			_ = x.Close()
			return fmt.Errorf("dedup: cover partition %s: back-fill from the ledger: %w", p, err)
		}
		s.opts.Logger.Info("transaction id index: partition covered", "partition", p.String(),
			"watermark", before, "synced", s.head.SnapshotID, "ids", x.Stats().Rows)
	}
	s.parts[p] = x
	s.order = append(s.order, p)
	engine.SortPartitions(s.order)
	return nil
}

// Keep drops the partitions not in owned: their indexes are closed with their watermark,
// and their rows are no longer synced. A partition dropped and met again is covered again.
func (s *Scoped) Keep(owned []engine.Partition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, p := range slices.Clone(s.order) {
		if slices.Contains(owned, p) {
			continue
		}
		x := s.parts[p]
		s.addDropped(x.Stats())
		if err := x.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(s.parts, p)
		s.order = slices.DeleteFunc(s.order, func(q engine.Partition) bool { return q == p })
		s.opts.Logger.Info("transaction id index: partition dropped from the scope", "partition", p.String())
	}
	return errors.Join(errs...)
}

func (s *Scoped) addDropped(st Stats) {
	st.Rows, st.BloomBytes, st.Runs = 0, 0, 0 // no longer held
	s.dropped.add(st)
}

// add sums o's counters into st.
func (st *Stats) add(o Stats) {
	st.Rows += o.Rows
	st.RowsRead += o.RowsRead
	st.RowsAdded += o.RowsAdded
	st.Rebuilds += o.Rebuilds
	st.Lookups += o.Lookups
	st.DiskReads += o.DiskReads
	st.Conflicts += o.Conflicts
	st.BloomBytes += o.BloomBytes
	st.Runs += o.Runs
}

// Sync brings every covered partition's index up to date with the ledger as of st.
func (s *Scoped) Sync(ctx context.Context, st engine.TableState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cacheHistory()()
	for _, p := range s.order {
		if err := s.parts[p].Sync(ctx, st); err != nil {
			return err
		}
	}
	s.head, s.hasHead = st, true
	return nil
}

// Lookup asks every covered partition's index (their Bloom filters first). With producers
// keyed by the id, only the record's own partition can know the id; asking all is a
// superset of that and costs a filter probe each.
func (s *Scoped) Lookup(id string) (engine.Owner, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.order {
		o, ok, err := s.parts[p].Lookup(id)
		if err != nil || ok {
			return o, ok, err
		}
	}
	return engine.Owner{}, false, nil
}

// Add records a committed batch: each covered partition's index gets its rows (possibly
// none, so that its watermark moves past st without reading st back). Rows of partitions
// not covered are left to the back-fill that covers them.
func (s *Scoped) Add(rows []ledger.Row, st engine.TableState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cacheHistory()()
	by := make(map[engine.Partition][]ledger.Row, len(s.parts))
	for i := range rows {
		p := engine.Partition{Topic: rows[i].SourceTopic, Partition: rows[i].SourcePartition}
		if _, ok := s.parts[p]; ok {
			by[p] = append(by[p], rows[i])
		}
	}
	for _, p := range s.order {
		x := s.parts[p]
		if len(by[p]) == 0 {
			// No rows of p: its watermark moves in memory, without a write per partition
			// and commit (a worker owning many partitions commits rows of few at a time).
			if ok, err := x.advance(st); err != nil || ok {
				if err != nil {
					return err
				}
				continue
			}
		}
		if err := x.Add(by[p], st); err != nil {
			return err
		}
	}
	s.head, s.hasHead = st, true
	return nil
}

// Covered returns the partitions the index holds now, sorted.
func (s *Scoped) Covered() []engine.Partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// ScopedStats are the figures of a partition-scoped index.
type ScopedStats struct {
	Stats
	// Scanned are the ledger rows read to find the covered partitions' rows (RowsRead
	// counts those kept): the ledger is not partitioned, so other partitions' rows in the
	// same files are read and passed over.
	Scanned int64
	// Skipped are the snapshots not read at all: their summaries say they moved other
	// partitions only.
	Skipped    int64
	Partitions int // covered now
}

// Stats returns the figures of every partition's index since OpenScoped, dropped ones
// included.
func (s *Scoped) Stats() ScopedStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statsLocked()
}

func (s *Scoped) statsLocked() ScopedStats {
	out := ScopedStats{Stats: s.dropped, Scanned: s.scanned, Skipped: s.skipped, Partitions: len(s.parts)}
	for _, x := range s.parts {
		out.add(x.Stats())
	}
	return out
}

// Close closes every partition's index (each keeps its watermark) and logs the worker's
// figures.
func (s *Scoped) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	st := s.statsLocked()
	var errs []error
	for _, p := range s.order {
		if err := s.parts[p].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.parts, s.order = nil, nil
	if err := unlockDir(s.lock); err != nil {
		errs = append(errs, err)
	}
	s.opts.Logger.Info("transaction id index closed", "path", s.base, "scope", "partition", "partitions", st.Partitions,
		"ids", st.Rows, "rows_added", st.RowsAdded, "rows_read", st.RowsRead, "rows_scanned", st.Scanned, "snapshots_skipped", st.Skipped,
		"rebuilds", st.Rebuilds, "lookups", st.Lookups, "disk_reads", st.DiskReads)
	return errors.Join(errs...)
}

// readCache keeps, of the last ledger read, the rows of the covered partitions that the
// partition reading did not need: the next partition's index, syncing over the same
// snapshots, takes its rows from here instead of reading the same files again.
type readCache struct {
	key  string
	for_ map[engine.Partition]bool // partitions the cache collected (complete for each)
	rows map[engine.Partition][]cachedRow
}

type cachedRow struct {
	id string
	o  engine.Owner
}

// maxCached bounds the rows a cache holds (about 150 bytes each); a larger read is not
// cached, and each partition reads it on its own.
const maxCached = 1 << 18

// partitionView is the ledger as a partition's index sees it: only that partition's rows.
type partitionView struct {
	s *Scoped // its mu is held by the caller (every path into the view is under it)
	p engine.Partition
}

func (v *partitionView) History(ctx context.Context, head int64) ([]int64, bool, error) {
	h := &v.s.hist
	if h.on && h.head == head {
		return h.ids, h.complete, nil
	}
	ids, complete, err := v.s.l.History(ctx, head)
	if err == nil && h.on {
		h.head, h.ids, h.complete = head, ids, complete
	}
	return ids, complete, err
}

// historyCache keeps, during one Sync or Add of every covered partition, the history they
// all ask for (a walk of the table's snapshots each): not across calls, since expiry
// shortens it.
type historyCache struct {
	on       bool
	head     int64
	ids      []int64
	complete bool
}

// cacheHistory turns the history cache on for one call over the covered partitions; the
// returned func turns it off.
func (s *Scoped) cacheHistory() func() {
	s.hist = historyCache{on: true}
	return func() { s.hist = historyCache{} }
}

// PartitionLedger is a Ledger that can tell, from the snapshot summaries alone, which
// source partitions each snapshot may have added rows of (iceberg.LedgerIDs): the
// partition-scoped index then reads only the snapshots that moved its partitions. A
// snapshot absent from the result is read.
type PartitionLedger interface {
	Partitions(ctx context.Context, head int64, snapshots []int64) (map[int64][]engine.Partition, error)
}

func (v *partitionView) ReadAdded(ctx context.Context, head int64, snapshots []int64, fn func(string, engine.Owner) error) error {
	snapshots = v.moving(ctx, head, snapshots)
	if len(snapshots) == 0 {
		return nil
	}
	key := fmt.Sprint("added ", head, snapshots)
	return v.read(key, fn, func(f func(string, engine.Owner) error) error { return v.s.l.ReadAdded(ctx, head, snapshots, f) })
}

// moving keeps, of snapshots, those that may hold rows of the worker's scope (the covered
// partitions and v's): the others' summaries say they moved other partitions only. It is
// the same list for every covered partition, so that they share one read (readCache).
func (v *partitionView) moving(ctx context.Context, head int64, snapshots []int64) []int64 {
	pl, ok := v.s.l.(PartitionLedger)
	if !ok || len(snapshots) == 0 {
		return snapshots
	}
	moved, err := pl.Partitions(ctx, head, snapshots)
	if err != nil {
		return snapshots // the read that follows meets the error again, or reads it all
	}
	keep := snapshots[:0:0]
	for _, id := range snapshots {
		ps, known := moved[id]
		if !known || slices.ContainsFunc(ps, func(p engine.Partition) bool {
			return p == v.p || v.s.parts[p] != nil
		}) {
			keep = append(keep, id)
			continue
		}
		v.s.skipped++
	}
	return keep
}

func (v *partitionView) ReadAll(ctx context.Context, head int64, fn func(string, engine.Owner) error) error {
	return v.read(fmt.Sprint("all ", head), fn, func(f func(string, engine.Owner) error) error { return v.s.l.ReadAll(ctx, head, f) })
}

// read passes fn the rows of v's partition: from the cache when the last read was the same
// one and collected them, else from the ledger, collecting the other covered partitions'
// rows for them on the way.
func (v *partitionView) read(key string, fn func(string, engine.Owner) error, ledgerRead func(func(string, engine.Owner) error) error) error {
	s := v.s
	c := &s.cache
	if c.key == key && c.for_[v.p] {
		rows := c.rows[v.p]
		delete(c.for_, v.p)
		delete(c.rows, v.p)
		for _, r := range rows {
			if err := fn(r.id, r.o); err != nil {
				return err
			}
		}
		return nil
	}
	*c = readCache{key: key, for_: map[engine.Partition]bool{}, rows: map[engine.Partition][]cachedRow{}}
	for _, q := range s.order {
		if q != v.p {
			c.for_[q] = true
		}
	}
	cached := 0
	err := ledgerRead(func(id string, o engine.Owner) error {
		s.scanned++
		if o.Partition.Partition == v.p.Partition && o.Topic == v.p.Topic {
			return fn(id, o)
		}
		if c.for_ == nil || !c.for_[o.Partition] {
			return nil
		}
		if cached++; cached > maxCached {
			c.for_, c.rows = nil, nil // too large to keep: each partition reads on its own
			return nil
		}
		o.Topic, o.Hash = strings.Clone(o.Topic), strings.Clone(o.Hash)
		c.rows[o.Partition] = append(c.rows[o.Partition], cachedRow{id: strings.Clone(id), o: o})
		return nil
	})
	if err != nil {
		*c = readCache{}
	}
	return err
}
