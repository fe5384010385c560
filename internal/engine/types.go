// Package engine holds the micro-batch loop and the exactly-once protocol of ledgerstream.
//
// It talks to the outside only through small interfaces (Source, Table, Clock); the Kafka and
// Iceberg adapters implement them elsewhere. The decisions that make exactly-once hold (where to
// resume, what a batch covers, whether a failed commit landed, merge-and-retry or fence) are pure
// functions in protocol.go, so they are tested without sockets or disks.
package engine

import (
	"context"
	"errors"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// Partition names one Kafka topic partition.
type Partition struct {
	Topic     string
	Partition int32
}

// Offsets maps a partition to the next offset to read there.
type Offsets map[Partition]int64

// Special starting positions, as Kafka's ListOffsets spells them. They appear only in a
// starting position, never in a table's offsets map.
const (
	OffsetLatest   int64 = -1
	OffsetEarliest int64 = -2
)

// Clone returns a copy of o (nil stays an empty map).
func (o Offsets) Clone() Offsets {
	c := make(Offsets, len(o))
	for p, off := range o {
		c[p] = off
	}
	return c
}

// Header is one Kafka record header.
type Header = ledger.Header

// Record is one record read from the source. Control records (transaction markers) are
// delivered too, with Control set, so that a partition's position can move past them.
type Record struct {
	Partition
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	Control   bool
}

// Source is where records come from: a Kafka consumer in a group, in production.
type Source interface {
	// Fetch blocks until records are available or ctx ends, and returns at most max of
	// them (no limit when max <= 0; the rest stay buffered for the next call), in offset
	// order within each partition. On ctx's end it returns what it has and no error.
	Fetch(ctx context.Context, max int) ([]Record, error)
	// Seek sets the next offset to fetch for the given owned partitions. Records of those
	// partitions fetched before the Seek are never returned after it: the engine relies on
	// this, because after a seek backwards a stale record ahead of the new position would
	// look like a legitimate gap (an aborted transaction) and hide a loss.
	Seek(offsets Offsets)
	// Assigned returns the partitions this worker owns now.
	Assigned() []Partition
	// Release lets a pending rebalance proceed. The engine calls it only between batches,
	// so that no partition is taken away in the middle of one.
	Release()
	// CommitAdvisory records progress in Kafka's consumer group (for lag dashboards only;
	// the tables hold the truth).
	CommitAdvisory(ctx context.Context, offsets Offsets) error
	// Ends returns, for the owned partitions, the log start offsets and the end offsets
	// (last stable offsets) that a run processing everything available now must reach.
	Ends(ctx context.Context) (start, end Offsets, err error)
}

// TopicState is what the cluster says of the topic now: the facts the pipeline's first
// assumption rests on (a record's offset names it forever; records stay until processed).
type TopicState struct {
	Topic string
	// ID is the topic's id (KIP-516); "" when the cluster has none. A topic deleted and
	// created again under the same name has a new one.
	ID string
	// Partitions is the partition count.
	Partitions int32
	// Start is each partition's log start offset (records below it were deleted:
	// retention, DeleteRecords), End its last stable offset.
	Start, End Offsets
}

// TopicDescriber is a Source that can say what its topic is now. The engine checks, with
// it, that the topic is still the one the tables' offsets name, and tells records deleted
// before processing from a log that was truncated. A source without it (a synthetic one)
// is taken at its word.
type TopicDescriber interface {
	Topic(ctx context.Context) (TopicState, error)
}

// ResumeFunc tells the source where to start newly assigned partitions. The source calls it
// when partitions are assigned, before fetching from them.
type ResumeFunc func(ctx context.Context, parts []Partition) (Offsets, error)

// TableState is what the engine needs to know of a table: the snapshot it plans on and
// this pipeline's offsets map as of that snapshot.
type TableState struct {
	// SnapshotID of the current snapshot of the branch, 0 when the table has none.
	SnapshotID int64
	// Offsets is the map of the newest snapshot of this pipeline in the branch's history.
	Offsets Offsets
	// Batch is the sequence number of that snapshot (0 when none).
	Batch int64
	// Clean, in the ledger only, says how far the rejects table is known complete beyond
	// its own offsets map: batches without rejects move it here instead of committing an
	// empty snapshot to the rejects table. Nil elsewhere.
	Clean Offsets
	// TopicIDs, in the ledger only, are the ids of the topics the offsets were read from,
	// by name, as the pipeline's newest snapshot recorded them (nil when it recorded none).
	TopicIDs map[string]string
}

// Commit is what a successful batch writes into the snapshot summary.
type Commit struct {
	Pipeline string
	Batch    int64
	Offsets  Offsets
	Clean    Offsets           // ledger only; see TableState.Clean
	TopicIDs map[string]string // ledger only; see TableState.TopicIDs
}

// Staged is a set of data files written but not yet committed. Its content belongs to the
// Table implementation.
type Staged interface {
	// Rows is how many rows the staged files hold.
	Rows() int64
}

// Table is a sink the engine commits batches of rows R to: an Iceberg table, in production.
// The ledger is a Table[ledger.Row], the rejects table a Table[ledger.RejectRow].
type Table[R any] interface {
	// Name identifies the table in logs and errors.
	Name() string
	// Load refreshes and returns the table's state for this pipeline.
	Load(ctx context.Context) (TableState, error)
	// Stage writes rows as data files without committing them; processed is the batch's
	// processing_time. Zero rows is allowed (a commit that only moves offsets).
	Stage(ctx context.Context, rows []R, processed time.Time) (Staged, error)
	// Commit appends the staged files in one snapshot whose summary carries c, on the
	// condition that the table's current snapshot is still base.SnapshotID. It returns the
	// new state. ErrConflict means the condition failed and nothing was written; any other
	// error leaves the outcome unknown, to be settled by Load.
	Commit(ctx context.Context, base TableState, staged Staged, c Commit) (TableState, error)
	// Discard deletes staged files that will never be committed. Best effort.
	Discard(ctx context.Context, staged Staged) error
	// Join makes one staged set of several, for one Commit: the engine stages a large
	// batch in parts while it is still reading it.
	Join(parts []Staged) Staged
}

// Owner is the ledger row that holds a transaction id: where it came from and its hash.
type Owner struct {
	Partition
	Offset int64
	Hash   string
}

// Index is the index of the transaction ids accepted into the ledger (docs/design.md §4.6). It is derived from the ledger and can be rebuilt from it.
type Index interface {
	// Sync brings the index up to date with the ledger as of st: the ids and positions of
	// every row committed up to st.SnapshotID.
	Sync(ctx context.Context, st TableState) error
	// Lookup returns the owner of an accepted transaction id.
	Lookup(id string) (Owner, bool, error)
	// Add records the rows of a batch that the ledger committed as st.
	Add(rows []ledger.Row, st TableState) error
}

// ScopedIndex is an Index that holds the ids of some partitions only (`run --index-scope
// partition`, docs/design.md §4.6): valid when producers key every message by its
// transaction id, so that every copy of an id lands in one partition. With one, the engine
// covers a record's partition before classifying it, drops the partitions it no longer
// owns between batches, and stops on a record whose Kafka key is not its transaction id.
type ScopedIndex interface {
	Index
	// Cover makes the index hold p's ids up to the snapshot it is synced to (a back-fill
	// from the ledger when p is new to it). It is a no-op for a covered partition.
	Cover(ctx context.Context, p Partition) error
	// Keep drops the partitions not in owned: their ids are no longer synced.
	Keep(owned []Partition) error
}

// ErrKeyNotID reports a record whose Kafka key is not its transaction id, met with a
// partition-scoped index: the index would miss its copies in other partitions.
var ErrKeyNotID = errors.New("the record's Kafka key is not its transaction id")

// ErrConflict reports that a conditional commit found the table moved since its base.
var ErrConflict = errors.New("table changed since the batch was planned")

// Clock tells the time and waits: every wait of the engine (a commit's backoff, a pause
// after a transient fetch error) goes through it, so that tests drive time by hand. It is
// the retry policy's clock, so that one fake clock drives both.
type Clock = retry.Clock

// SystemClock is the real clock.
type SystemClock = retry.SystemClock
