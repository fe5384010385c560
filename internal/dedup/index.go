// Package dedup is the index of the transaction ids accepted into the ledger (docs/design.md §4.6): for every id, the ledger row that owns it (source
// position and transaction hash), so that the engine can refuse a second message with the
// same id as a duplicate or a conflicting duplicate, and still recognise a replay of the
// owning message itself.
//
// The ledger is the truth; the index is derived from it and can always be rebuilt from it.
// It lives in one directory per (table, pipeline, worker) with bounded memory: the ids are
// on disk as sorted runs (store.go), and only a blocked Bloom filter (about 2.5 bytes per
// id) and the runs' block indexes (about one key per 4 KiB of entries) sit in memory, so
// that the common lookup, a new id, never touches the disk. The directory records the
// ledger snapshot it is synced to; Sync then reads only the rows of the snapshots committed
// since (the data files they added, five columns of them), and rebuilds from a full scan
// only when that snapshot left main's history (expired, rolled back, or the table was
// replaced).
package dedup

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// Ledger is what the index reads of the ledger table (iceberg.LedgerIDs in production).
// The strings that fn receives may alias the reader's buffers: valid only during the call.
type Ledger interface {
	// History returns the snapshot ids of main's history ending at head, newest first, as
	// far back as the table keeps it, and whether it reaches the table's first snapshot
	// (false when older snapshots were expired).
	History(ctx context.Context, head int64) (ids []int64, complete bool, err error)
	// ReadAdded calls fn for every row that the given snapshots of head's history added.
	ReadAdded(ctx context.Context, head int64, snapshots []int64, fn func(id string, o engine.Owner) error) error
	// ReadAll calls fn for every row of the table as of head.
	ReadAll(ctx context.Context, head int64, fn func(id string, o engine.Owner) error) error
}

// ErrLocked reports that another process holds the index.
var ErrLocked = errors.New("dedup: the index is in use by another process")

// errLockTimeout is lockDir's: the lock was still held when the timeout passed.
var errLockTimeout = errors.New("lock timeout")

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the file. Zero
	// means 100ms: a worker that finds its file taken is misconfigured, not early.
	LockTimeout time.Duration
	// Logger receives rebuild and sync notices. Nil means slog.Default().
	Logger *slog.Logger
}

// Stats count the index's work since Open.
type Stats struct {
	Rows       int64 // ids in the index
	RowsRead   int64 // ledger rows read by Sync or Rebuild: other workers' commits, replays after a crash
	RowsAdded  int64 // rows recorded by Add: this worker's own commits
	Rebuilds   int64 // full rebuilds
	Lookups    int64
	DiskReads  int64 // lookups that passed the Bloom filter and read the file
	Conflicts  int64 // ids met again with another owner (kept the first)
	BloomBytes int64
	Runs       int64 // sorted run files on disk
}

// Index is the on-disk transaction id index. It implements engine.Index and is safe for
// concurrent use (the engine calls it under its own lock; tools may not).
type Index struct {
	path   string
	st     *store
	ledger Ledger
	log    *slog.Logger

	mu      sync.Mutex
	synced  int64   // every row of this snapshot and its ancestors is in the index
	applied []int64 // later snapshots whose rows Add recorded (skipped by the next Sync)
	partial []int64 // later snapshots whose rows a Sync or rebuild wrote only in part
	count   int64
	topics  map[string]uint64
	names   []string // topic by number
	filter  *bloom
	stats   Stats
	// pending is the write that Add started in the background, if any: Lookup answers
	// from its entries until it is finished, and every other call finishes it first.
	pending *pendingWrite
	broken  error // a background write failed: every call returns it
	closed  bool
	// beforeWrite, in tests, runs in Add's background write before it starts.
	beforeWrite func()
	// closeMsg is the message Close logs its figures with ("" means the default): a
	// partition's index under Scoped logs apart from the worker's total.
	closeMsg string
}

// pendingWrite is a batch that Add writes to the file in the background.
type pendingWrite struct {
	b   *batch
	ids map[string][]byte // id -> the value of its first entry (both in b's arena)
	// filter holds ids' keys, so that a lookup of an id the write does not hold (nearly
	// all) skips the map: a miss in a map of 100,000 ids cost a cache miss or two per
	// record (issue 16). It hashes as the index's filter did when Add made it.
	filter  *bloom
	applied []int64 // x.applied once the write is done
	synced  int64   // x.synced once the write is done
	done    chan struct{}
	res     writeResult // set before done is closed
}

var _ engine.Index = (*Index)(nil)

// FileName is the index file of a (table, pipeline, worker) under an index directory:
// characters outside [A-Za-z0-9._-] become '_'. worker may be empty.
func FileName(table, pipeline, worker string) string {
	name := clean(table) + "~" + clean(pipeline)
	if worker != "" {
		name += "~" + clean(worker)
	}
	return name + ".idx"
}

// clean replaces the characters of s outside [A-Za-z0-9._-] with '_'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// Open opens (creating it and its parent if needed) the index directory at path, reading
// the ledger through l. The index is locked: a second Open of it, in any process, fails
// with ErrLocked until Close. An index that cannot be read as written (torn by a power
// loss, a missing run) is moved aside to path+".corrupt" and rebuilt: the ledger holds the
// truth. A file at path, the single-file index of earlier versions, is deleted and rebuilt
// the same way.
func Open(path string, l Ledger, opts Options) (*Index, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("dedup: open %s: %w", path, err)
	}
	if info, err := os.Stat(path); err == nil && !info.IsDir() {
		opts.Logger.Info("transaction id index: replacing the single-file index of an earlier version; rebuilding it from the ledger", "path", path)
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("dedup: open %s: remove the earlier version's index file: %w", path, err)
		}
		os.Remove(path + ".bloom")
	}
	st, err := openStore(path, opts.LockTimeout, opts.Logger)
	if errors.Is(err, errCorruptStore) {
		opts.Logger.Warn("transaction id index unreadable; moving it aside and rebuilding from the ledger", "path", path, "error", err)
		os.RemoveAll(path + ".corrupt")
		if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
			return nil, fmt.Errorf("dedup: open %s: %w (and moving it aside: %w)", path, err, rerr)
		}
		os.Remove(path + ".bloom")
		st, err = openStore(path, opts.LockTimeout, opts.Logger)
	}
	if errors.Is(err, errLockTimeout) {
		return nil, fmt.Errorf("%w: %s (give each worker its own --worker-id or --index-dir)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("dedup: open %s: %w", path, err)
	}
	x := &Index{path: path, st: st, ledger: l, log: opts.Logger, topics: map[string]uint64{}}
	if err := x.load(); err != nil {
		st.close()
		return nil, fmt.Errorf("dedup: open %s: %w", path, err)
	}
	return x, nil
}

// load takes the recorded state and the Bloom filter (saved, or built from the ids on disk).
func (x *Index) load() error {
	st := x.st.fileStateNow()
	x.synced, x.count = st.Synced, st.Count
	x.applied, x.partial = st.Applied, st.Partial
	x.names = st.Topics
	for i, name := range x.names {
		x.topics[name] = uint64(i)
	}
	// A filter saved by a clean Close, if it matches, saves a scan of every key. It is
	// removed at once: from the first write on it would be stale, and after a crash the
	// scan is what rebuilds it.
	f, err := loadBloom(x.bloomPath(), x.count, x.synced)
	os.Remove(x.bloomPath())
	if err == nil {
		x.filter = f
		x.stats.BloomBytes = int64(f.bytes())
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		x.log.Info("saved Bloom filter of the transaction id index not used; rebuilding it", "path", x.path, "reason", err)
	}
	return x.rebuildFilter()
}

// bloomPath is where Close saves the Bloom filter.
func (x *Index) bloomPath() string { return x.path + ".bloom" }

// rebuildFilter sizes a new Bloom filter for twice the ids on disk and fills it with a
// scan of the keys (sequential reads of the runs).
func (x *Index) rebuildFilter() error {
	f := newBloom(int(2 * x.count))
	err := x.st.forEachKey(func(k []byte) { f.add(f.hash(k)) })
	if err != nil {
		return fmt.Errorf("build the Bloom filter: %w", err)
	}
	x.filter = f
	x.stats.BloomBytes = int64(f.bytes())
	return nil
}

// Close saves the Bloom filter beside the index (so that the next Open need not scan every
// id), closes the files and releases the lock.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	if err := x.finishLocked(); err != nil {
		_ = x.st.close() // the manifest does not record the batch: Sync reads it back
		return fmt.Errorf("dedup: close %s: %w", x.path, err)
	}
	if err := x.saveStateLocked(); err != nil {
		_ = x.st.close()
		return fmt.Errorf("dedup: close %s: record the sync state: %w", x.path, err)
	}
	s := x.stats
	x.log.Info(cmp.Or(x.closeMsg, "transaction id index closed"), "path", x.path, "ids", x.count, "rows_added", s.RowsAdded,
		"rows_read", s.RowsRead, "rebuilds", s.Rebuilds, "lookups", s.Lookups, "disk_reads", s.DiskReads, "merges", x.st.mergeCount())
	serr := x.filter.save(x.bloomPath(), x.count, x.synced)
	if err := x.st.close(); err != nil {
		return fmt.Errorf("dedup: close %s: %w", x.path, err)
	}
	if serr != nil {
		return fmt.Errorf("dedup: close %s: save the Bloom filter: %w", x.path, serr)
	}
	return nil
}

// Path is the index directory.
func (x *Index) Path() string { return x.path }

// Synced is the ledger snapshot the index is known complete for (0: none).
func (x *Index) Synced() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	_ = x.finishLocked() // an error is returned by the next call that can return one
	return x.synced
}

// Stats returns the counters.
func (x *Index) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	_ = x.finishLocked() // an error is returned by the next call that can return one
	s := x.stats
	s.Rows = x.count
	x.st.mu.RLock()
	s.Runs = int64(len(x.st.runs))
	x.st.mu.RUnlock()
	return s
}

// Lookup returns the owner of an accepted transaction id. Most absent ids are answered by
// the Bloom filter alone.
func (x *Index) Lookup(id string) (engine.Owner, bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.stats.Lookups++
	if p := x.pending; p != nil {
		select {
		case <-p.done:
			if err := x.finishLocked(); err != nil {
				return engine.Owner{}, false, err
			}
		default:
		}
	}
	h := x.filter.hashString(id)
	if !x.filter.mayContain(h) {
		return x.lookupPending(id, h)
	}
	x.stats.DiskReads++
	v, found, err := x.st.get([]byte(id))
	if err != nil {
		return engine.Owner{}, false, fmt.Errorf("dedup: look up %q in %s: %w", id, x.path, err)
	}
	if !found {
		return x.lookupPending(id, h)
	}
	o, err := x.decodeOwner(v)
	if err != nil {
		return engine.Owner{}, false, fmt.Errorf("dedup: look up %q in %s: %w", id, x.path, err)
	}
	return o, true, nil
}

// lookupPending answers from the write Add left running, if any. The runs are asked first:
// an id already there keeps its owner, as the write would keep it. h is id's hash by the
// index's filter.
func (x *Index) lookupPending(id string, h uint64) (engine.Owner, bool, error) {
	p := x.pending
	if p == nil {
		return engine.Owner{}, false, nil
	}
	if p.filter.seed != x.filter.seed {
		h = p.filter.hashString(id) // the filter was rebuilt since (it is not, while p runs)
	}
	if !p.filter.mayContain(h) {
		return engine.Owner{}, false, nil
	}
	v, ok := p.ids[id]
	if !ok {
		return engine.Owner{}, false, nil
	}
	o, err := decodeOwner(v, slices.Concat(x.names, p.b.topics))
	if err != nil {
		return engine.Owner{}, false, fmt.Errorf("dedup: look up %q: %w", id, err)
	}
	return o, true, nil
}

// Add records the rows of a batch that the ledger committed as st. st's parent need not be
// the synced snapshot (another worker may have committed in between): st is remembered as
// applied, and the next Sync reads whatever else is missing.
//
// The write to disk goes on in the background, off the engine's path: Lookup sees the rows
// at once, every other call waits for the write, and its error, if any, is returned by the
// next call. A crash before the write is done loses nothing: the manifest does not record
// st as applied, so Sync reads its rows back from the ledger.
func (x *Index) Add(rows []ledger.Row, st engine.TableState) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.finishLocked(); err != nil {
		return err
	}
	x.stats.RowsAdded += int64(len(rows))
	b := x.newBatch(len(rows))
	for i := range rows {
		r := &rows[i]
		if err := b.add(r.TransactionID, engine.Owner{Partition: engine.Partition{Topic: r.SourceTopic, Partition: r.SourcePartition},
			Offset: r.SourceOffset, Hash: r.TransactionHash}); err != nil {
			return err
		}
	}
	applied := x.applied
	if st.SnapshotID != 0 && st.SnapshotID != x.synced && !slices.Contains(applied, st.SnapshotID) {
		applied = append(slices.Clone(applied), st.SnapshotID)
	}
	// When the runs will hold every snapshot up to st (the usual case: st was committed on
	// top of what the index had), the write records st as synced, and the engine's Sync to
	// st before its next batch has nothing to read and need not wait for the write.
	synced := x.synced
	if len(x.partial) == 0 && x.covers(st.SnapshotID, applied) {
		synced, applied = st.SnapshotID, nil
	}
	meta := func(m *fileState) { m.Applied = applied }
	if synced != x.synced {
		meta = x.setSynced(synced)
	}
	p := &pendingWrite{b: b, ids: make(map[string][]byte, len(b.entries)), filter: newBloomSeeded(len(b.entries), x.filter.seed),
		applied: applied, synced: synced, done: make(chan struct{})}
	for i := len(b.entries) - 1; i >= 0; i-- { // backwards: of an id met twice, its first entry stays
		e := b.entries[i]
		p.ids[unsafeString(e.key)] = e.val
		p.filter.add(p.filter.hash(e.key))
	}
	x.pending = p
	go func() { // owned by x: every other method, Close included, waits for it
		defer close(p.done)
		if x.beforeWrite != nil {
			x.beforeWrite()
		}
		sortEntries(b)
		p.res = x.apply(b, meta)
		if p.res.err != nil {
			p.res.err = fmt.Errorf("dedup: add %d ids of snapshot %d: %w", len(rows), st.SnapshotID, p.res.err)
		}
	}()
	return nil
}

// advance is Add for a snapshot st that added none of the rows the index holds (under
// Scoped, a commit without rows of this partition): the in-memory state moves as Add's
// would, without a write to disk. The manifest keeps claiming less (an older synced
// snapshot, fewer applied ones), which stays true: after a crash, Sync reads those
// snapshots back and finds nothing to add; Close records the state. It reports false,
// doing nothing, while a write is in flight (its end would overwrite the state): call Add.
func (x *Index) advance(st engine.TableState) (bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.broken != nil {
		return false, x.broken
	}
	if x.pending != nil {
		return false, nil
	}
	if st.SnapshotID == 0 || st.SnapshotID == x.synced {
		return true, nil
	}
	applied := x.applied
	if !slices.Contains(applied, st.SnapshotID) {
		applied = append(slices.Clone(applied), st.SnapshotID)
	}
	if len(x.partial) == 0 && x.covers(st.SnapshotID, applied) {
		x.synced, x.applied = st.SnapshotID, nil
	} else {
		x.applied = applied
	}
	return true, nil
}

// saveStateLocked writes the in-memory sync state to the manifest when advance moved it
// past what the manifest says.
func (x *Index) saveStateLocked() error {
	st := x.st.fileStateNow()
	if st.Synced == x.synced && slices.Equal(st.Applied, x.applied) && slices.Equal(st.Partial, x.partial) {
		return nil
	}
	st.Synced, st.Applied, st.Partial = x.synced, slices.Clone(x.applied), slices.Clone(x.partial)
	return x.st.write(nil, nil, st)
}

// finishLocked waits for the write Add left running and brings the in-memory state
// (count, Bloom filter, applied snapshots) in line with it.
func (x *Index) finishLocked() error {
	if x.broken != nil {
		return x.broken
	}
	p := x.pending
	if p == nil {
		return nil
	}
	<-p.done
	x.pending = nil
	if err := x.finish(p.b, p.res); err != nil {
		// The disk and the memory may now disagree on what the batch wrote: refuse
		// everything until the index is opened again (Sync then reads the batch back).
		x.broken = err
		return err
	}
	if p.synced != x.synced {
		x.synced, x.partial = p.synced, nil
	}
	x.applied = p.applied
	return nil
}

// covers says whether every snapshot of head's history since the synced one is in applied,
// so that the runs hold all of head's rows once applied is written. History is in memory
// right after a commit (the sink's table); an error just means no.
func (x *Index) covers(head int64, applied []int64) bool {
	if head == 0 {
		return false
	}
	hist, complete, err := x.ledger.History(context.Background(), head)
	if err != nil {
		return false
	}
	at := slices.Index(hist, x.synced)
	if x.synced == 0 && complete {
		at = len(hist)
	}
	if at < 0 {
		return false
	}
	for _, id := range hist[:at] {
		if !slices.Contains(applied, id) {
			return false
		}
	}
	return true
}

// Sync brings the index up to date with the ledger as of st: it reads the rows that the
// snapshots committed since the synced one added (except those Add already recorded), or
// rebuilds from a full scan when the synced snapshot is no longer in main's history.
func (x *Index) Sync(ctx context.Context, st engine.TableState) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if p := x.pending; p != nil && x.broken == nil && p.synced == st.SnapshotID && st.SnapshotID != 0 {
		// The write in flight brings the file to st; until it is done, Lookup answers
		// from it (and a failure of it is returned by the next call that waits).
		return nil
	}
	if err := x.finishLocked(); err != nil {
		return err
	}
	head := st.SnapshotID
	if head == x.synced {
		return nil
	}
	if head == 0 {
		// The ledger has no snapshot (a new table replaced the one we indexed).
		return x.rebuildLocked(ctx, 0)
	}
	hist, complete, err := x.ledger.History(ctx, head)
	if err != nil {
		return fmt.Errorf("dedup: sync to snapshot %d: %w", head, err)
	}
	at := slices.Index(hist, x.synced)
	if x.synced == 0 && complete {
		at = len(hist) // nothing synced yet: every snapshot is new
	}
	// Rows already written for snapshots that are no longer in the history (main was
	// rolled back since) must go: only a rebuild removes them.
	for _, id := range slices.Concat(x.applied, x.partial) {
		if at >= 0 && !slices.Contains(hist[:at], id) {
			x.log.Info("transaction id index holds rows of a snapshot no longer in the ledger's history", "snapshot", id)
			at = -1
		}
	}
	if at < 0 {
		x.log.Info("transaction id index: synced snapshot no longer in the ledger's history; rebuilding from a full scan",
			"path", x.path, "synced", x.synced, "head", head)
		return x.rebuildLocked(ctx, head)
	}
	// Oldest first, so that an id met twice keeps the owner the ledger accepted first.
	var missing []int64
	for i := at - 1; i >= 0; i-- {
		if id := hist[i]; !slices.Contains(x.applied, id) {
			missing = append(missing, id)
		}
	}
	started := time.Now()
	b := x.newBatch(0)
	if err := x.ledger.ReadAdded(ctx, head, missing, x.chunked(b, missing)); err != nil {
		return fmt.Errorf("dedup: sync to snapshot %d: %w", head, err)
	}
	read := b.n
	if err := x.write(b, x.setSynced(head)); err != nil {
		return fmt.Errorf("dedup: sync to snapshot %d: %w", head, err)
	}
	x.synced, x.applied, x.partial = head, nil, nil
	if len(missing) > 0 {
		x.log.Debug("transaction id index synced", "snapshots", len(missing), "rows", read,
			"took", time.Since(started).Round(time.Millisecond))
	}
	return nil
}

// setSynced is the state update of a completed sync.
func (x *Index) setSynced(head int64) func(*fileState) {
	return func(m *fileState) { m.Synced, m.Partial, m.Applied = head, nil, nil }
}

// Rebuild throws the index away and reads the whole ledger as of st again.
func (x *Index) Rebuild(ctx context.Context, st engine.TableState) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.finishLocked(); err != nil {
		return err
	}
	return x.rebuildLocked(ctx, st.SnapshotID)
}

// rebuildChunk is how many ids a rebuild or a long sync sorts and writes per run: it
// bounds their memory (about 100 bytes an id).
const rebuildChunk = 1 << 18

// chunked returns b.add writing b out every rebuildChunk entries. Those writes record the
// snapshots being read as partial, not synced (only the last write, the caller's, records
// what was synced), so that a crash in between is settled by the next Sync.
func (x *Index) chunked(b *batch, reading []int64) func(string, engine.Owner) error {
	return func(id string, o engine.Owner) error {
		x.stats.RowsRead++
		if err := b.add(id, o); err != nil {
			return err
		}
		if len(b.entries) < rebuildChunk {
			return nil
		}
		partial := slices.Clone(x.partial)
		for _, id := range reading {
			if !slices.Contains(partial, id) {
				partial = append(partial, id)
			}
		}
		if err := x.write(b, func(m *fileState) { m.Partial = partial }); err != nil {
			return err
		}
		x.partial = partial
		b.entries, b.arena = b.entries[:0], nil
		return nil
	}
}

func (x *Index) rebuildLocked(ctx context.Context, head int64) error {
	started := time.Now()
	x.stats.Rebuilds++
	// One manifest update empties the index and forgets the sync state, so that a crash in
	// the middle of the rebuild leaves an index that claims nothing (synced 0).
	if err := x.st.reset(fileState{Version: storeVersion, Topics: x.names}); err != nil {
		return fmt.Errorf("dedup: rebuild %s: %w", x.path, err)
	}
	x.synced, x.applied, x.partial, x.count = 0, nil, nil, 0
	x.filter = newBloom(0)
	b := x.newBatch(rebuildChunk)
	if err := x.ledger.ReadAll(ctx, head, x.chunked(b, []int64{head})); err != nil {
		return fmt.Errorf("dedup: rebuild from snapshot %d: %w", head, err)
	}
	if err := x.write(b, x.setSynced(head)); err != nil {
		return fmt.Errorf("dedup: rebuild: %w", err)
	}
	x.synced = head
	if x.filter.full() {
		if err := x.rebuildFilter(); err != nil {
			return err
		}
	}
	x.log.Info("transaction id index rebuilt from the ledger", "path", x.path, "snapshot", head,
		"ids", x.count, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// batch is a set of (id, owner) entries to write in one transaction. Keys and values live
// in an arena of large chunks: one allocation per chunk rather than two per entry.
type batch struct {
	x       *Index
	entries []entry
	n       int64 // entries added, across flushes
	topics  []string
	arena   []byte
}

type entry struct {
	key, val []byte
}

const arenaChunk = 1 << 20

func (x *Index) newBatch(n int) *batch { return &batch{x: x, entries: make([]entry, 0, n)} }

// alloc returns n bytes of the arena (a fresh chunk when the current one is full; the old
// one lives on through the entries that point into it).
func (b *batch) alloc(n int) []byte {
	if len(b.arena)+n > cap(b.arena) {
		b.arena = make([]byte, 0, max(arenaChunk, n))
	}
	start := len(b.arena)
	b.arena = b.arena[:start+n]
	return b.arena[start : start+n : start+n]
}

// add encodes one entry, copying id and the owner's strings (they may alias a scan buffer).
func (b *batch) add(id string, o engine.Owner) error {
	if id == "" {
		return errors.New("dedup: empty transaction id")
	}
	b.n++
	t, ok := b.x.topics[o.Topic]
	if !ok {
		if i := slices.Index(b.topics, o.Topic); i >= 0 {
			t = uint64(len(b.x.names) + i)
		} else {
			t = uint64(len(b.x.names) + len(b.topics))
			b.topics = append(b.topics, strings.Clone(o.Topic))
		}
	}
	key := b.alloc(len(id))
	copy(key, id)
	val := appendOwner(b.alloc(maxOwnerLen(o))[:0], t, o)
	b.entries = append(b.entries, entry{key: key, val: val})
	return nil
}

// write puts the batch's entries, in key order, keeping an id's first owner, and applies
// meta (when not nil) in the same manifest update. The in-memory state follows only once
// the update is on disk.
func (x *Index) write(b *batch, meta func(*fileState)) error {
	sortEntries(b)
	return x.finish(b, x.apply(b, meta))
}

// sortEntries sorts a batch by key. Stable, so that of one id met twice (a ledger that
// already holds a duplicate) the first row read stays its owner.
func sortEntries(b *batch) {
	slices.SortStableFunc(b.entries, func(a, c entry) int { return bytes.Compare(a.key, c.key) })
}

// writeResult is what one write transaction did.
type writeResult struct {
	added, conflicts int64
	newKeys          [][]byte
	err              error
}

// apply writes a sorted batch as one run and one manifest update. It reads the filter,
// which only finish changes, and touches no in-memory state of x: Add runs it in the
// background.
func (x *Index) apply(b *batch, meta func(*fileState)) writeResult {
	var conflicts int64
	keys := make([][]byte, 0, len(b.entries))
	vals := make([][]byte, 0, len(b.entries))
	g := x.st.getter()
	var prev entry
	for _, e := range b.entries {
		if prev.key != nil && bytes.Equal(prev.key, e.key) {
			if !bytes.Equal(e.val, prev.val) {
				conflicts++
			}
			continue // the same id twice in one batch: keep the first
		}
		prev = e
		// The filter has no false negatives: for an id it has never seen, the lookup is
		// skipped.
		if x.filter.mayContain(x.filter.hash(e.key)) {
			old, ok, err := g.get(e.key)
			if err != nil {
				g.done()
				return writeResult{err: err}
			}
			if ok {
				if !bytes.Equal(old, e.val) {
					conflicts++
				}
				continue
			}
		}
		keys, vals = append(keys, e.key), append(vals, e.val)
	}
	g.done()
	st := x.st.fileStateNow()
	st.Count += int64(len(keys))
	st.Topics = append(st.Topics, b.topics...)
	if meta != nil {
		meta(&st)
	}
	if err := x.st.write(keys, vals, st); err != nil {
		return writeResult{err: err}
	}
	return writeResult{added: int64(len(keys)), conflicts: conflicts, newKeys: keys}
}

// finish applies a write's result to the in-memory state.
func (x *Index) finish(b *batch, r writeResult) error {
	if r.err != nil {
		return r.err
	}
	added, conflicts, newKeys := r.added, r.conflicts, r.newKeys
	x.names = append(x.names, b.topics...)
	for _, name := range b.topics {
		x.topics[name] = uint64(slices.Index(x.names, name))
	}
	b.topics = nil
	x.count += added
	x.stats.Conflicts += conflicts
	if conflicts > 0 {
		x.log.Warn("transaction ids met again with another owner; kept the first", "ids", conflicts)
	}
	for _, k := range newKeys {
		x.filter.add(x.filter.hash(k))
	}
	if x.filter.full() {
		return x.rebuildFilter()
	}
	return nil
}

// Owner encoding: a flags byte, then uvarints topic number, partition and offset, then the
// hash: 32 raw bytes when it is canonical (64 lower-case hex digits, flag 1), else as is.
const flagRawHash = 1

// maxOwnerLen bounds the encoded size of o.
func maxOwnerLen(o engine.Owner) int { return 1 + 3*binary.MaxVarintLen64 + len(o.Hash) }

// appendOwner appends o's encoding to v (which must have room: see maxOwnerLen).
func appendOwner(v []byte, topic uint64, o engine.Owner) []byte {
	raw, canonical := ledger.DecodeHash(o.Hash)
	if canonical {
		v = append(v, flagRawHash)
	} else {
		v = append(v, 0)
	}
	v = binary.AppendUvarint(v, topic)
	v = binary.AppendUvarint(v, uint64(uint32(o.Partition.Partition)))
	v = binary.AppendUvarint(v, uint64(o.Offset))
	if canonical {
		return append(v, raw[:]...)
	}
	return append(v, o.Hash...)
}

func (x *Index) decodeOwner(v []byte) (engine.Owner, error) { return decodeOwner(v, x.names) }

// decodeOwner decodes an entry's value; names are the topics by number.
func decodeOwner(v []byte, names []string) (engine.Owner, error) {
	bad := func() error { return fmt.Errorf("corrupt index entry %x", v) }
	if len(v) < 4 {
		return engine.Owner{}, bad()
	}
	flags, p := v[0], v[1:]
	var nums [3]uint64
	for i := range nums {
		n, w := binary.Uvarint(p)
		if w <= 0 {
			return engine.Owner{}, bad()
		}
		nums[i], p = n, p[w:]
	}
	if nums[0] >= uint64(len(names)) {
		return engine.Owner{}, bad()
	}
	o := engine.Owner{Partition: engine.Partition{Topic: names[nums[0]], Partition: int32(uint32(nums[1]))}, Offset: int64(nums[2])}
	if flags&flagRawHash != 0 {
		if len(p) != 32 {
			return engine.Owner{}, bad()
		}
		o.Hash = hex.EncodeToString(p)
	} else {
		o.Hash = string(p)
	}
	return o, nil
}

// unsafeString views b as a string without copying; b must not change while it is used.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
