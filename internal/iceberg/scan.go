package iceberg

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	ice "github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"golang.org/x/sync/errgroup"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
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
	return c.scanFiles(ctx, ident, ScanOptions{SnapshotID: snapshotID}, fields, fn)
}

// scanBatchesWhere is scanBatches for the rows that match filter (nil: all).
func (c *Catalog) scanBatchesWhere(ctx context.Context, ident table.Identifier, snapshotID int64, filter ice.BooleanExpression, fields []string, fn func(arrow.RecordBatch) error) error {
	return c.scanFiles(ctx, ident, ScanOptions{SnapshotID: snapshotID, Filter: filter}, fields, fn)
}

// ScanOptions says what a scan reads and what it does with a damaged file.
type ScanOptions struct {
	// SnapshotID is the snapshot to read (0: main's head).
	SnapshotID int64
	// Filter keeps the rows that match it (nil: all); files whose bounds exclude every
	// match are not read.
	Filter ice.BooleanExpression
	// OnDamage, when set, is told of each manifest or data file that cannot be read, and
	// the scan goes on with the others (an error from OnDamage stops it). When nil, the
	// first damaged file ends the scan with a *DamageError marked retry.Permanent.
	OnDamage func(*DamageError) error
}

// scanFiles reads the columns fields of table ident as opts say, file by file, so that a
// file that cannot be read is named (a *DamageError) and, with opts.OnDamage, the others
// are still read. fn is called for each record batch, in no particular order of files
// (rows of one file in order), from the caller's goroutine; the batch is released after.
func (c *Catalog) scanFiles(ctx context.Context, ident table.Identifier, opts ScanOptions, fields []string, fn func(arrow.RecordBatch) error) error {
	name := identString(ident)
	loaded, err := c.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	meta := loaded.Metadata()
	snapshotID := opts.SnapshotID
	if snapshotID == 0 {
		if snapshotID = mainSnapshotID(meta); snapshotID == 0 {
			return nil // no snapshot, no rows
		}
	}
	snap := meta.SnapshotByID(snapshotID)
	if snap == nil {
		return fmt.Errorf("iceberg: scan %s: no snapshot %d", name, snapshotID)
	}
	tbl, fsys, err := readerTable(ctx, loaded)
	if err != nil {
		return err
	}
	scanOpts := []table.ScanOption{table.WithSelectedFields(fields...), table.WithSnapshotID(snapshotID)}
	if opts.Filter != nil {
		scanOpts = append(scanOpts, table.WithRowFilter(opts.Filter))
	}
	scan := tbl.Scan(scanOpts...)
	defer scan.Close()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		if tasks, err = planAroundDamage(name, fsys, snap, opts.OnDamage, err); err != nil {
			return err
		}
	}
	return readTasks(ctx, name, fsys, scan, scanSchema(meta, opts.SnapshotID), tasks, opts.OnDamage, fn)
}

// readerTable is loaded with one FileIO for every file a scan reads (a scan of the table
// as loaded makes one per file: an S3 client each).
func readerTable(ctx context.Context, loaded *table.Table) (*table.Table, iceio.IO, error) {
	fsys, err := loaded.FS(ctx)
	if err != nil {
		return nil, nil, retry.Tag(retry.Storage, fmt.Errorf("iceberg: read %s: %w", identString(loaded.Identifier()), err))
	}
	tbl := table.New(loaded.Identifier(), loaded.Metadata(), loaded.MetadataLocation(),
		func(context.Context) (iceio.IO, error) { return fsys, nil }, nil)
	return tbl, fsys, nil
}

// planAroundDamage is the plan of a scan whose planning failed with planErr: it reads the
// snapshot's manifest list and each manifest itself to find the one that cannot be read,
// and plans the data files of the others (without pruning: the scan's filter still
// applies to the rows). When every file reads, planErr was a passing failure and is
// returned; a damaged manifest list ends the scan.
func planAroundDamage(name string, fsys iceio.IO, snap *table.Snapshot, onDamage func(*DamageError) error, planErr error) ([]table.FileScanTask, error) {
	failed := fmt.Errorf("iceberg: plan the scan of %s: %w", name, planErr)
	manifests, err := readManifestList(fsys, snap)
	if err != nil {
		de := &DamageError{Table: name, Kind: FileManifestList, Path: snap.ManifestList, Records: -1}
		if d := damaged(fsys, de, -1, err); d != nil {
			return nil, d
		}
		return nil, failed
	}
	var tasks []table.FileScanTask
	found := false
	for _, m := range manifests {
		if m.ManifestContent() != ice.ManifestContentData {
			return nil, failed // deletes: a plan without them would be wrong (ledgerstream writes none)
		}
		entries, err := readManifest(fsys, m)
		if err != nil {
			de := &DamageError{Table: name, Kind: FileManifest, Path: m.FilePath(), Records: -1}
			if m.AddedRows() >= 0 && m.ExistingRows() >= 0 {
				de.Records = m.AddedRows() + m.ExistingRows()
			}
			d := damaged(fsys, de, m.Length(), err)
			if d == nil {
				return nil, fmt.Errorf("iceberg: scan %s: read manifest %s: %w", name, m.FilePath(), err)
			}
			found = true
			if onDamage == nil {
				return nil, d
			}
			if err := onDamage(de); err != nil {
				return nil, err
			}
			continue
		}
		for _, e := range entries {
			if df := e.DataFile(); df.ContentType() == ice.EntryContentData {
				tasks = append(tasks, table.FileScanTask{File: df, Length: df.FileSizeBytes()})
			}
		}
	}
	if !found {
		return nil, failed
	}
	return tasks, nil
}

// scanMessage is a batch of one task, or the error that ended it (rec nil), or its end.
type scanMessage struct {
	task int
	rec  arrow.RecordBatch
	err  error
	done bool
}

// readTasks reads tasks a file at a time on a few goroutines and calls fn for each batch
// in the caller's goroutine. A file that fails is judged by damaged: damage goes to
// onDamage (nil: it ends the scan), a passing failure ends the scan.
func readTasks(ctx context.Context, name string, fsys iceio.IO, scan *table.Scan, schema *ice.Schema, tasks []table.FileScanTask,
	onDamage func(*DamageError) error, fn func(arrow.RecordBatch) error) error {
	if len(tasks) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	out := make(chan scanMessage)
	var g errgroup.Group
	g.Go(func() error { // hands out the tasks in plan order
		defer close(next)
		for i := range tasks {
			select {
			case next <- i:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	workers := min(len(tasks), max(2, runtime.GOMAXPROCS(0)))
	var readers sync.WaitGroup
	for range workers {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			send := func(m scanMessage) bool {
				select {
				case out <- m:
					return true
				case <-ctx.Done():
					if m.rec != nil {
						m.rec.Release()
					}
					return false
				}
			}
			for i := range next {
				_, batches, err := scan.ReadTasks(ctx, tasks[i:i+1])
				if err != nil {
					if !send(scanMessage{task: i, err: err}) {
						return nil
					}
					continue
				}
				failed := false
				for rec, err := range batches {
					if err != nil {
						failed = true
						if !send(scanMessage{task: i, err: err}) {
							return nil
						}
						break
					}
					if !send(scanMessage{task: i, rec: rec}) {
						return nil
					}
				}
				if !failed && !send(scanMessage{task: i, done: true}) {
					return nil
				}
			}
			return nil
		})
	}
	go func() { readers.Wait(); close(out) }()

	read := make([]int64, len(tasks))
	var first error
	stop := func(err error) {
		if first == nil {
			first = err
			cancel()
		}
	}
	for m := range out {
		switch {
		case m.rec != nil:
			if first == nil {
				if err := fn(m.rec); err != nil {
					stop(err)
				}
				read[m.task] += m.rec.NumRows()
			}
			m.rec.Release()
		case m.err != nil && first == nil:
			df := tasks[m.task].File
			de := &DamageError{Table: name, Kind: FileData, Path: df.FilePath(), Records: df.Count(),
				Read: read[m.task], Source: sourceRange(schema, df)}
			switch d := damaged(fsys, de, df.FileSizeBytes(), m.err); {
			case d == nil:
				stop(retry.Tag(retry.Storage, fmt.Errorf("iceberg: scan %s: read %s: %w", name, df.FilePath(), m.err)))
			case onDamage == nil:
				stop(d)
			default:
				if err := onDamage(de); err != nil {
					stop(err)
				}
			}
		}
	}
	_ = g.Wait() // every goroutine has returned once out is closed and drained
	if first == nil {
		first = ctx.Err()
	}
	return first
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
