package iceberg

import (
	"context"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// LedgerIDs reads what the transaction-id index needs of the ledger (transaction_id,
// transaction_hash and the source position, nothing else), either for the whole table or
// only for the rows that given snapshots added. It implements dedup.Ledger.
type LedgerIDs struct {
	cat   *Catalog
	ident table.Identifier
	sink  *Sink  // optional: its table, when current enough, saves a catalog round trip
	key   string // the key column: transaction_id, or a custom contract's key
}

// NewLedgerIDs returns the id reader of the ledger ident. sink, when not nil, is the
// ledger's sink in this process: the snapshots it just loaded or committed are read from
// its metadata instead of the catalog's.
func (c *Catalog) NewLedgerIDs(ident table.Identifier, sink *Sink) *LedgerIDs {
	return &LedgerIDs{cat: c, ident: ident, sink: sink, key: ColTransactionID}
}

// NewContractLedgerIDs is NewLedgerIDs for a ledger written with contract ct: the index
// keeps ct's key column.
func (c *Catalog) NewContractLedgerIDs(ident table.Identifier, sink *Sink, ct *ledger.Contract) *LedgerIDs {
	return &LedgerIDs{cat: c, ident: ident, sink: sink, key: ct.Key}
}

// idColumns are the columns the index reads: a fraction of a ledger row.
func (l *LedgerIDs) idColumns() []string {
	return []string{l.key, ColTransactionHash, ColSourceTopic, ColSourcePartition, ColSourceOffset}
}

// table returns the ledger's table with head in its metadata.
func (l *LedgerIDs) table(ctx context.Context, head int64) (*table.Table, error) {
	if l.sink != nil {
		if tbl := l.sink.Table(); tbl != nil && tbl.Metadata().SnapshotByID(head) != nil {
			return tbl, nil
		}
	}
	tbl, err := l.cat.LoadTable(ctx, l.ident)
	if err != nil {
		return nil, err
	}
	if tbl.Metadata().SnapshotByID(head) == nil {
		return nil, fmt.Errorf("iceberg: %s has no snapshot %d", identString(l.ident), head)
	}
	return tbl, nil
}

// History returns the snapshot ids of the history ending at head, newest first, as far
// back as the table keeps it, and whether that reaches the table's first snapshot (false
// when older snapshots were expired).
func (l *LedgerIDs) History(ctx context.Context, head int64) ([]int64, bool, error) {
	if head == 0 {
		return nil, true, nil
	}
	tbl, err := l.table(ctx, head)
	if err != nil {
		return nil, false, err
	}
	var ids []int64
	complete := false
	for _, s := range table.AncestorsOf(head, tbl.Metadata().SnapshotByID) {
		ids = append(ids, s.SnapshotID)
		complete = s.ParentSnapshotID == nil
	}
	return ids, complete, nil
}

// ReadAll calls fn for every row of the ledger as of snapshot head. The strings fn gets
// alias the scan's buffers: they are valid only during the call.
func (l *LedgerIDs) ReadAll(ctx context.Context, head int64, fn func(id string, o engine.Owner) error) error {
	if head == 0 {
		return nil
	}
	return l.cat.scanBatches(ctx, l.ident, head, l.idColumns(), func(rec arrow.RecordBatch) error {
		return eachID(rec, l.key, fn)
	})
}

// ReadAdded calls fn for every row in the data files that the snapshots (of head's
// history) added, and only those: manifests written by each snapshot, entries ADDED by it.
// Snapshots that add no rows of their own (replace: compaction rewrites rows already there;
// delete) are skipped. The strings fn gets are valid only during the call.
func (l *LedgerIDs) ReadAdded(ctx context.Context, head int64, snapshots []int64, fn func(id string, o engine.Owner) error) error {
	if len(snapshots) == 0 {
		return nil
	}
	loaded, err := l.table(ctx, head)
	if err != nil {
		return err
	}
	name := identString(l.ident)
	tbl, fs, err := readerTable(ctx, loaded)
	if err != nil {
		return err
	}
	meta := tbl.Metadata()
	var tasks []table.FileScanTask
	for _, id := range snapshots {
		snap := meta.SnapshotByID(id)
		if snap == nil {
			return fmt.Errorf("iceberg: read ids of %s: no snapshot %d", name, id)
		}
		if snap.Summary != nil && (snap.Summary.Operation == table.OpReplace || snap.Summary.Operation == table.OpDelete) {
			continue
		}
		manifests, err := readManifestList(fs, snap)
		if err != nil {
			if d := damaged(fs, &DamageError{Table: name, Kind: FileManifestList, Path: snap.ManifestList, Records: -1}, -1, err); d != nil {
				return d
			}
			return fmt.Errorf("iceberg: read ids of %s: snapshot %d: %w", name, id, err)
		}
		for _, m := range manifests {
			if m.SnapshotID() != id || m.ManifestContent() != ice.ManifestContentData {
				continue // inherited from an earlier snapshot, or deletes
			}
			entries, err := readManifest(fs, m)
			if err != nil {
				de := &DamageError{Table: name, Kind: FileManifest, Path: m.FilePath(), Records: m.AddedRows() + m.ExistingRows()}
				if d := damaged(fs, de, m.Length(), err); d != nil {
					return d
				}
				return fmt.Errorf("iceberg: read ids of %s: manifest %s: %w", name, m.FilePath(), err)
			}
			for _, e := range entries {
				if e.Status() != ice.EntryStatusADDED || e.SnapshotID() != id || e.DataFile().ContentType() != ice.EntryContentData {
					continue
				}
				df := e.DataFile()
				tasks = append(tasks, table.FileScanTask{File: df, Length: df.FileSizeBytes()})
			}
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	scan := tbl.Scan(table.WithSelectedFields(l.idColumns()...), table.WithSnapshotID(head))
	defer scan.Close()
	return readTasks(ctx, name, fs, scan, scanSchema(meta, head), tasks, nil, func(rec arrow.RecordBatch) error { return eachID(rec, l.key, fn) })
}

func eachID(rec arrow.RecordBatch, key string, fn func(string, engine.Owner) error) error {
	c := &batchColumns{rec: rec}
	id, hash, topic := keyColumn(c, key), c.str(ColTransactionHash), c.str(ColSourceTopic)
	part, off := c.int32s(ColSourcePartition), c.int64s(ColSourceOffset)
	if err := c.err(); err != nil {
		return err
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		o := engine.Owner{Partition: engine.Partition{Topic: topic.Value(i), Partition: part.Value(i)},
			Offset: off.Value(i), Hash: hash.Value(i)}
		if err := fn(id.Value(i), o); err != nil {
			return err
		}
	}
	return nil
}

// keyColumn reads the key column as strings: a long or int key as its decimal digits, the
// canonical string the contract decoder gives it.
func keyColumn(c *batchColumns, key string) stringColumn {
	switch a := c.col(key).(type) {
	case *array.Int64:
		return intStrings[int64]{a}
	case *array.Int32:
		return intStrings[int32]{a}
	}
	return c.str(key)
}

type intArray[T int32 | int64] interface {
	arrow.Array
	Value(int) T
}

// intStrings shows an integer column as strings.
type intStrings[T int32 | int64] struct{ intArray[T] }

func (a intStrings[T]) Value(i int) string { return strconv.FormatInt(int64(a.intArray.Value(i)), 10) }

// Partitions tells, for snapshots of head's history, the source partitions whose rows each
// may have added, from the snapshot summaries alone: the partitions whose offset the
// snapshot's map moves past the previous snapshot of the same pipeline in the history (a
// batch's rows of a partition lie between those two offsets). A snapshot it cannot tell for
// (no pipeline in its summary, the first of its pipeline in the kept history, a summary it
// cannot read) is absent from the result: its files must be read. A partition-scoped index
// reads only the snapshots that moved the partitions it covers (docs/design.md §4.6).
func (l *LedgerIDs) Partitions(ctx context.Context, head int64, snapshots []int64) (map[int64][]engine.Partition, error) {
	if len(snapshots) == 0 {
		return nil, nil
	}
	tbl, err := l.table(ctx, head)
	if err != nil {
		return nil, err
	}
	meta := tbl.Metadata()
	links := snapshotLinks(meta)
	out := make(map[int64][]engine.Partition, len(snapshots))
	for _, id := range snapshots {
		snap := meta.SnapshotByID(id)
		if snap == nil || snap.Summary == nil || snap.ParentSnapshotID == nil {
			continue
		}
		pipeline := snap.Summary.Properties[SummaryPipeline]
		if pipeline == "" {
			continue
		}
		offsets, _, _, err := parseSummary(snap.Summary.Properties)
		if err != nil {
			continue
		}
		prevID, err := engine.NewestOfPipeline(*snap.ParentSnapshotID, pipeline, links)
		if err != nil || prevID == 0 {
			continue
		}
		prev, _, _, err := parseSummary(meta.SnapshotByID(prevID).Summary.Properties)
		if err != nil {
			continue
		}
		moved := []engine.Partition{}
		for p, off := range offsets {
			if was, ok := prev[p]; !ok || was != off {
				moved = append(moved, p)
			}
		}
		for p := range prev {
			if _, ok := offsets[p]; !ok {
				moved = append(moved, p) // a map that lost a partition: not ours to judge
			}
		}
		out[id] = moved
	}
	return out, nil
}
