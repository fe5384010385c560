package dedup_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/dedup"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// commitAt appends rows to the ledger with the pipeline's offsets map off.
func commitAt(t *testing.T, s *iceberg.Sink, rs []ledger.Row, off engine.Offsets) engine.TableState {
	t.Helper()
	ctx := context.Background()
	base, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	staged, err := s.Stage(ctx, rs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Commit(ctx, base, staged, engine.Commit{Pipeline: "p", Batch: base.Batch + 1, Offsets: off})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestScopedWithIcebergLedger: over a real ledger, a partition-scoped index reads only the
// snapshots whose summaries moved its partitions, and a partition it gains is back-filled
// with every row of it.
func TestScopedWithIcebergLedger(t *testing.T) {
	ctx := context.Background()
	dir, cat, ident, sink := openLedger(t)
	p0, p1 := engine.Partition{Topic: "tx", Partition: 0}, engine.Partition{Topic: "tx", Partition: 1}
	x, err := dedup.OpenScoped(filepath.Join(dir, "index", dedup.FileName("demo.ledger", "p", "w")),
		cat.NewLedgerIDs(ident, sink), dedup.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	sync := func(st engine.TableState) {
		t.Helper()
		if err := x.Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	st := commitAt(t, sink, rows(0, 100, 0), engine.Offsets{p0: 100})
	sync(st)
	if err := x.Cover(ctx, p0); err != nil {
		t.Fatal(err)
	}
	// Another worker's commit of p1 only: not read.
	st = commitAt(t, sink, rows(100, 50, 1), engine.Offsets{p0: 100, p1: 50})
	sync(st)
	if s := x.Stats(); s.Scanned != 100 || s.Skipped != 1 || s.RowsRead != 100 {
		t.Fatalf("after a commit of another partition: %+v, want 100 rows read and scanned, 1 snapshot skipped", s)
	}
	// A commit of p0 by another worker (p0 moved to it and back): read.
	st = commitAt(t, sink, rows(150, 20, 0), engine.Offsets{p0: 120, p1: 50})
	sync(st)
	if s := x.Stats(); s.Scanned != 120 || s.RowsRead != 120 {
		t.Fatalf("after a commit of p0: %+v, want 120 rows read and scanned", s)
	}
	// Gaining p1: back-filled with its 50 rows.
	if err := x.Cover(ctx, p1); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"TXN00000000", "TXN00000099", "TXN00000100", "TXN00000149", "TXN00000150", "TXN00000169"} {
		if _, ok, err := x.Lookup(id); err != nil || !ok {
			t.Errorf("lookup %s: %v %v", id, ok, err)
		}
	}
	if s := x.Stats(); s.RowsRead != 170 || s.Rows != 170 {
		t.Fatalf("after covering p1: %+v, want 170 ids", s)
	}
}
