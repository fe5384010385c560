package iceberg

import (
	"context"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// TestPartitionFilesMatchFanout: a partitioned table's rows written by writePartitions make
// the data files iceberg-go's fanout writer makes of the same batches: the same partition
// directories and values (nulls, times before 1970, the days of a month in one file), rows,
// Parquet bytes, column sizes, value and null counts and bounds. The files written
// ourselves are then committed and read back by ScanContract, every row once.
func TestPartitionFilesMatchFanout(t *testing.T) {
	custom := `key: id
hash: [id]
fields:
  - {name: id, type: string, required: true}
  - {name: cur, type: string}
  - {name: n, type: long}
  - {name: ts, type: timestamptz}
  - {name: amt, type: 'decimal(10,2)', required: true}
partition: ['identity(cur)', 'month(ts)', 'identity(n)']
report: {group_by: [cur], amount: amt, time: ts}
`
	var msgs []string
	curs := []string{`"cur":"USD",`, `"cur":"EUR",`, `"cur":null,`, ``}
	times := []string{`"ts":"2025-01-16T10:00:00Z"`, `"ts":"2025-01-31T23:59:59.999999Z"`, `"ts":"2025-02-01T00:00:00Z"`,
		`"ts":"1969-12-31T23:59:59Z"`, `"ts":"1969-11-30T00:00:00Z"`, `"ts":null`}
	ns := []string{`"n":-9223372036854775808,`, `"n":7,`, ``}
	for i := range 720 { // every combination, 54 days but 45 months
		msgs = append(msgs, fmt.Sprintf(`{"id":"P%04d",%s%s%s,"amt":%d.25}`, i, curs[i%len(curs)], ns[(i/4)%len(ns)], times[(i/12)%len(times)], i))
	}
	ct, err := ledger.ParseContract([]byte(custom))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("custom", func(t *testing.T) { checkPartitionFiles(t, ct, decodeAll(t, ct, 0, msgs...), 45) })
	t.Run("example", func(t *testing.T) {
		ct := exampleContract(t)
		rows := contractRows(t, ct, 6000)
		ts := ct.FieldIndex("event_timestamp")
		for i := range rows { // three days
			rows[i].Custom.Values[ts].Int += int64(i%3) * 86_400_000_000
		}
		checkPartitionFiles(t, ct, rows, 12) // 4 currencies
	})
}

func checkPartitionFiles(t *testing.T, ct *ledger.Contract, rows []ledger.Row, wantFiles int) {
	ctx := context.Background()
	cat := openSQLite(t)
	ident := table.Identifier{"pay", "ledger"}
	if _, _, err := cat.EnsureLedger(ctx, ident, ct); err != nil {
		t.Fatal(err)
	}
	sink, err := cat.NewContractSink(ctx, ident, testPipeline, ct)
	if err != nil {
		t.Fatal(err)
	}
	base := mustLoad(t, sink)
	tbl := sink.Table()
	enc, err := NewContractEncoder(nil, tbl.Schema(), ct)
	if err != nil {
		t.Fatal(err)
	}
	enc.splitBy(tbl.Spec())
	processed := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)

	recs, values := enc.EncodeSplit(rows, processed)
	if values == nil {
		t.Fatal("no partition values: the spec should be told apart")
	}
	parts := groupPartitions(tbl, recs, values)
	batches := make([]int, len(parts))
	for i, p := range parts {
		batches[i] = len(p.recs)
	}
	own, err := sink.writePartitions(ctx, tbl, parts)
	if err != nil {
		t.Fatal(err)
	}
	// The fanout writer's workers hand a partition's batches to its file in any order: the
	// bytes of a file of several batches depend on it.
	merged := map[string]bool{}
	for i, f := range own.Files() {
		merged[path.Dir(f.FilePath())] = batches[i] > 1
	}
	recs, _ = enc.EncodeSplit(rows, processed)
	fanout, err := sink.stageRecords(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Discard(ctx, fanout)

	byDir := func(files []ice.DataFile) map[string]ice.DataFile {
		m := map[string]ice.DataFile{}
		for _, f := range files {
			dir := path.Dir(f.FilePath())
			if _, dup := m[dir]; dup {
				t.Errorf("two files in %s", dir)
			}
			m[dir] = f
		}
		return m
	}
	got, want := byDir(own.Files()), byDir(fanout.Files())
	if len(got) != len(want) || len(got) != wantFiles {
		t.Fatalf("%d files, iceberg-go's writer %d, want %d: %v", len(got), len(want), wantFiles, keys(got))
	}
	for dir, w := range want {
		g, ok := got[dir]
		if !ok {
			t.Errorf("no file in %s (have %v)", dir, keys(got))
			continue
		}
		for _, c := range []struct {
			what      string
			got, want any
		}{
			{"partition", g.Partition(), w.Partition()},
			{"rows", g.Count(), w.Count()},
			{"value counts", g.ValueCounts(), w.ValueCounts()},
			{"null counts", g.NullValueCounts(), w.NullValueCounts()},
			{"NaN counts", g.NaNValueCounts(), w.NaNValueCounts()},
			{"lower bounds", g.LowerBoundValues(), w.LowerBoundValues()},
			{"upper bounds", g.UpperBoundValues(), w.UpperBoundValues()},
			{"split offsets", g.SplitOffsets(), w.SplitOffsets()},
			{"sort order", g.SortOrderID(), w.SortOrderID()},
			{"spec", g.SpecID(), w.SpecID()},
			{"content", g.ContentType(), w.ContentType()},
			{"format", g.FileFormat(), w.FileFormat()},
		} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: %s %v, iceberg-go's writer %v", dir, c.what, c.got, c.want)
			}
		}
		if !merged[dir] && (g.FileSizeBytes() != w.FileSizeBytes() || !reflect.DeepEqual(g.ColumnSizes(), w.ColumnSizes())) {
			t.Errorf("%s: %d bytes, columns %v; iceberg-go's writer %d, %v", dir, g.FileSizeBytes(), g.ColumnSizes(), w.FileSizeBytes(), w.ColumnSizes())
		}
	}

	if _, err := sink.Commit(ctx, base, own, engine.Commit{Pipeline: testPipeline, Batch: 1,
		Offsets: engine.Offsets{{Topic: "payments", Partition: 0}: int64(len(rows))}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	if err := cat.ScanContract(ctx, ident, 0, ct, func(r ledger.Row, _ time.Time) error {
		seen[fmt.Sprint(r.SourcePartition, "/", r.SourceOffset)]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if k := fmt.Sprint(r.SourcePartition, "/", r.SourceOffset); seen[k] != 1 {
			t.Errorf("row %s read %d times", k, seen[k])
		}
	}
	if len(seen) != len(rows) {
		t.Errorf("%d rows read, want %d", len(seen), len(rows))
	}
}

func keys(m map[string]ice.DataFile) []string {
	var k []string
	for d := range m {
		k = append(k, d)
	}
	sort.Strings(k)
	return k
}

// TestPartitionFilesAfterEvolution: a sink whose encoder was made for the table's earlier
// schema (another worker evolved the table since) leaves its batches to iceberg-go's
// writer, which writes them in the table's current schema (the new column as nulls), as
// it did before the sink wrote partition files itself.
func TestPartitionFilesAfterEvolution(t *testing.T) {
	ctx := context.Background()
	cat, ident, ct, sink := exampleLedger(t)
	enc, err := NewContractEncoder(nil, sink.Table().Schema(), ct)
	if err != nil {
		t.Fatal(err)
	}
	if !ownWriteOK(sink.Table(), enc.Schema()) {
		t.Fatal("the encoder's batches, of the table's schema, are not written by the sink")
	}
	evolved, err := ledger.ParseContract([]byte(strings.Replace(string(ct.YAML()), "partition:",
		"  - {name: channel, path: meta.channel, type: string}\npartition:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	tbl, _, err := cat.EnsureLedger(ctx, ident, evolved)
	if err != nil {
		t.Fatal(err)
	}
	channel, ok := tbl.Schema().FindFieldByName("channel")
	if !ok {
		t.Fatal("no channel column after the evolution")
	}
	mustLoad(t, sink) // the sink sees the new schema; its encoders are the old contract's
	if ownWriteOK(sink.Table(), enc.Schema()) {
		t.Error("batches of the schema before the evolution would be written by the sink")
	}
	st, err := sink.Stage(ctx, contractRows(t, ct, 1000), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Discard(ctx, st)
	files := st.(*Staged).Files()
	if len(files) != 4 {
		t.Fatalf("%d files, want 4 (one per currency)", len(files))
	}
	for _, f := range files {
		if f.NullValueCounts()[channel.ID] != f.Count() {
			t.Errorf("%s: null counts %v, want the new column %d all null", f.FilePath(), f.NullValueCounts(), channel.ID)
		}
	}
}
