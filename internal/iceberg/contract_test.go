package iceberg

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// exampleLedger opens a SQLite catalog holding the example contract's ledger pay.ledger
// (partitioned by day and currency) and a sink of testPipeline on it.
func exampleLedger(t *testing.T) (*Catalog, table.Identifier, *ledger.Contract, *Sink) {
	t.Helper()
	ctx := context.Background()
	cat := openSQLite(t)
	ident := table.Identifier{"pay", "ledger"}
	ct := exampleContract(t)
	if _, _, err := cat.EnsureLedger(ctx, ident, ct); err != nil {
		t.Fatal(err)
	}
	sink, err := cat.NewContractSink(ctx, ident, testPipeline, ct)
	if err != nil {
		t.Fatal(err)
	}
	return cat, ident, ct, sink
}

func exampleContract(t testing.TB) *ledger.Contract {
	t.Helper()
	data, err := os.ReadFile("../../examples/payments-contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ledger.ParseContract(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContractSchema(t *testing.T) {
	// The default contract, even as a file, is the notebook's table.
	def, err := ledger.ParseContract([]byte(ledger.DefaultContractYAML()))
	if err != nil {
		t.Fatal(err)
	}
	if s := ContractSchema(def); !s.Equals(LedgerSchema()) {
		t.Fatalf("default contract schema:\n%s\nwant\n%s", s, LedgerSchema())
	}
	spec, err := ContractPartitionSpec(def, LedgerSchema())
	if err != nil || !spec.IsUnpartitioned() {
		t.Fatalf("default contract partition spec %v %v", spec, err)
	}

	c := exampleContract(t)
	s := ContractSchema(c)
	want := []struct {
		name     string
		typ      ice.Type
		required bool
	}{
		{"payment_id", ice.PrimitiveTypes.String, true},
		{"payer", ice.PrimitiveTypes.String, true},
		{"payee", ice.PrimitiveTypes.String, true},
		{"amount", ice.DecimalTypeOf(18, 2), true},
		{"currency", ice.PrimitiveTypes.String, true},
		{"merchant_id", ice.PrimitiveTypes.Int64, false},
		{"captured", ice.PrimitiveTypes.Bool, false},
		{"event_timestamp", ice.PrimitiveTypes.TimestampTz, true},
		{ColTransactionHash, ice.PrimitiveTypes.String, true},
		{ColExtras, ice.PrimitiveTypes.String, false},
		{ColProcessingTime, ice.PrimitiveTypes.TimestampTz, false},
		{ColSourceTopic, ice.PrimitiveTypes.String, true},
		{ColSourcePartition, ice.PrimitiveTypes.Int32, true},
		{ColSourceOffset, ice.PrimitiveTypes.Int64, true},
	}
	if len(s.Fields()) != len(want) {
		t.Fatalf("schema:\n%s", s)
	}
	for i, f := range s.Fields() {
		w := want[i]
		if f.ID != i+1 || f.Name != w.name || !f.Type.Equals(w.typ) || f.Required != w.required {
			t.Errorf("field %d: %d %s %s required=%v, want %s %s required=%v", i, f.ID, f.Name, f.Type, f.Required, w.name, w.typ, w.required)
		}
	}
	spec, err = ContractPartitionSpec(c, s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range spec.Fields() {
		src, _ := s.FindColumnName(f.SourceID())
		got = append(got, f.Name+"="+f.Transform.String()+"("+src+")")
		if f.FieldID < 1000 {
			t.Errorf("partition field %s has id %d", f.Name, f.FieldID)
		}
	}
	if len(got) != 2 || got[0] != "event_timestamp_day=day(event_timestamp)" || got[1] != "currency=identity(currency)" {
		t.Fatalf("partition spec %v", got)
	}
}

// decodeAll decodes messages with contract ct, failing on a reject, and numbers their
// source offsets from first.
func decodeAll(t testing.TB, ct *ledger.Contract, first int64, msgs ...string) []ledger.Row {
	t.Helper()
	rules := ledger.Rules{Contract: ct}
	var rows []ledger.Row
	for i, m := range msgs {
		r, rej := rules.Decode([]byte(m))
		if rej != nil {
			t.Fatalf("%s: %v", m, rej)
		}
		r.SourceTopic, r.SourcePartition, r.SourceOffset = "payments", 0, first+int64(i)
		rows = append(rows, r)
	}
	return rows
}

// TestContractTableRoundTrip writes a ledger with the example contract (partitioned by day
// and currency), reads it back by ScanContract, then evolves the contract (a new optional
// field, a new enum value, unknown_fields) and checks that the old rows read the new column
// as null, the field ids of the old columns did not move, and a refused evolution changes
// nothing.
func TestContractTableRoundTrip(t *testing.T) {
	ctx := context.Background()
	cat := openSQLite(t)
	ident := table.Identifier{"pay", "ledger"}
	ct := exampleContract(t)
	tbl, got, err := cat.EnsureLedger(ctx, ident, ct)
	if err != nil || got != ct {
		t.Fatalf("ensure ledger: %v", err)
	}
	if spec := tbl.Spec(); spec.NumFields() != 2 {
		t.Fatalf("partition spec %v", spec)
	}
	sink, err := cat.NewContractSink(ctx, ident, testPipeline, ct)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(id, cur, day, extra string) string {
		return `{"id":"` + id + `","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},"amount":{"value":"10.5","currency":"` + cur +
			`"},"merchant":{"id":7},"created_at":"2025-01-` + day + `T10:00:00Z"` + extra + `}`
	}
	rows := decodeAll(t, ct, 0, msg("P1", "USD", "16", ""), msg("P2", "EUR", "16", `,"note":"x"`), msg("P3", "USD", "17", ""))
	st, err := stageCommit(t, sink, mustLoad(t, sink), rows, 1, engine.Offsets{{Topic: "payments", Partition: 0}: 3})
	if err != nil {
		t.Fatal(err)
	}
	// One file per partition the batch touched: (16, USD), (16, EUR), (17, USD).
	tbl, err = cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if n := tbl.CurrentSnapshot().Summary.Properties["added-data-files"]; n != "3" {
		t.Errorf("added data files = %s, want 3 (one per partition)", n)
	}

	read := func(c *ledger.Contract) map[string]ledger.Row {
		out := map[string]ledger.Row{}
		if err := cat.ScanContract(ctx, ident, 0, c, func(r ledger.Row, _ time.Time) error { out[r.TransactionID] = r; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	back := read(ct)
	if len(back) != 3 {
		t.Fatalf("read %d rows", len(back))
	}
	for _, r := range rows {
		b := back[r.TransactionID]
		if b.TransactionHash != r.TransactionHash || b.SourceOffset != r.SourceOffset || !b.EventTime.Equal(r.EventTime) ||
			!sameColumns(ct, b.Custom, r.Custom) {
			t.Errorf("%s read back as %+v %+v, wrote %+v %+v", r.TransactionID, b, b.Custom, r, r.Custom)
		}
	}
	if back["P2"].Custom.Extras != `{"note":"x"}` {
		t.Errorf("extras %q", back["P2"].Custom.Extras)
	}
	ids := func() map[string]int {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, f := range tbl.Schema().Fields() {
			m[f.Name] = f.ID
		}
		return m
	}
	before := ids()

	// Refused: another type; nothing changes.
	changed, err := ledger.ParseContract([]byte(strings.Replace(string(ct.YAML()), "type: long", "type: string", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.EnsureLedger(ctx, ident, changed); err == nil || !strings.Contains(err.Error(), `field "merchant_id" changes type from long to string`) ||
		!strings.Contains(err.Error(), "new table") {
		t.Fatalf("a type change: %v", err)
	}
	// Accepted: a new optional field, a new enum value.
	y := strings.Replace(string(ct.YAML()), "JPY]", "JPY, CHF]", 1)
	y = strings.Replace(y, "partition:", "  - {name: channel, path: meta.channel, type: string, enum: [web, pos]}\npartition:", 1)
	evolved, err := ledger.ParseContract([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := cat.EnsureLedger(ctx, ident, evolved); err != nil || got != evolved {
		t.Fatalf("evolve: %v", err)
	}
	after := ids()
	for name, id := range before {
		if after[name] != id {
			t.Errorf("column %s moved from id %d to %d", name, id, after[name])
		}
	}
	if after["channel"] <= 14 {
		t.Errorf("new column channel has id %d, want a new one", after["channel"])
	}
	// The table now keeps the evolved contract.
	tbl, _ = cat.LoadTable(ctx, ident)
	if kept, err := TableContract(tbl); err != nil || string(kept.YAML()) != string(evolved.YAML()) {
		t.Fatalf("kept contract: %v\n%s", err, kept.YAML())
	}
	// New rows with the new column and the new enum value; old rows read it as null.
	sink2, err := cat.NewContractSink(ctx, ident, testPipeline, evolved)
	if err != nil {
		t.Fatal(err)
	}
	rows2 := decodeAll(t, evolved, 3, msg("P4", "CHF", "18", `,"meta":{"channel":"web"}`))
	if _, err := stageCommit(t, sink2, st, rows2, 2, engine.Offsets{{Topic: "payments", Partition: 0}: 4}); err != nil {
		t.Fatal(err)
	}
	back = read(evolved)
	ch := evolved.FieldIndex("channel")
	if len(back) != 4 || back["P1"].Custom.Values[ch].Valid || back["P4"].Custom.Str(ch) != "web" {
		t.Fatalf("after evolution: %d rows, P1 channel %+v, P4 channel %+v", len(back), back["P1"].Custom.Values[ch], back["P4"].Custom.Values[ch])
	}
	// The index reads the contract's key column.
	var keys []string
	err = cat.NewContractLedgerIDs(ident, nil, evolved).ReadAll(ctx, mainSnapshotID(tbl.Metadata()), func(id string, _ engine.Owner) error {
		keys = append(keys, id)
		return nil
	})
	if err != nil || len(keys) != 3 {
		t.Fatalf("ids %v %v", keys, err)
	}
}

func TestEvolve(t *testing.T) {
	base := exampleContract(t)
	y := string(base.YAML())
	cases := []struct {
		name, from, to, want string
	}{
		{"key", "key: payment_id", "key: payer", `the key changes from "payment_id" to "payer"`},
		{"hash", "hash: [payment_id, payer, payee, amount, currency]", "hash: [payment_id, payer, amount, currency]", "the hash columns change"},
		{"removed", "  - name: captured\n    type: boolean\n", "", `field "captured" is removed`},
		{"type", "type: decimal(18,2)", "type: decimal(18,3)", `field "amount" changes type from decimal(18,2) to decimal(18,3)`},
		{"path", "path: payee.account", "path: payee.iban", `field "payee" changes its path`},
		{"new required", "partition:", "  - {name: fee, type: long, required: true}\npartition:", `new field "fee" is required`},
		{"partition", "day(event_timestamp)", "month(event_timestamp)", "partition evolution is not supported"},
		{"hash optional", "    path: payee.account\n    type: string\n    required: true\n", "    path: payee.account\n    type: string\n", "hash column \"payee\" must be required"},
		{"hash_as", "    type: decimal(18,2)\n", "    type: decimal(18,2)\n    hash_as: sent\n", `field "amount" changes hash_as`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(y, tc.from) {
				t.Fatalf("the example's YAML has no %q:\n%s", tc.from, y)
			}
			next, err := ledger.ParseContract([]byte(strings.Replace(y, tc.from, tc.to, 1)))
			if err == nil {
				_, err = Evolve(base, next)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a refusal saying %q, got %v", tc.want, err)
			}
		})
	}
	accepted := []struct{ name, from, to, want string }{
		{"enum value", "JPY]", "JPY, CHF]", `field "currency": enum`},
		{"relaxed pattern", "^ACC[0-9]{4,}$", "^ACC[0-9]{3,}$", `field "payer": pattern`},
		{"range", "min_exclusive: 0", "min: 0", "min 0 instead of none, min_exclusive none instead of 0"},
		{"made required", "    path: merchant.id\n    type: long\n", "    path: merchant.id\n    type: long\n    required: true\n", `field "merchant_id" becomes required`},
		{"unknown fields", "unknown_fields: keep", "unknown_fields: reject", "unknown_fields reject instead of keep"},
		{"new optional field", "partition:", "  - {name: channel, path: meta.channel, type: string}\npartition:", `new optional field "channel" (string, from meta.channel)`},
		{"enum value removed", "enum: [USD, EUR, GBP, JPY]", "enum: [USD, EUR, GBP]", `field "currency": enum`},
		{"length", "    path: payee.account\n    type: string\n", "    path: payee.account\n    type: string\n    max_length: 34\n", `field "payee": length 0 to 34 instead of 0 to 0`},
		{"made optional", "    path: created_at\n    type: timestamptz\n    required: true\n", "    path: created_at\n    type: timestamptz\n", `field "event_timestamp" becomes optional (its column too)`},
		{"report", "group_by: [currency]", "group_by: [currency, payer]", "another report section"},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(y, tc.from) {
				t.Fatalf("the example's YAML has no %q:\n%s", tc.from, y)
			}
			next, err := ledger.ParseContract([]byte(strings.Replace(y, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Evolve(base, next)
			if err != nil || !strings.Contains(strings.Join(ev.Changes, "; "), tc.want) {
				t.Fatalf("want an accepted change saying %q, got %v %v", tc.want, ev.Changes, err)
			}
			switch tc.name {
			case "new optional field":
				if len(ev.Added) != 1 || ev.Added[0].Name != "channel" {
					t.Errorf("added %v, want the channel column", ev.Added)
				}
			case "made optional":
				if !slices.Equal(ev.Optional, []string{"event_timestamp"}) {
					t.Errorf("optional %v, want the event_timestamp column", ev.Optional)
				}
			}
		})
	}
	// unknown_fields becoming keep adds the extras column.
	ignoring, err := ledger.ParseContract([]byte(strings.Replace(y, "unknown_fields: keep", "unknown_fields: ignore", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := Evolve(ignoring, base); err != nil || !ev.Extras {
		t.Errorf("ignore -> keep: %+v %v, want the extras column added", ev, err)
	}
}

// TestEncodeSplit: a partitioned table's rows are encoded as one batch per partition, each
// with its rows in their order, every row once; nulls and times before 1970 are partitions
// of their own; a transform it cannot tell apart (bucket) leaves one batch.
func TestEncodeSplit(t *testing.T) {
	src := `key: id
hash: [id]
fields:
  - {name: id, type: string, required: true}
  - {name: cur, type: string}
  - {name: ts, type: timestamptz}
  - {name: amt, type: 'decimal(10,2)', required: true}
partition: ['identity(cur)', 'day(ts)']
report: {group_by: [cur], amount: amt, time: ts}
`
	ct, err := ledger.ParseContract([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	curs := []string{`"cur":"USD",`, `"cur":"EUR",`, `"cur":null,`, ``}
	times := []string{`"ts":"2025-01-16T10:00:00Z"`, `"ts":"2025-01-16T23:59:59.999999Z"`, `"ts":"2025-01-17T00:00:00Z"`,
		`"ts":"1969-12-31T23:59:59Z"`, `"ts":"1969-12-31T00:00:00Z"`, `"ts":null`}
	for i := range 60 {
		msgs = append(msgs, `{"id":"P`+strings.Repeat("0", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26))+`",`+curs[i%len(curs)]+times[i%len(times)]+`,"amt":1}`)
	}
	rows := decodeAll(t, ct, 0, msgs...)
	partOf := func(r ledger.Row) string {
		cur, ts := r.Custom.Values[1], r.Custom.Values[2]
		p := "null"
		if cur.Valid {
			p = r.Custom.Str(1)
		}
		if ts.Valid {
			return p + "/" + time.UnixMicro(ts.Int).UTC().Format("2006-01-02")
		}
		return p + "/null"
	}
	want := map[string][]int64{} // partition -> offsets, in order
	for _, r := range rows {
		want[partOf(r)] = append(want[partOf(r)], r.SourceOffset)
	}

	enc := newSplitEncoder(t, ct)
	for range 2 { // the second time with the builders and maps of the first
		recs, values := enc.EncodeSplit(rows, time.Now())
		if len(recs) != len(want) || len(values) != len(recs) {
			t.Fatalf("%d batches, %d partition values, want %d (one per partition: %v)", len(recs), len(values), len(want), want)
		}
		seen := map[string]bool{}
		for bi, rec := range recs {
			var back []ledger.Row
			cur := rec.Column(enc.ice.Fields()[1].ID - 1).(*array.String)
			ts := rec.Column(2).(*array.Timestamp)
			off := rec.Column(int(rec.NumCols()) - 1).(*array.Int64)
			for i := range int(rec.NumRows()) {
				r := ledger.Row{Custom: &ledger.Columns{Values: make([]ledger.Value, 3)}, SourceOffset: off.Value(i)}
				if cur.IsValid(i) {
					r.Custom.Values[1] = ledger.Value{Valid: true}
					r.Custom.Values[1].SetStr(0, len(cur.Value(i)))
					r.Custom.Strings = cur.Value(i)
				}
				if ts.IsValid(i) {
					r.Custom.Values[2] = ledger.Value{Valid: true, Int: int64(ts.Value(i))}
				}
				back = append(back, r)
			}
			p := partOf(back[0])
			// The partition values as iceberg-go's writer gives them: the string, the
			// day as a Date; nil for a null.
			pcur, pday := "null", "null"
			if v, ok := values[bi][0].(string); ok {
				pcur = v
			} else if values[bi][0] != nil {
				t.Errorf("partition %s: currency value %T, want a string", p, values[bi][0])
			}
			if v, ok := values[bi][1].(ice.Date); ok {
				pday = time.Unix(int64(v)*86400, 0).UTC().Format("2006-01-02")
			} else if values[bi][1] != nil {
				t.Errorf("partition %s: day value %T, want an iceberg.Date", p, values[bi][1])
			}
			if pcur+"/"+pday != p {
				t.Errorf("batch of %s has partition values %v", p, values[bi])
			}
			var offs []int64
			for _, r := range back {
				if partOf(r) != p {
					t.Errorf("batch of %s holds a row of %s", p, partOf(r))
				}
				offs = append(offs, r.SourceOffset)
			}
			if seen[p] || !reflect.DeepEqual(offs, want[p]) {
				t.Errorf("partition %s: rows %v, want %v once", p, offs, want[p])
			}
			seen[p] = true
			rec.Release()
		}
	}

	// More partitions than maxSplit: one batch, split by the fanout writer.
	var many []string
	for i := range maxSplit + 1 {
		many = append(many, fmt.Sprintf(`{"id":"M%d","cur":"C%d","ts":"2025-01-16T10:00:00Z","amt":1}`, i, i))
	}
	if recs, values := enc.EncodeSplit(decodeAll(t, ct, 0, many...), time.Now()); len(recs) != 1 || recs[0].NumRows() != int64(len(many)) || values != nil {
		t.Errorf("%d partitions: %d batches, values %v, want 1 of %d rows, no values", len(many), len(recs), values, len(many))
	}

	// bucket: one batch, split by the fanout writer.
	bucketed, err := ledger.ParseContract([]byte(strings.Replace(src, "'identity(cur)'", "'bucket(4, cur)'", 1)))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ContractPartitionSpec(bucketed, enc.ice)
	if err != nil {
		t.Fatal(err)
	}
	enc.splitBy(spec)
	days := map[string]bool{}
	for p := range want {
		days[p[strings.Index(p, "/"):]] = true
	}
	if recs, values := enc.EncodeSplit(rows, time.Now()); len(recs) != len(days) || values != nil {
		t.Errorf("bucket(4, cur), day(ts): %d batches, values %v, want %d (the days only), no values", len(recs), values, len(days))
	}
}

// TestEvolveApplies: the accepted changes that touch the schema are applied in the table by
// EnsureLedger: a field made optional makes its column optional (rows without it are
// written), unknown_fields becoming keep adds the extras column (with a new field id, past
// rows read null), and the old columns keep their ids.
func TestEvolveApplies(t *testing.T) {
	ctx := context.Background()
	cat := openSQLite(t)
	ident := table.Identifier{"pay", "ledger"}
	y := string(exampleContract(t).YAML())
	strict, err := ledger.ParseContract([]byte(strings.NewReplacer("unknown_fields: keep", "unknown_fields: ignore",
		"    path: merchant.id\n    type: long\n", "    path: merchant.id\n    type: long\n    required: true\n").Replace(y)))
	if err != nil {
		t.Fatal(err)
	}
	tbl, _, err := cat.EnsureLedger(ctx, ident, strict)
	if err != nil {
		t.Fatal(err)
	}
	before := tbl.Schema()
	if f, _ := before.FindFieldByName("merchant_id"); !f.Required {
		t.Fatal("merchant_id is not a required column to begin with")
	}
	if _, ok := before.FindFieldByName(ColExtras); ok {
		t.Fatal("the extras column is there before unknown_fields: keep")
	}
	msg := func(id, merchant, extra string) string {
		return `{"id":"` + id + `","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},"amount":{"value":"10.5","currency":"USD"},` +
			merchant + `"created_at":"2025-01-16T10:00:00Z"` + extra + `}`
	}
	sink, err := cat.NewContractSink(ctx, ident, testPipeline, strict)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stageCommit(t, sink, mustLoad(t, sink), decodeAll(t, strict, 0, msg("P1", `"merchant":{"id":7},`, `,"note":"dropped"`)), 1,
		engine.Offsets{{Topic: "payments", Partition: 0}: 1})
	if err != nil {
		t.Fatal(err)
	}

	evolved := exampleContract(t)
	if tbl, _, err = cat.EnsureLedger(ctx, ident, evolved); err != nil {
		t.Fatal(err)
	}
	after := tbl.Schema()
	for _, f := range before.Fields() {
		g, ok := after.FindFieldByName(f.Name)
		if !ok || g.ID != f.ID {
			t.Errorf("column %s (id %d) is %+v after the evolution", f.Name, f.ID, g)
		}
	}
	if f, _ := after.FindFieldByName("merchant_id"); f.Required {
		t.Error("merchant_id is still a required column")
	}
	x, ok := after.FindFieldByName(ColExtras)
	if !ok || x.ID <= before.HighestFieldID() {
		t.Fatalf("extras column %+v, want a new one (ids up to %d taken)", x, before.HighestFieldID())
	}
	sink2, err := cat.NewContractSink(ctx, ident, testPipeline, evolved)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stageCommit(t, sink2, st, decodeAll(t, evolved, 1, msg("P2", "", `,"note":"kept"`)), 2,
		engine.Offsets{{Topic: "payments", Partition: 0}: 2}); err != nil {
		t.Fatal(err)
	}
	back := map[string]ledger.Row{}
	if err := cat.ScanContract(ctx, ident, 0, evolved, func(r ledger.Row, _ time.Time) error { back[r.TransactionID] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	mi := evolved.FieldIndex("merchant_id")
	if len(back) != 2 || back["P1"].Custom.Values[mi].Int != 7 || back["P1"].Custom.Extras != "" ||
		back["P2"].Custom.Values[mi].Valid || back["P2"].Custom.Extras != `{"note":"kept"}` {
		t.Fatalf("read back %d rows: P1 %+v, P2 %+v", len(back), back["P1"].Custom, back["P2"].Custom)
	}
}

// sameColumns reports whether two rows of contract ct have the same columns: the same
// values, wherever their strings are kept.
func sameColumns(ct *ledger.Contract, a, b *ledger.Columns) bool {
	if len(a.Values) != len(b.Values) || a.Extras != b.Extras {
		return false
	}
	for i, f := range ct.Fields {
		if a.Values[i].Valid != b.Values[i].Valid || a.Canonical(i, f.Type) != b.Canonical(i, f.Type) {
			return false
		}
	}
	return true
}

// TestEncodeMatchesBuilders: the encoder's batches, built in plain slices, equal batches
// built value by value with Arrow's builders, for every type, with nulls at every position
// of a validity byte (the first null at row 0, at row 9, none at all), an all-null column
// the contract no longer names, and no processing time; Encode and EncodeSplit alike.
func TestEncodeMatchesBuilders(t *testing.T) {
	src := `key: id
hash: [id]
fields:
  - {name: id, type: string, required: true}
  - {name: s, type: string}
  - {name: l, type: long}
  - {name: i, type: int}
  - {name: b, type: boolean}
  - {name: d, type: 'decimal(20,3)'}
  - {name: dt, type: date}
  - {name: ts, type: timestamptz}
  - {name: lt, type: timestamp}
partition: ['identity(s)']
unknown_fields: keep
report: {group_by: [s], amount: d, time: ts}
`
	ct, err := ledger.ParseContract([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	// The table has a column the contract no longer names.
	wider, err := ledger.ParseContract([]byte(strings.Replace(src, "partition:", "  - {name: gone, type: long}\npartition:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	schema := ContractSchema(wider)
	vals := []string{`"s":"ab"`, `"l":-9223372036854775808`, `"i":-7`, `"b":true`, `"d":"-123456789012345.678"`, `"dt":"1969-12-31"`,
		`"ts":"2025-01-16T10:00:00.5Z"`, `"lt":"2025-01-16T10:00:00"`}
	var msgs []string
	for n := range 40 {
		m := fmt.Sprintf(`{"id":"R%d"`, n)
		for k, v := range vals {
			switch {
			case n%(k+2) == 0: // absent
			case (n+k)%5 == 0:
				m += `,` + v[:strings.Index(v, ":")] + `:null`
			default:
				m += `,` + v
			}
		}
		if n%3 == 0 {
			m += `,"x":{"y":1}`
		}
		msgs = append(msgs, m+`}`)
	}
	full := `{"id":"F"`
	for _, v := range vals {
		full += `,` + v
	}
	full += `}`
	for _, first := range []int{0, 9, len(msgs)} { // rows before it: every field present
		var these []string
		for n, m := range msgs {
			if n < first {
				m = full
			}
			these = append(these, m)
		}
		rows := decodeAll(t, ct, 0, these...)
		enc, err := NewContractEncoder(nil, schema, ct)
		if err != nil {
			t.Fatal(err)
		}
		for _, processed := range []time.Time{time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC), {}} {
			got := enc.Encode(rows, processed)
			want := builderEncode(t, enc, rows, processed)
			if !array.RecordEqual(got, want) {
				t.Errorf("first %d rows, processed %v: Encode\n%v\nwant\n%v", first, processed, got, want)
			}
			got.Release()
			want.Release()
		}
	}
}

// TestEncodeSplitMatchesBuilders: EncodeSplit's batches, one per partition, equal the
// builder-made batches of each partition's rows in their order, over calls whose partitions
// change size (a batch reserves its partition's share of the last call and grows past it),
// appear (a batch of a partition not seen before starts small and doubles) and go; nulls
// before and after a batch grows.
func TestEncodeSplitMatchesBuilders(t *testing.T) {
	src := `key: id
hash: [id]
fields:
  - {name: id, type: string, required: true}
  - {name: s, type: string}
  - {name: l, type: long}
  - {name: b, type: boolean}
  - {name: d, type: 'decimal(20,3)'}
  - {name: ts, type: timestamptz}
partition: ['identity(s)']
unknown_fields: keep
report: {group_by: [s], amount: d, time: ts}
`
	ct, err := ledger.ParseContract([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	enc := newSplitEncoder(t, ct)
	// Each call: how many rows, and the partition (s) of row n.
	calls := []struct {
		rows int
		part func(n int) string
	}{
		{3000, func(n int) string { return []string{`"s":"a"`, `"s":"b"`, `"s":"b"`, `"s":"c"`}[n%4] }},
		{5000, func(n int) string { // a is now most rows: past its share of the first call
			if n%10 < 7 {
				return `"s":"a"`
			}
			return []string{`"s":"b"`, `"s":null`, ``}[n%3]
		}},
		{1200, func(n int) string { return fmt.Sprintf(`"s":"new%d"`, n/400) }}, // new ones, one after the other
		{700, func(n int) string { return `"s":"new1"` }},
	}
	for ci, call := range calls {
		var msgs []string
		for n := range call.rows {
			m := fmt.Sprintf(`{"id":"R%d"`, n)
			if p := call.part(n); p != "" {
				m += `,` + p
			}
			if n%7 != 0 && n < 2000 || n%11 == 0 { // l null at first every 7th row, then every 11th
				m += fmt.Sprintf(`,"l":%d`, n*1000003)
			}
			if n%5 != 0 {
				m += fmt.Sprintf(`,"b":%v`, n%3 == 0)
			}
			m += fmt.Sprintf(`,"d":"%d.%03d","ts":"2025-01-16T10:%02d:%02dZ"`, n, n%1000, n/60%60, n%60)
			if n%3 == 0 {
				m += fmt.Sprintf(`,"x":{"y":"%s"}`, strings.Repeat("z", n%50))
			}
			msgs = append(msgs, m+`}`)
		}
		rows := decodeAll(t, ct, 0, msgs...)
		processed := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
		if ci == 3 {
			processed = time.Time{}
		}
		recs, values := enc.EncodeSplit(rows, processed)
		var order []string // partitions, by first row
		byPart := map[string][]ledger.Row{}
		for _, r := range rows {
			p := "null"
			if r.Custom.Values[1].Valid {
				p = r.Custom.Str(1)
			}
			if _, ok := byPart[p]; !ok {
				order = append(order, p)
			}
			byPart[p] = append(byPart[p], r)
		}
		if len(recs) != len(order) || len(values) != len(recs) {
			t.Fatalf("call %d: %d batches, %d partition values, want %d", ci, len(recs), len(values), len(order))
		}
		for i, p := range order {
			want := builderEncode(t, enc, byPart[p], processed)
			if !array.RecordEqual(recs[i], want) {
				t.Errorf("call %d, partition %s: batch of %d rows\n%v\nwant %d rows", ci, p, recs[i].NumRows(), recs[i], want.NumRows())
			}
			if v := values[i][0]; (p == "null") != (v == nil) || v != nil && v.(string) != p {
				t.Errorf("call %d, partition %s: partition value %v", ci, p, v)
			}
			want.Release()
			recs[i].Release()
		}
	}
}

// builderEncode is what the encoder's batch must be, built with Arrow's builders.
func builderEncode(t *testing.T, e *ContractEncoder, rows []ledger.Row, processed time.Time) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, e.schema)
	defer b.Release()
	for ci, c := range e.cols {
		fb := b.Field(ci)
		for _, r := range rows {
			var v ledger.Value
			if c.kind >= encString {
				v = r.Custom.Values[c.field]
			}
			switch c.kind {
			case encNulls:
				fb.AppendNull()
			case encHash:
				fb.(*array.StringBuilder).Append(r.TransactionHash)
			case encExtras:
				if r.Custom.Extras == "" {
					fb.AppendNull()
				} else {
					fb.(*array.StringBuilder).Append(r.Custom.Extras)
				}
			case encProcessing:
				if processed.IsZero() {
					fb.AppendNull()
				} else {
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(processed.UnixMicro()))
				}
			case encTopic:
				fb.(*array.StringBuilder).Append(r.SourceTopic)
			case encPartition:
				fb.(*array.Int32Builder).Append(r.SourcePartition)
			case encOffset:
				fb.(*array.Int64Builder).Append(r.SourceOffset)
			default:
				if !v.Valid {
					fb.AppendNull()
					continue
				}
				switch c.kind {
				case encString:
					fb.(*array.StringBuilder).Append(r.Custom.Str(c.field))
				case encLong:
					fb.(*array.Int64Builder).Append(v.Int)
				case encInt:
					fb.(*array.Int32Builder).Append(int32(v.Int))
				case encBool:
					fb.(*array.BooleanBuilder).Append(v.Int != 0)
				case encDecimal:
					fb.(*array.Decimal128Builder).Append(decimal128.New(v.Hi, uint64(v.Int)))
				case encDate:
					fb.(*array.Date32Builder).Append(arrow.Date32(v.Int))
				case encTimestamp:
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(v.Int))
				default:
					t.Fatalf("column %d: kind %d", ci, c.kind)
				}
			}
		}
	}
	return b.NewRecordBatch()
}

// newSplitEncoder returns the encoder of a new table of contract ct, splitting by its
// partition spec as a partitioned sink's does.
func newSplitEncoder(t *testing.T, ct *ledger.Contract) *ContractEncoder {
	t.Helper()
	schema := ContractSchema(ct)
	spec, err := ContractPartitionSpec(ct, schema)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewContractEncoder(nil, schema, ct)
	if err != nil {
		t.Fatal(err)
	}
	enc.splitBy(spec)
	return enc
}
