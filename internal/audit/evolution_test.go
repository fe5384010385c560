package audit

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// TestReportAsOfAcrossEvolution: a report as of a snapshot from before a contract evolution
// that added a column answers with the columns and rows of that moment; right after the
// evolution (no snapshot has the column yet) and after new rows, with the evolved columns,
// the old rows reading null; the old columns keep their field ids throughout.
func TestReportAsOfAcrossEvolution(t *testing.T) {
	ctx := context.Background()
	cat, err := iceberg.Open(ctx, iceberg.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	ident := table.Identifier{"pay", "ledger"}
	yaml, err := os.ReadFile("../../examples/payments-contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := ledger.ParseContract(yaml)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ledger.ParseContract([]byte(strings.Replace(string(yaml), "partition:",
		"  - {name: channel, path: meta.channel, type: string}\npartition:", 1)))
	if err != nil {
		t.Fatal(err)
	}

	var offset int64
	commit := func(ct *ledger.Contract, batch int64, msgs ...string) int64 {
		t.Helper()
		if _, _, err := cat.EnsureLedger(ctx, ident, ct); err != nil {
			t.Fatal(err)
		}
		sink, err := cat.NewContractSink(ctx, ident, "p", ct)
		if err != nil {
			t.Fatal(err)
		}
		base, err := sink.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rules := ledger.Rules{Contract: ct}
		var rows []ledger.Row
		for _, m := range msgs {
			r, rej := rules.Decode([]byte(m))
			if rej != nil {
				t.Fatalf("%s: %v", m, rej)
			}
			r.SourceTopic, r.SourceOffset = "payments", offset
			offset++
			rows = append(rows, r)
		}
		staged, err := sink.Stage(ctx, rows, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		st, err := sink.Commit(ctx, base, staged, engine.Commit{Pipeline: "p", Batch: batch,
			Offsets: engine.Offsets{{Topic: "payments", Partition: 0}: offset}})
		if err != nil {
			t.Fatal(err)
		}
		return st.SnapshotID
	}
	msg := func(id, extra string) string {
		return fmt.Sprintf(`{"id":"%s","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},`+
			`"amount":{"value":"10.50","currency":"USD"},"created_at":"2025-01-16T10:00:00Z"%s}`, id, extra)
	}
	before := commit(v1, 1, msg("P1", ""), msg("P2", ""))
	ids := func(snapshotID int64) map[string]int {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, f := range iceberg.SnapshotSchema(tbl, snapshotID).Fields() {
			m[f.Name] = f.ID
		}
		return m
	}
	idsBefore := ids(before)

	report := func(a AsOf) (cols []string, rows int64, latest map[string][]string) {
		t.Helper()
		v, err := Open(ctx, cat, ident, a)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := v.Report(ctx)
		if err != nil {
			t.Fatalf("report as of %s: %v", a, err)
		}
		latest = map[string][]string{}
		for _, l := range rep.Latest {
			latest[l.Values[0]] = l.Values
		}
		return rep.Columns, rep.Rows, latest
	}
	v1Cols := []string{"payment_id", "payer", "payee", "amount", "currency", "merchant_id", "captured", "event_timestamp"}
	v2Cols := append(slices.Clone(v1Cols), "channel")

	// The evolution adds the column, but no snapshot has it yet.
	if _, _, err := cat.EnsureLedger(ctx, ident, v2); err != nil {
		t.Fatal(err)
	}
	if cols, rows, latest := report(AsOf{}); !slices.Equal(cols, v2Cols) || rows != 2 || latest["P1"][8] != "" {
		t.Fatalf("report right after the evolution: columns %v, %d rows, latest %v", cols, rows, latest)
	}

	commit(v2, 2, msg("P3", `,"meta":{"channel":"web"}`))
	if cols, rows, latest := report(AsOf{}); !slices.Equal(cols, v2Cols) || rows != 3 || latest["P3"][8] != "web" || latest["P1"][8] != "" {
		t.Fatalf("report now: columns %v, %d rows, latest %v", cols, rows, latest)
	}
	if cols, rows, latest := report(AsOf{SnapshotID: before}); !slices.Equal(cols, v1Cols) || rows != 2 || len(latest["P1"]) != len(v1Cols) || latest["P3"] != nil {
		t.Fatalf("report as of the snapshot before the evolution: columns %v, %d rows, latest %v", cols, rows, latest)
	}

	idsNow := ids(0)
	for name, id := range idsBefore {
		if idsNow[name] != id {
			t.Errorf("column %s: field id %d before the evolution, %d after", name, id, idsNow[name])
		}
	}
	if idsNow["channel"] == 0 || slices.Contains(mapsValues(idsBefore), idsNow["channel"]) {
		t.Errorf("channel has field id %d, want a new one (before: %v)", idsNow["channel"], idsBefore)
	}
}

func mapsValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
