package iceberg

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// scanIDs returns the keys of the rows ScanRowsWhere gives for filter, sorted.
func scanIDs(t *testing.T, c *Catalog, ident table.Identifier, ct *ledger.Contract, w Window) []string {
	t.Helper()
	filter, err := w.Filter(ct)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := c.ScanRowsWhere(context.Background(), ident, 0, ct, filter, func(r ledger.Row, _ time.Time) error {
		ids = append(ids, r.TransactionID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// matchIDs returns the keys of the rows of an unpruned scan that Window.Match keeps, sorted.
func matchIDs(t *testing.T, c *Catalog, ident table.Identifier, ct *ledger.Contract, w Window) []string {
	t.Helper()
	var ids []string
	if err := c.ScanRows(context.Background(), ident, 0, ct, func(r ledger.Row, _ time.Time) error {
		if w.Match(ct, &r) {
			ids = append(ids, r.TransactionID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// TestWindowPrunesPartitions writes the example contract's ledger (partitioned by
// day(event_timestamp) and currency) in three batches over three days and four currencies,
// and checks that a window on one day and one currency plans only that partition's files,
// fewer than the table has, and reads exactly the rows an unpruned scan filtered in Go keeps.
func TestWindowPrunesPartitions(t *testing.T) {
	ctx := context.Background()
	cat, ident, ct, sink := exampleLedger(t)
	currencies := []string{"USD", "EUR", "GBP", "JPY"}
	n := 0
	for batch := int64(1); batch <= 3; batch++ {
		var msgs []string
		for day := 16; day <= 18; day++ {
			for _, cur := range currencies {
				for h := range 2 {
					n++
					msgs = append(msgs, fmt.Sprintf(`{"id":"P%d","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},`+
						`"amount":{"value":"%d.25","currency":"%s"},"created_at":"2025-01-%02dT%02d:30:00Z"}`, n, n, cur, day, 11*h))
				}
			}
		}
		rows := decodeAll(t, ct, int64(n-len(msgs)), msgs...)
		if _, err := stageCommit(t, sink, mustLoad(t, sink), rows, batch, engine.Offsets{{Topic: "payments", Partition: 0}: int64(n)}); err != nil {
			t.Fatal(err)
		}
	}

	day17 := time.Date(2025, 1, 17, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		w     Window
		files int // of 36: 3 batches x 3 days x 4 currencies
		rows  int
	}{
		{"one day, one currency", Window{From: day17, To: day17.AddDate(0, 0, 1), Where: []Condition{{"currency", []string{"EUR"}}}}, 3, 6},
		{"one day", Window{From: day17, To: day17.AddDate(0, 0, 1)}, 12, 24},
		{"from a day on", Window{From: day17}, 24, 48},
		{"until a day", Window{To: day17}, 12, 24},
		{"two currencies", Window{Where: []Condition{{"currency", []string{"GBP", "JPY"}}}}, 18, 36},
		// Within a day: the partition cannot exclude the day's other rows, the rows are
		// filtered after reading (the hours 0 and 11 of Jan 17 only the first).
		{"part of a day", Window{From: day17, To: day17.Add(6 * time.Hour)}, 12, 12},
		{"everything", Window{}, 36, 72},
	}
	for _, tc := range cases {
		filter, err := tc.w.Filter(ct)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		plan, err := cat.PlanScan(ctx, ident, 0, filter)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Total != 36 || plan.Files != tc.files {
			t.Errorf("%s: plans %d of %d files, want %d of 36", tc.name, plan.Files, plan.Total, tc.files)
		}
		got, want := scanIDs(t, cat, ident, ct, tc.w), matchIDs(t, cat, ident, ct, tc.w)
		if len(want) != tc.rows || !slices.Equal(got, want) {
			t.Errorf("%s: pruned scan read %d rows %v,\nunpruned scan filtered in Go %d %v, want %d", tc.name, len(got), got, len(want), want, tc.rows)
		}
	}

	// What a window cannot be.
	for _, tc := range []struct {
		w    Window
		want string
	}{
		{Window{From: day17, To: day17}, "the window is empty"},
		{Window{Where: []Condition{{"payer", []string{"ACC1234"}}}}, "not one of the report's group_by columns (currency)"},
		{Window{Where: []Condition{{"currency", nil}}}, "no value"},
	} {
		if err := tc.w.Check(ct); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.w.Describe(ct), err, tc.want)
		}
	}
}

// TestWindowPrunesByStatistics: the notebook's ledger is not partitioned, but a time window
// still skips the data files whose event_timestamp bounds (Iceberg's column statistics)
// lie outside it, and a currency filter those whose currency bounds do.
func TestWindowPrunesByStatistics(t *testing.T) {
	cat := openSQLite(t)
	s := newSink(t, cat)
	ct := ledger.DefaultContract()
	// Three batches, each a file of its own day (testRows: one second per offset from
	// Jan 16 10:00, so offsets 0-99 on the 16th, 86400+ on the 17th, ...).
	for batch := int64(1); batch <= 3; batch++ {
		from := int(batch-1) * 86400
		rows := testRows("t", 0, from, 100)
		cur := []string{"GBP", "EUR", "USD"}[batch-1]
		for i := range rows {
			rows[i].Currency = cur
		}
		if _, err := stageCommit(t, s, mustLoad(t, s), rows, batch, engine.Offsets{{Topic: "t", Partition: 0}: int64(from + 100)}); err != nil {
			t.Fatal(err)
		}
	}
	ident := testIdent()
	day17 := time.Date(2025, 1, 17, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		w     Window
		files int
		rows  int
	}{
		{"one day", Window{From: day17, To: day17.AddDate(0, 0, 1)}, 1, 100},
		{"a currency", Window{Where: []Condition{{"currency", []string{"USD"}}}}, 1, 100},
		{"a day and another day's currency", Window{From: day17, To: day17.AddDate(0, 0, 1), Where: []Condition{{"currency", []string{"USD"}}}}, 0, 0},
		{"a type", Window{Where: []Condition{{"transaction_type", []string{"payment"}}}}, 3, 300},
	} {
		filter, err := tc.w.Filter(ct)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := cat.PlanScan(context.Background(), ident, 0, filter)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Total != 3 || plan.Files != tc.files {
			t.Errorf("%s: plans %d of %d files, want %d of 3", tc.name, plan.Files, plan.Total, tc.files)
		}
		got, want := scanIDs(t, cat, ident, ct, tc.w), matchIDs(t, cat, ident, ct, tc.w)
		if len(want) != tc.rows || !slices.Equal(got, want) {
			t.Errorf("%s: pruned scan read %d rows, unpruned scan filtered in Go %d, want %d", tc.name, len(got), len(want), tc.rows)
		}
	}
}
