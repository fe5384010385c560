package iceberg

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// ScanLedger reads the ledger table at snapshotID (0: main's head) and calls fn for every
// row, with its processing_time (zero when null). Record batches are streamed, so memory
// stays bounded by a few batches whatever the table's size. The strings in the row are
// copies, safe to keep. An error from fn stops the scan and is returned as is.
func (c *Catalog) ScanLedger(ctx context.Context, ident table.Identifier, snapshotID int64, fn func(row ledger.Row, processed time.Time) error) error {
	return c.scanBatches(ctx, ident, snapshotID, ledgerColumns, func(rec arrow.RecordBatch) error { return eachLedgerRow(rec, fn) })
}

// ScanLedgerWhere is ScanLedger for the rows that match filter only (e.g.
// iceberg.IsIn(iceberg.Reference(ColTransactionID), ids...)): files whose column bounds
// exclude every match are not read.
func (c *Catalog) ScanLedgerWhere(ctx context.Context, ident table.Identifier, snapshotID int64, filter ice.BooleanExpression, fn func(row ledger.Row, processed time.Time) error) error {
	return c.scanBatchesWhere(ctx, ident, snapshotID, filter, ledgerColumns, func(rec arrow.RecordBatch) error { return eachLedgerRow(rec, fn) })
}

// ledgerColumns are the columns ScanLedger reads: the whole row.
var ledgerColumns = []string{
	ColTransactionID, ColAccountFrom, ColAccountTo, ColAmount, ColCurrency, ColTransactionType,
	ColTransactionHash, ColEventTimestamp, ColProcessingTime, ColSourceTopic, ColSourcePartition,
	ColSourceOffset}

// scanBatches reads the columns fields of table ident at snapshotID (0: main's head) and
// calls fn for each record batch, which it releases after fn. A table without snapshots has
// no batches.
func (c *Catalog) scanBatches(ctx context.Context, ident table.Identifier, snapshotID int64, fields []string, fn func(arrow.RecordBatch) error) error {
	return c.scanBatchesWhere(ctx, ident, snapshotID, nil, fields, fn)
}

// scanBatchesWhere is scanBatches for the rows that match filter (nil: all).
func (c *Catalog) scanBatchesWhere(ctx context.Context, ident table.Identifier, snapshotID int64, filter ice.BooleanExpression, fields []string, fn func(arrow.RecordBatch) error) error {
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	if mainSnapshotID(tbl.Metadata()) == 0 && snapshotID == 0 {
		return nil // no snapshot, no rows
	}
	opts := []table.ScanOption{table.WithSelectedFields(fields...)}
	if filter != nil {
		opts = append(opts, table.WithRowFilter(filter))
	}
	if snapshotID != 0 {
		opts = append(opts, table.WithSnapshotID(snapshotID))
	}
	_, batches, err := tbl.Scan(opts...).ToArrowRecords(ctx)
	if err != nil {
		return fmt.Errorf("iceberg: scan %s: %w", identString(ident), err)
	}
	return eachBatch(identString(ident), batches, fn)
}

// eachBatch calls fn for each batch of an Arrow scan and releases it.
func eachBatch(name string, batches iter.Seq2[arrow.RecordBatch, error], fn func(arrow.RecordBatch) error) error {
	for rec, err := range batches {
		if err != nil {
			return fmt.Errorf("iceberg: scan %s: %w", name, err)
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// stringColumn is what utf8 and large_utf8 arrays have in common.
type stringColumn interface {
	arrow.Array
	Value(int) string
}

func eachLedgerRow(rec arrow.RecordBatch, fn func(ledger.Row, time.Time) error) error {
	sc := rec.Schema()
	col := func(name string) (arrow.Array, error) {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("iceberg: scan: column %q missing from %s", name, sc)
		}
		return rec.Column(idx[0]), nil
	}
	var errs []string
	str := func(name string) stringColumn {
		a, err := col(name)
		if err != nil {
			errs = append(errs, err.Error())
			return nil
		}
		s, ok := a.(stringColumn)
		if !ok {
			errs = append(errs, fmt.Sprintf("column %q is %s, want a string", name, a.DataType()))
		}
		return s
	}
	txID, from, to := str(ColTransactionID), str(ColAccountFrom), str(ColAccountTo)
	currency, typ, hash := str(ColCurrency), str(ColTransactionType), str(ColTransactionHash)
	topic := str(ColSourceTopic)
	amountA, err1 := col(ColAmount)
	eventA, err2 := col(ColEventTimestamp)
	procA, err3 := col(ColProcessingTime)
	partA, err4 := col(ColSourcePartition)
	offA, err5 := col(ColSourceOffset)
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	amount, ok1 := amountA.(*array.Decimal128)
	event, ok2 := eventA.(*array.Timestamp)
	proc, ok3 := procA.(*array.Timestamp)
	part, ok4 := partA.(*array.Int32)
	off, ok5 := offA.(*array.Int64)
	if len(errs) == 0 && !(ok1 && ok2 && ok3 && ok4 && ok5) {
		errs = append(errs, fmt.Sprintf("unexpected column types in %s", sc))
	}
	if len(errs) > 0 {
		return fmt.Errorf("iceberg: scan: %s", strings.Join(errs, "; "))
	}
	toTime, err := timestampConverter(event)
	if err != nil {
		return err
	}
	procTime, err := timestampConverter(proc)
	if err != nil {
		return err
	}

	for i := 0; i < int(rec.NumRows()); i++ {
		amt := amount.Value(i)
		lo := int64(amt.LowBits())
		if amt.HighBits() != lo>>63 {
			return fmt.Errorf("iceberg: scan: amount of %s does not fit in 64 bits", txID.Value(i))
		}
		r := ledger.Row{
			// Value aliases the batch's buffers: clone, the batch is released after fn.
			TransactionID:   strings.Clone(txID.Value(i)),
			AccountFrom:     strings.Clone(from.Value(i)),
			AccountTo:       strings.Clone(to.Value(i)),
			Amount:          lo,
			Currency:        strings.Clone(currency.Value(i)),
			TransactionType: strings.Clone(typ.Value(i)),
			TransactionHash: strings.Clone(hash.Value(i)),
			EventTime:       toTime(i),
			SourceTopic:     strings.Clone(topic.Value(i)),
			SourcePartition: part.Value(i),
			SourceOffset:    off.Value(i),
		}
		if err := fn(r, procTime(i)); err != nil {
			return err
		}
	}
	return nil
}

// timestampConverter returns a function giving row i of a as a UTC time (zero for null).
func timestampConverter(a *array.Timestamp) (func(int) time.Time, error) {
	unit := a.DataType().(*arrow.TimestampType).Unit
	var conv func(int64) time.Time
	switch unit {
	case arrow.Microsecond:
		conv = func(v int64) time.Time { return time.UnixMicro(v).UTC() }
	case arrow.Nanosecond:
		conv = func(v int64) time.Time { return time.Unix(0, v).UTC() }
	case arrow.Millisecond:
		conv = func(v int64) time.Time { return time.UnixMilli(v).UTC() }
	default:
		return nil, fmt.Errorf("iceberg: scan: unexpected timestamp unit %s", unit)
	}
	return func(i int) time.Time {
		if a.IsNull(i) {
			return time.Time{}
		}
		return conv(int64(a.Value(i)))
	}, nil
}

// SnapshotInfo describes one snapshot and, when a ledgerstream pipeline made it, what its
// summary records.
type SnapshotInfo struct {
	SnapshotID int64
	ParentID   int64 // 0 for the first snapshot
	Time       time.Time
	Operation  string
	// Summary is the whole snapshot summary (added-records, total-records, …).
	Summary map[string]string
	// Pipeline, Batch, Offsets and Clean are parsed from the ledgerstream.* keys; Pipeline is ""
	// for foreign commits (maintenance, other writers).
	Pipeline string
	Batch    int64
	Offsets  engine.Offsets
	Clean    engine.Offsets // nil when the snapshot carries no ledgerstream.clean
	// TopicIDs are the ids of the topics the offsets were read from (ledgerstream.topic-ids);
	// nil when the snapshot recorded none.
	TopicIDs map[string]string
}

// Snapshots returns the history of branch main, newest first, ending where the history ends
// or was expired.
func (c *Catalog) Snapshots(ctx context.Context, ident table.Identifier) ([]SnapshotInfo, error) {
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return nil, err
	}
	meta := tbl.Metadata()
	head := mainSnapshotID(meta)
	if head == 0 {
		return nil, nil
	}
	var out []SnapshotInfo
	for _, s := range table.AncestorsOf(head, meta.SnapshotByID) {
		info := SnapshotInfo{
			SnapshotID: s.SnapshotID,
			Time:       time.UnixMilli(s.TimestampMs).UTC(),
		}
		if s.ParentSnapshotID != nil {
			info.ParentID = *s.ParentSnapshotID
		}
		if s.Summary != nil {
			info.Operation = string(s.Summary.Operation)
			info.Summary = map[string]string(s.Summary.Properties)
			if p := s.Summary.Properties[SummaryPipeline]; p != "" {
				o, b, clean, err := parseSummary(s.Summary.Properties)
				if err != nil {
					return nil, fmt.Errorf("iceberg: snapshot %d of %s: %w", s.SnapshotID, identString(ident), err)
				}
				info.Pipeline, info.Batch, info.Offsets, info.Clean = p, b, o, clean
				if info.TopicIDs, err = parseTopicIDs(s.Summary.Properties); err != nil {
					return nil, fmt.Errorf("iceberg: snapshot %d of %s: %w", s.SnapshotID, identString(ident), err)
				}
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// NewestOfPipeline returns the newest snapshot of pipeline in history (as Snapshots returns
// it, newest first) by the protocol's rule, engine.NewestOfPipeline: found is false when the
// pipeline never committed, and the error wraps engine.ErrHistoryTruncated when the history
// was cut (snapshots expired) before any snapshot of the pipeline.
func NewestOfPipeline(history []SnapshotInfo, pipeline string) (snap SnapshotInfo, found bool, err error) {
	if len(history) == 0 {
		return SnapshotInfo{}, false, nil
	}
	byID := make(map[int64]int, len(history))
	for i, s := range history {
		byID[s.SnapshotID] = i
	}
	id, err := engine.NewestOfPipeline(history[0].SnapshotID, pipeline, func(id int64) (engine.SnapshotLink, bool) {
		i, ok := byID[id]
		if !ok {
			return engine.SnapshotLink{}, false
		}
		return engine.SnapshotLink{Parent: history[i].ParentID, Pipeline: history[i].Pipeline}, true
	})
	if err != nil || id == 0 {
		return SnapshotInfo{}, false, err
	}
	return history[byID[id]], true, nil
}
