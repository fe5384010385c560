package dedup_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/dedup"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// countingLedger counts the rows the index reads through it.
type countingLedger struct {
	dedup.Ledger
	read int64
}

func (c *countingLedger) count(fn func(string, engine.Owner) error) func(string, engine.Owner) error {
	return func(id string, o engine.Owner) error { c.read++; return fn(id, o) }
}

func (c *countingLedger) ReadAdded(ctx context.Context, head int64, snaps []int64, fn func(string, engine.Owner) error) error {
	return c.Ledger.ReadAdded(ctx, head, snaps, c.count(fn))
}

func (c *countingLedger) ReadAll(ctx context.Context, head int64, fn func(string, engine.Owner) error) error {
	return c.Ledger.ReadAll(ctx, head, c.count(fn))
}

func rows(from, n int, part int32) []ledger.Row {
	out := make([]ledger.Row, n)
	for i := range out {
		id := fmt.Sprintf("TXN%08d", from+i)
		out[i] = ledger.Row{TransactionID: id, AccountFrom: "ACC1000", AccountTo: "ACC2000", Amount: 100,
			Currency: "EUR", TransactionType: "payment", TransactionHash: ledger.Hash(id, "ACC1000", "ACC2000", "1.00", "EUR"),
			SourceTopic: "tx", SourcePartition: part, SourceOffset: int64(from + i)}
	}
	return out
}

// commit appends rows to the ledger through the sink and returns the new state.
func commit(t *testing.T, s *iceberg.Sink, rs []ledger.Row) engine.TableState {
	t.Helper()
	return commitAt(t, s, rs, engine.Offsets{})
}

// openLedger opens a catalog in a temporary directory (closed with the test) and the sink of
// a new ledger table demo.ledger in it, for pipeline p.
func openLedger(t *testing.T) (string, *iceberg.Catalog, table.Identifier, *iceberg.Sink) {
	t.Helper()
	dir := t.TempDir()
	cat, err := iceberg.Open(context.Background(), iceberg.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	ident := table.Identifier{"demo", "ledger"}
	sink, err := cat.NewSink(context.Background(), ident, "p")
	if err != nil {
		t.Fatal(err)
	}
	return dir, cat, ident, sink
}

// TestWithIcebergLedger runs the index against a real ledger table: incremental syncs read
// exactly the rows of the new snapshots, through the ledger's manifests; a restart reads
// nothing it has; a replaced table makes it rebuild.
func TestWithIcebergLedger(t *testing.T) {
	ctx := context.Background()
	dir, cat, ident, sink := openLedger(t)
	l := &countingLedger{Ledger: cat.NewLedgerIDs(ident, sink)}
	path := filepath.Join(dir, "index", dedup.FileName("demo.ledger", "p", ""))
	x, err := dedup.Open(path, l, dedup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	commit(t, sink, rows(0, 1000, 0))
	commit(t, sink, nil) // an empty snapshot: offsets only
	st := commit(t, sink, rows(1000, 500, 1))
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if l.read != 1500 {
		t.Fatalf("first sync read %d rows, want 1500", l.read)
	}
	st = commit(t, sink, rows(1500, 250, 2))
	l.read = 0
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if l.read != 250 {
		t.Fatalf("incremental sync read %d rows, want 250", l.read)
	}
	o, ok, err := x.Lookup("TXN00001600")
	if err != nil || !ok || o.Partition.Partition != 2 || o.Offset != 1600 || o.Hash != ledger.Hash("TXN00001600", "ACC1000", "ACC2000", "1.00", "EUR") {
		t.Fatalf("lookup: %v %v %v", o, ok, err)
	}
	x.Close()

	// Restart: another process (a fresh catalog handle, no sink) commits, then we reopen.
	st = commit(t, sink, rows(1750, 10, 0))
	x, err = dedup.Open(path, l, dedup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	l.Ledger = cat.NewLedgerIDs(ident, nil)
	l.read = 0
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if l.read != 10 {
		t.Fatalf("restart read %d rows, want 10", l.read)
	}

	// The table is dropped and created again: the synced snapshot is gone.
	if err := cat.DropTable(ctx, ident, false); err != nil {
		t.Fatal(err)
	}
	sink, err = cat.NewSink(ctx, ident, "p")
	if err != nil {
		t.Fatal(err)
	}
	l.Ledger = cat.NewLedgerIDs(ident, sink)
	st = commit(t, sink, rows(9000, 7, 0))
	l.read = 0
	if err := x.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := x.Lookup("TXN00000001"); ok || l.read != 7 || x.Stats().Rebuilds != 1 {
		t.Fatalf("after replacement: old id found %v, read %d, stats %+v", ok, l.read, x.Stats())
	}
}
