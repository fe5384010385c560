package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// View is the ledger and its rejects table as of one moment: the snapshot of each to read,
// and the history behind them. Report and verify read the tables through a View, so that
// the same code answers for now and for any past moment.
type View struct {
	cat   *iceberg.Catalog
	ident table.Identifier

	// AsOf is the moment asked for (zero: now).
	AsOf AsOf
	// Ledger is the ledger's snapshot as of the moment (zero SnapshotID: the table has no
	// snapshot, and is empty).
	Ledger iceberg.SnapshotInfo
	// History is main's history ending at Ledger, newest first (Ledger is History[0]).
	History []iceberg.SnapshotInfo

	// RejectsExists says whether the ledger has a rejects table (ledgers written before it
	// existed have none).
	RejectsExists bool
	// Rejects is the rejects table's snapshot as of the moment (zero SnapshotID: none yet).
	Rejects iceberg.SnapshotInfo
	// RejectsHistory is the rejects table's history ending at Rejects, newest first.
	RejectsHistory []iceberg.SnapshotInfo

	// Contract is the contract the ledger is written with (the default one for a table
	// that does not exist yet), Earlier the ones it was written with before, oldest first.
	Contract *ledger.Contract
	Earlier  []*ledger.Contract

	// damaged are the files ScanLedger and ScanRejects could not read (they go on
	// without them).
	damaged []report.DamagedFile
}

// Open reads the histories of the ledger ident and its rejects table and resolves a in
// them. A moment before the ledger's first snapshot, or a snapshot the history no longer
// holds, is a *HistoryError naming the oldest moment still available; so is a moment the
// rejects table's history no longer reaches.
func Open(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier, a AsOf) (*View, error) {
	v := &View{cat: cat, ident: ident, AsOf: a, Contract: ledger.DefaultContract()}
	history, err := cat.Snapshots(ctx, ident)
	if err != nil {
		return nil, err
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err == nil {
		if v.Contract, err = iceberg.TableContract(tbl); err != nil {
			return nil, err
		}
		if v.Earlier, err = iceberg.EarlierContracts(tbl); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, err
	}
	var moment time.Time // zero: now
	switch {
	case len(history) == 0 && !a.IsZero():
		return nil, &HistoryError{Table: identName(ident), AsOf: a}
	case len(history) > 0:
		i := 0
		if !a.IsZero() {
			if i, moment, err = resolve(identName(ident), history, a); err != nil {
				return nil, err
			}
		}
		v.Ledger, v.History = history[i], history[i:]
		if !a.IsZero() && tbl != nil {
			v.Contract = contractAt(tbl, v.Ledger.SnapshotID, v.Contract, v.Earlier)
		}
	}

	rident := iceberg.RejectsIdent(ident)
	rhistory, err := cat.Snapshots(ctx, rident)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return v, nil // a ledger written before the rejects table existed
	}
	if err != nil {
		return nil, err
	}
	v.RejectsExists = true
	if len(rhistory) == 0 {
		return v, nil
	}
	i := 0
	if !moment.IsZero() {
		var ok bool
		if i, ok = at(rhistory, moment); !ok {
			oldest := rhistory[len(rhistory)-1]
			if oldest.ParentID != 0 {
				// The rejects table had snapshots then, but they were expired.
				return nil, &HistoryError{Table: identName(rident), AsOf: AsOf{Time: moment}, Oldest: oldest, Expired: true}
			}
			return v, nil // the rejects table was still empty
		}
	}
	v.Rejects, v.RejectsHistory = rhistory[i], rhistory[i:]
	return v, nil
}

// Committed returns pipeline's offsets map and Clean map as of the view: those of its newest
// snapshot in the ledger's history (nil when it had committed nothing yet). The error wraps
// engine.ErrHistoryTruncated when the history was expired before any snapshot of pipeline.
func (v *View) Committed(pipeline string) (offsets, clean engine.Offsets, err error) {
	s, found, err := iceberg.NewestOfPipeline(v.History, pipeline)
	if err != nil {
		return nil, nil, fmt.Errorf("%s as of %s, pipeline %s: %w", identName(v.ident), v.AsOf, pipeline, err)
	}
	if !found {
		return nil, nil, nil
	}
	return s.Offsets, s.Clean, nil
}

// RejectsComplete returns, per partition, how far the rejects table is known complete for
// pipeline as of the view (engine.RejectsComplete of its own offsets map and the ledger's
// Clean map). Nil when there is no rejects table.
func (v *View) RejectsComplete(pipeline string) (map[report.TopicPartition]int64, error) {
	if !v.RejectsExists {
		return nil, nil
	}
	_, clean, err := v.Committed(pipeline)
	if err != nil {
		return nil, err
	}
	s, _, err := iceberg.NewestOfPipeline(v.RejectsHistory, pipeline)
	if err != nil {
		return nil, fmt.Errorf("%s as of %s, pipeline %s: %w", identName(iceberg.RejectsIdent(v.ident)), v.AsOf, pipeline, err)
	}
	complete := map[report.TopicPartition]int64{}
	for _, m := range []engine.Offsets{s.Offsets, clean} {
		for p := range m {
			if off, ok := engine.RejectsComplete(p, s.Offsets, clean); ok {
				complete[report.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = off
			}
		}
	}
	return complete, nil
}

// ScanLedger calls fn for every row of the ledger as of the view, read by its contract. A
// manifest or data file that cannot be read is skipped and recorded (DamagedFiles); a
// metadata file or manifest list that cannot be read ends the scan with a
// *iceberg.DamageError.
func (v *View) ScanLedger(ctx context.Context, fn func(row ledger.Row, processed time.Time) error) error {
	if v.Ledger.SnapshotID == 0 {
		return nil
	}
	return v.cat.ScanRowsOpts(ctx, v.ident, v.Contract, iceberg.ScanOptions{SnapshotID: v.Ledger.SnapshotID, OnDamage: v.damage}, fn)
}

// ScanRejects calls fn for every row of the rejects table as of the view; damaged files
// as ScanLedger.
func (v *View) ScanRejects(ctx context.Context, fn func(row ledger.RejectRow, rejectedAt time.Time) error) error {
	if v.Rejects.SnapshotID == 0 {
		return nil
	}
	return v.cat.ScanRejectsOpts(ctx, iceberg.RejectsIdent(v.ident), iceberg.ScanOptions{SnapshotID: v.Rejects.SnapshotID, OnDamage: v.damage}, fn)
}

// damage records a file a scan could not read.
func (v *View) damage(d *iceberg.DamageError) error {
	v.damaged = append(v.damaged, report.DamagedFile{Table: d.Table, Kind: d.Kind, Path: d.Path, Problem: d.Problem,
		Rows: d.Records, Read: d.Read, Source: d.Source, Hint: d.Hint()})
	return nil
}

// DamagedFiles lists the files the view's scans could not read so far ([] when none):
// their rows are missing from what the scans gave.
func (v *View) DamagedFiles() []report.DamagedFile {
	return append([]report.DamagedFile{}, v.damaged...)
}

// Report scans the view once and builds the report, with the rejects table's counts by
// reason when there is one.
func (v *View) Report(ctx context.Context) (*report.Report, error) {
	b := report.NewContractBuilder(v.Contract, 0)
	if err := v.ScanLedger(ctx, func(row ledger.Row, processed time.Time) error {
		b.Add(row, processed)
		return nil
	}); err != nil {
		return nil, err
	}
	rep := b.Report()
	if !v.RejectsExists {
		rep.Damaged = v.DamagedFiles()
		return rep, nil
	}
	var tally report.RejectTally
	if err := v.ScanRejects(ctx, func(row ledger.RejectRow, _ time.Time) error {
		tally.Add(row)
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Rejects = tally.Summary()
	rep.Damaged = v.DamagedFiles()
	return rep, nil
}

// contractAt is the contract a past snapshot of tbl was written with, as far as its schema
// tells: the newest of current and earlier (oldest first) whose every field is a column of
// the snapshot's schema. So a report as of a moment before an evolution added a column has
// the columns and report section of that moment; when none fits, the current one (columns
// the snapshot lacks read as null).
func contractAt(tbl *table.Table, snapshotID int64, current *ledger.Contract, earlier []*ledger.Contract) *ledger.Contract {
	if current.IsDefault() {
		return current
	}
	schema := iceberg.SnapshotSchema(tbl, snapshotID)
	fits := func(c *ledger.Contract) bool {
		for _, f := range c.Fields {
			if _, ok := schema.FindFieldByName(f.Name); !ok {
				return false
			}
		}
		return true
	}
	if fits(current) {
		return current
	}
	for i := len(earlier) - 1; i >= 0; i-- {
		if fits(earlier[i]) {
			return earlier[i]
		}
	}
	return current
}

// newestOf returns the newest snapshot of pipeline in history (newest first).
func newestOf(history []iceberg.SnapshotInfo, pipeline string) (iceberg.SnapshotInfo, bool) {
	for _, s := range history {
		if s.Pipeline == pipeline {
			return s, true
		}
	}
	return iceberg.SnapshotInfo{}, false
}

func identName(id table.Identifier) string { return strings.Join(id, ".") }
