// Package dedup is the index of the transaction ids accepted into the ledger (docs/design.md §4.6): for every id, the ledger row that owns it (source
// position and transaction hash), so that the engine can refuse a second message with the
// same id as a duplicate or a conflicting duplicate, and still recognise a replay of the
// owning message itself.
//
// The ledger is the truth; the index is derived from it and can always be rebuilt from it.
// It lives in one bbolt file per (table, pipeline, worker) with bounded memory: the ids are
// on disk, and only a blocked Bloom filter (about 2.5 bytes per id) sits in front of them,
// so that the common lookup, a new id, never touches the disk. The file records the ledger
// snapshot it is synced to; Sync then reads only the rows of the snapshots committed since
// (the data files they added, five columns of them), and rebuilds from a full scan only when
// that snapshot left main's history (expired, rolled back, or the table was replaced).
package dedup

import (
	"bytes"
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

	bolt "go.etcd.io/bbolt"

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

// ErrLocked reports that another process holds the index file.
var ErrLocked = errors.New("dedup: the index file is in use by another process")

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
	RowsRead   int64 // ledger rows read by Sync (incremental or full)
	Rebuilds   int64 // full rebuilds
	Lookups    int64
	DiskReads  int64 // lookups that passed the Bloom filter and read the file
	Conflicts  int64 // ids met again with another owner (kept the first)
	BloomBytes int64
}

// Index is the on-disk transaction id index. It implements engine.Index and is safe for
// concurrent use (the engine calls it under its own lock; tools may not).
type Index struct {
	path   string
	db     *bolt.DB
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
	// beforeWrite, in tests, runs in Add's background write before it starts.
	beforeWrite func()
}

// pendingWrite is a batch that Add writes to the file in the background.
type pendingWrite struct {
	b       *batch
	ids     map[string][]byte // id -> the value of its first entry (both in b's arena)
	applied []int64           // x.applied once the write is done
	synced  int64             // x.synced once the write is done
	done    chan struct{}
	res     writeResult // set before done is closed
}

var _ engine.Index = (*Index)(nil)

// bbolt layout: bucket ids maps a transaction id to its owner (see encodeOwner); bucket meta
// holds the sync state, the id count and the topic numbering (topics are few; each owner
// names its topic by number).
var (
	bucketIDs    = []byte("ids")
	bucketMeta   = []byte("meta")
	bucketTopics = []byte("topics")
	keySynced    = []byte("synced")
	keyApplied   = []byte("applied")
	keyPartial   = []byte("partial")
	keyCount     = []byte("count")
	keyVersion   = []byte("version")
)

const formatVersion = 1

// FileName is the index file of a (table, pipeline, worker) under an index directory:
// characters outside [A-Za-z0-9._-] become '_'. worker may be empty.
func FileName(table, pipeline, worker string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
				return r
			}
			return '_'
		}, s)
	}
	name := clean(table) + "~" + clean(pipeline)
	if worker != "" {
		name += "~" + clean(worker)
	}
	return name + ".idx"
}

// Open opens (creating it and its directory if needed) the index file at path, reading the
// ledger through l. The file is locked: a second Open of it, in any process, fails with
// ErrLocked until Close. A file that is not a valid index (torn by a power loss, another
// format) is moved aside to path+".corrupt" and rebuilt: the ledger holds the truth.
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
	// The initial mapping is address space, not memory: large enough that bbolt need not
	// remap (copying every node it holds) as the file grows to some 14 million ids.
	bopts := &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType, InitialMmapSize: 1 << 30}
	db, err := bolt.Open(path, 0o600, bopts)
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("%w: %s (give each worker its own --worker-id or --index-dir)", ErrLocked, path)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		opts.Logger.Warn("transaction id index unreadable; moving it aside and rebuilding from the ledger", "path", path, "error", err)
		if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
			return nil, fmt.Errorf("dedup: open %s: %w (and moving it aside: %w)", path, err, rerr)
		}
		db, err = bolt.Open(path, 0o600, bopts)
	}
	if err != nil {
		return nil, fmt.Errorf("dedup: open %s: %w", path, err)
	}
	x := &Index{path: path, db: db, ledger: l, log: opts.Logger, topics: map[string]uint64{}}
	if err := x.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("dedup: open %s: %w", path, err)
	}
	return x, nil
}

// load reads the meta state and builds the Bloom filter from the ids on disk.
func (x *Index) load() error {
	err := x.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyVersion); v == nil {
			if err := meta.Put(keyVersion, u64(formatVersion)); err != nil {
				return err
			}
		} else if getU64(v) != formatVersion {
			return fmt.Errorf("index format %d, want %d (delete the file to rebuild it)", getU64(v), formatVersion)
		}
		if _, err := tx.CreateBucketIfNotExists(bucketIDs); err != nil {
			return err
		}
		topics, err := tx.CreateBucketIfNotExists(bucketTopics)
		if err != nil {
			return err
		}
		x.synced, x.count = int64(getU64(meta.Get(keySynced))), int64(getU64(meta.Get(keyCount)))
		x.applied, x.partial = decodeIDs(meta.Get(keyApplied)), decodeIDs(meta.Get(keyPartial))
		return topics.ForEach(func(k, v []byte) error {
			n := getU64(v)
			for uint64(len(x.names)) <= n {
				x.names = append(x.names, "")
			}
			x.names[n] = string(k)
			x.topics[string(k)] = n
			return nil
		})
	})
	if err != nil {
		return err
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
// scan of the keys (sequential reads of the file; about a second at 10 million ids).
func (x *Index) rebuildFilter() error {
	f := newBloom(int(2 * x.count))
	err := x.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIDs).Cursor()
		n := 0
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			f.add(f.hash(k))
			if n++; n%(1<<19) == 0 {
				releasePages(x.db, x.path) // the scan maps the whole file otherwise
			}
		}
		return nil
	})
	releasePages(x.db, x.path)
	if err != nil {
		return fmt.Errorf("build the Bloom filter: %w", err)
	}
	x.filter = f
	x.stats.BloomBytes = int64(f.bytes())
	return nil
}

// Close saves the Bloom filter beside the file (so that the next Open need not scan every
// id), closes the file and releases its lock.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.finishLocked(); err != nil {
		_ = x.db.Close() // the file does not record the batch: Sync reads it back
		return fmt.Errorf("dedup: close %s: %w", x.path, err)
	}
	serr := x.filter.save(x.bloomPath(), x.count, x.synced)
	if err := x.db.Close(); err != nil {
		return fmt.Errorf("dedup: close %s: %w", x.path, err)
	}
	if serr != nil {
		return fmt.Errorf("dedup: close %s: save the Bloom filter: %w", x.path, serr)
	}
	return nil
}

// Path is the index file.
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
	if !x.filter.mayContain(x.filter.hashString(id)) {
		return x.lookupPending(id)
	}
	x.stats.DiskReads++
	var o engine.Owner
	var found bool
	err := x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIDs).Get([]byte(id))
		if v == nil {
			return nil
		}
		var err error
		o, err = x.decodeOwner(v)
		found = err == nil
		return err
	})
	if err != nil {
		return engine.Owner{}, false, fmt.Errorf("dedup: look up %q: %w", id, err)
	}
	if !found {
		return x.lookupPending(id)
	}
	return o, true, nil
}

// lookupPending answers from the write Add left running, if any. The file is asked first:
// an id already there keeps its owner, as the write would keep it.
func (x *Index) lookupPending(id string) (engine.Owner, bool, error) {
	p := x.pending
	if p == nil {
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
// The write to the file goes on in the background, off the engine's path (it is most of
// the index's cost): Lookup sees the rows at once, every other call waits for the write,
// and its error, if any, is returned by the next call. A crash before the write is done
// loses nothing: the file does not record st as applied, so Sync reads its rows back from
// the ledger.
func (x *Index) Add(rows []ledger.Row, st engine.TableState) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.finishLocked(); err != nil {
		return err
	}
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
	// When the file will hold every snapshot up to st (the usual case: st was committed on
	// top of what the index had), the write records st as synced, and the engine's Sync to
	// st before its next batch has nothing to read and need not wait for the write.
	synced := x.synced
	if len(x.partial) == 0 && x.covers(st.SnapshotID, applied) {
		synced, applied = st.SnapshotID, nil
	}
	meta := func(m *bolt.Bucket) error { return m.Put(keyApplied, encodeIDs(applied)) }
	if synced != x.synced {
		meta = x.setSynced(synced)
	}
	p := &pendingWrite{b: b, ids: make(map[string][]byte, len(b.entries)), applied: applied, synced: synced, done: make(chan struct{})}
	for _, e := range b.entries {
		if k := unsafeString(e.key); p.ids[k] == nil { // an id met twice: its first entry
			p.ids[k] = e.val
		}
	}
	x.pending = p
	go func() { // owned by x: every other method, Close included, waits for it
		defer close(p.done)
		if x.beforeWrite != nil {
			x.beforeWrite()
		}
		sortEntries(b)
		p.res = x.apply(b, meta)
		releasePages(x.db, x.path)
		if p.res.err != nil {
			p.res.err = fmt.Errorf("dedup: add %d ids of snapshot %d: %w", len(rows), st.SnapshotID, p.res.err)
		}
	}()
	return nil
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
		// The file and the memory may now disagree on what the batch wrote: refuse
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
// so that the file holds all of head's rows once applied is written. History is in memory
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

// setSynced is the meta update of a completed sync.
func (x *Index) setSynced(head int64) func(*bolt.Bucket) error {
	return func(meta *bolt.Bucket) error {
		if err := meta.Put(keySynced, u64(uint64(head))); err != nil {
			return err
		}
		if err := meta.Delete(keyPartial); err != nil {
			return err
		}
		return meta.Delete(keyApplied)
	}
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

// rebuildChunk is how many ids a rebuild or a long sync sorts and writes per bbolt
// transaction: it bounds their memory (about 100 bytes an id, plus bbolt's dirty pages)
// while keeping inserts mostly sequential.
const rebuildChunk = 1 << 18

// chunked returns b.add writing b out every rebuildChunk entries. Those writes record the
// snapshots being read as partial, not synced (only the last write, the caller's, records
// what was synced), so that a crash in between is settled by the next Sync.
func (x *Index) chunked(b *batch, reading []int64) func(string, engine.Owner) error {
	return func(id string, o engine.Owner) error {
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
		if err := x.write(b, func(meta *bolt.Bucket) error { return meta.Put(keyPartial, encodeIDs(partial)) }); err != nil {
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
	// One transaction empties the index and forgets the sync state, so that a crash in
	// the middle of the rebuild leaves an index that claims nothing (synced 0).
	err := x.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketIDs); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		if _, err := tx.CreateBucket(bucketIDs); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keySynced, keyApplied, keyPartial, keyCount} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dedup: rebuild: %w", err)
	}
	x.synced, x.applied, x.partial, x.count = 0, nil, nil, 0
	x.filter = newBloom(0)
	// The file is derived data: skip the per-chunk fsyncs, and sync once at the end (the
	// last write, which also records the synced snapshot, is a normal synced commit).
	x.db.NoSync = true
	defer func() { x.db.NoSync = false }()
	b := x.newBatch(rebuildChunk)
	if err := x.ledger.ReadAll(ctx, head, x.chunked(b, []int64{head})); err != nil {
		return fmt.Errorf("dedup: rebuild from snapshot %d: %w", head, err)
	}
	x.db.NoSync = false
	if err := x.db.Sync(); err != nil {
		return fmt.Errorf("dedup: rebuild: %w", err)
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
	b.x.stats.RowsRead++
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
// meta (when not nil) in the same transaction. The in-memory state follows only once the
// transaction committed.
func (x *Index) write(b *batch, meta func(*bolt.Bucket) error) error {
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

// apply writes a sorted batch in one transaction. It reads x.count and x.names, which only
// finish changes, and touches no other in-memory state: Add runs it in the background.
func (x *Index) apply(b *batch, meta func(*bolt.Bucket) error) writeResult {
	var added, conflicts int64
	var newKeys [][]byte
	err := x.db.Update(func(tx *bolt.Tx) error {
		topics := tx.Bucket(bucketTopics)
		for i, name := range b.topics {
			if err := topics.Put([]byte(name), u64(uint64(len(x.names)+i))); err != nil {
				return err
			}
		}
		ids := tx.Bucket(bucketIDs)
		// Mostly appends at the end (ids grow) or clustered: a high fill factor keeps the
		// file small without costing inserts in the middle much.
		ids.FillPercent = 0.9
		var prev entry
		for _, e := range b.entries {
			if prev.key != nil && bytes.Equal(prev.key, e.key) {
				if !bytes.Equal(e.val, prev.val) {
					conflicts++
				}
				continue // the same id twice in one batch: keep the first
			}
			prev = e
			// The filter has no false negatives: for an id it has never seen, the lookup
			// (a second descent of the tree per id) is skipped.
			if x.filter.mayContain(x.filter.hash(e.key)) {
				if old := ids.Get(e.key); old != nil {
					if !bytes.Equal(old, e.val) {
						conflicts++
					}
					continue
				}
			}
			if err := ids.Put(e.key, e.val); err != nil {
				return err
			}
			added++
			newKeys = append(newKeys, e.key)
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Put(keyCount, u64(uint64(x.count+added))); err != nil {
			return err
		}
		if meta != nil {
			return meta(m)
		}
		return nil
	})
	return writeResult{added: added, conflicts: conflicts, newKeys: newKeys, err: err}
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

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func getU64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func encodeIDs(ids []int64) []byte {
	var v []byte
	for _, id := range ids {
		v = binary.BigEndian.AppendUint64(v, uint64(id))
	}
	return v
}

func decodeIDs(v []byte) []int64 {
	var ids []int64
	for ; len(v) >= 8; v = v[8:] {
		ids = append(ids, int64(binary.BigEndian.Uint64(v)))
	}
	return ids
}

// unsafeString views b as a string without copying; b must not change while it is used.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
