package iceberg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

func TestRejectsIdent(t *testing.T) {
	got := RejectsIdent([]string{"a", "b", "ledger"})
	if strings.Join(got, ".") != "a.b.ledger_rejects" {
		t.Fatalf("RejectsIdent = %v", got)
	}
}

// TestRejectsRoundTrip writes rejects of every shape (binary values, headers with repeated
// keys, null and empty values, tombstones, an oversized value cut with the SHA-256 of the
// whole) through the sink and reads them back unchanged.
func TestRejectsRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s, err := c.NewRejectSink(ctx, testIdent(), testPipeline)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "demo.transactions_ledger_rejects" {
		t.Fatalf("name %s", s.Name())
	}
	big := bytes.Repeat([]byte{0xff, 0x00, 'x'}, 100_000) // 300 kB, not UTF-8
	ts := time.Date(2025, 1, 16, 10, 0, 0, 123456000, time.UTC)
	rej := func(reason ledger.Reason, id string) *ledger.Reject {
		return &ledger.Reject{Reason: reason, Message: "because " + string(reason), TransactionID: id}
	}
	rows := []ledger.RejectRow{
		ledger.NewRejectRow("tx", 0, 5, []byte("k1"), []byte("{not json\x00\xff"), []ledger.Header{
			{Key: "h", Value: []byte{0, 1, 2}}, {Key: "h", Value: nil}, {Key: "é", Value: []byte{}},
		}, ts, rej(ledger.ReasonMalformedJSON, "")),
		ledger.NewRejectRow("tx", 1, 7, nil, nil, nil, ts, rej(ledger.ReasonTombstone, "")),
		ledger.NewRejectRow("tx", 2, 9, []byte{}, []byte{}, nil, time.Time{}, rej(ledger.ReasonMalformedJSON, "")),
		ledger.NewRejectRow("tx", 2, 10, []byte("TXN1"), big, nil, ts, rej(ledger.ReasonTooLarge, "TXN1")),
		ledger.NewRejectRow("tx", 0, 6, []byte("TXN2"), []byte(`{"transaction_id":"TXN2"}`), nil, ts, rej(ledger.ReasonDuplicate, "TXN2")),
		ledger.NewGapRow("tx", 1, 0, 6, "offsets 0-6 deleted before processing"),
	}
	if n := len(rows[3].Value); n != ledger.MaxRejectValueBytes {
		t.Fatalf("oversized value kept %d bytes", n)
	}
	st0, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	processed := time.Date(2025, 1, 16, 11, 0, 0, 987654321, time.UTC)
	staged, err := s.Stage(ctx, rows, processed)
	if err != nil {
		t.Fatal(err)
	}
	offs := engine.Offsets{{Topic: "tx", Partition: 0}: 7, {Topic: "tx", Partition: 1}: 8, {Topic: "tx", Partition: 2}: 11}
	st1, err := s.Commit(ctx, st0, staged, engine.Commit{Pipeline: testPipeline, Batch: 1, Offsets: offs})
	if err != nil {
		t.Fatal(err)
	}
	if st1.Batch != 1 || len(st1.Offsets) != 3 {
		t.Fatalf("state %+v", st1)
	}

	got := map[int64]ledger.RejectRow{}
	err = c.ScanRejects(ctx, RejectsIdent(testIdent()), 0, func(r ledger.RejectRow, at time.Time) error {
		if !at.Equal(processed.Truncate(time.Microsecond)) {
			t.Errorf("rejected_at %v, want %v", at, processed)
		}
		got[r.SourceOffset] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d rejects, want %d", len(got), len(rows))
	}
	for _, w := range rows {
		g := got[w.SourceOffset]
		if !reflect.DeepEqual(g, w) {
			t.Errorf("reject at offset %d read back\n got %+v\nwant %+v", w.SourceOffset, g, w)
		}
	}
	whole := sha256.Sum256(big)
	if g := got[10]; g.ValueSize != int64(len(big)) || g.ValueSHA256 != hex.EncodeToString(whole[:]) {
		t.Errorf("oversized: size %d sha %s", g.ValueSize, g.ValueSHA256)
	}
	if g := got[7]; g.Value != nil || g.Key != nil || g.ValueSHA256 != "" {
		t.Errorf("tombstone read back as %+v", g)
	}
	if g := got[9]; g.Value == nil || g.Key == nil {
		t.Errorf("empty key and value read back as null: %+v", g)
	}
	if g := got[0]; !g.IsGap() || g.LastOffset != 6 || g.Offsets() != 7 {
		t.Errorf("gap row read back as %+v", g)
	}
	if g := got[5]; g.IsGap() || g.LastOffset != 0 {
		t.Errorf("a message's reject read back with a last offset: %+v", g)
	}

	// A reopened sink sees the state; the ledger sink of the same name is another table.
	s2, err := c.NewRejectSink(ctx, testIdent(), testPipeline)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s2.Load(ctx); err != nil || st.SnapshotID != st1.SnapshotID || st.Offsets[engine.Partition{Topic: "tx", Partition: 2}] != 11 {
		t.Fatalf("reloaded %+v, %v", st, err)
	}
	if st, err := newSink(t, c).Load(ctx); err != nil || st.SnapshotID != 0 {
		t.Fatalf("ledger state %+v, %v", st, err)
	}
}

// TestRejectsTableEvolves: a rejects table created before source_offset_last existed gets
// the column, by schema evolution, with the id a new table gets; its old snapshots still
// scan.
func TestRejectsTableEvolves(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	ident := RejectsIdent(testIdent())
	old, err := c.EnsureTable(ctx, ident, rejectsBaseSchema())
	if err != nil {
		t.Fatal(err)
	}
	txn := old.NewTransaction()
	if err := txn.AddFiles(ctx, nil, nil, true); err != nil {
		t.Fatal(err)
	}
	old, err = txn.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldSnap := old.CurrentSnapshot().SnapshotID
	if _, ok := old.Schema().FindFieldByName(ColSourceOffsetLast); ok {
		t.Fatal("the base schema already has the column")
	}
	for i := 0; i < 2; i++ { // the second time finds it done
		if _, err := c.NewRejectSink(ctx, testIdent(), testPipeline); err != nil {
			t.Fatal(err)
		}
	}
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := tbl.Schema().FindFieldByName(ColSourceOffsetLast)
	if !ok || f.ID != 17 || f.Required {
		t.Fatalf("evolved column %+v, %v; schema %s", f, ok, tbl.Schema())
	}
	if n := len(tbl.Metadata().Schemas()); n != 2 {
		t.Fatalf("%d schemas after evolving twice, want 2", n)
	}
	if err := c.ScanRejects(ctx, ident, oldSnap, func(ledger.RejectRow, time.Time) error { return nil }); err != nil {
		t.Fatalf("scan of a snapshot from before the column: %v", err)
	}

	// A table created now ends with the same ids.
	fresh := RejectsIdent([]string{"demo", "other"})
	if _, err := c.NewRejectSink(ctx, []string{"demo", "other"}, testPipeline); err != nil {
		t.Fatal(err)
	}
	tbl, err = c.LoadTable(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSchema(tbl.Schema(), RejectsSchema()); err != nil {
		t.Fatalf("new table: %v", err)
	}
}

// Workers that start together race to add the rejects table's new columns: the loser's
// conflict is marked temporary, for the caller's retry policy (there is no other retry
// loop), and its next attempt finds the columns there. On PostgreSQL too when available
// (its compare-and-swap commit is the one a shared catalog has).
func TestRejectsTableEvolutionRace(t *testing.T) {
	cats := map[string]*Catalog{"sqlite": openSQLite(t)}
	if os.Getenv("LEDGERSTREAM_TEST_POSTGRES") != "" {
		cats["postgres"] = openPostgres(t)
	}
	for name, c := range cats {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ident := RejectsIdent(testIdent())
			stale, err := c.EnsureTable(ctx, ident, rejectsBaseSchema())
			if err != nil {
				t.Fatal(err)
			}
			// The winner evolves the table after the loser loaded it.
			if _, err := c.EnsureRejectsTable(ctx, ident); err != nil {
				t.Fatal(err)
			}
			_, err = addRejectsColumns(ctx, ident, stale)
			if err == nil || !retry.IsKnownTemporary(err) || !strings.Contains(err.Error(), "add columns source_offset_last") {
				t.Fatalf("the loser's commit: %v, want a conflict marked temporary", err)
			}
			tbl, err := c.EnsureRejectsTable(ctx, ident) // the policy's next attempt
			if err != nil {
				t.Fatal(err)
			}
			if n := len(tbl.Metadata().Schemas()); n != 2 {
				t.Errorf("%d schemas after the race, want 2", n)
			}
		})
	}
}
