package iceberg

import (
	"context"
	"fmt"
	"regexp"
	"syscall"
	"testing"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// generatedRows are n rows as the pipeline makes them from the generator's messages.
func generatedRows(n int) []ledger.Row {
	gen := ledger.NewGenerator(7, ledger.GeneratorOptions{})
	rules := ledger.DefaultRules()
	rows := make([]ledger.Row, n)
	for i := range rows {
		rows[i], _ = rules.Decode(gen.Next(time.Now()).Value)
		rows[i].SourceTopic, rows[i].SourcePartition, rows[i].SourceOffset = "financial_transactions", int32(i%3), int64(i/3)
	}
	return rows
}

// BenchmarkStage writes one batch of 100,000 ledger rows as Parquet data files (the
// engine's Stage, without the commit): the pipeline's largest cost per row. Besides the
// time it reports the process's CPU time per row (cpu-ns/row: Stage writes on every
// core), which moves far less than the time on a shared machine.
func BenchmarkStage(b *testing.B) {
	ctx := context.Background()
	sink := newSink(b, openSQLite(b))
	if _, err := sink.Load(ctx); err != nil {
		b.Fatal(err)
	}
	rows := generatedRows(100_000)
	cpu, files := stageEach(b, sink, rows)
	var size int64
	for _, f := range files {
		size += f.FileSizeBytes()
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(size)/float64(len(rows)), "file-bytes/row")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(rows)), "cpu-ns/row")
}

// stageEach stages rows once an iteration of b, discarding the files untimed, and returns
// the CPU time the stagings took and the last one's files.
func stageEach(b *testing.B, sink *Sink, rows []ledger.Row) (time.Duration, []ice.DataFile) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	var files []ice.DataFile
	for b.Loop() {
		cpu0 := cpuTime()
		staged, err := sink.Stage(ctx, rows, time.Now())
		cpu += cpuTime() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		files = staged.(*Staged).Files()
		if err := sink.Discard(ctx, staged); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	return cpu, files
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprint("getrusage: ", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommit commits batches of 10,000 staged rows, one after the other, to a table
// on the SQLite catalog: the conditional append with the offsets map, as the engine does it
// after staging (timed apart: staging is BenchmarkStage). It was TestCommitLatency, which
// only logged its figures.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	s := newSink(b, openSQLite(b))
	base := mustLoad(b, s)
	const n = 10_000
	var batch int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		rows := testRows("tx", 0, int(batch)*n, n)
		staged, err := s.Stage(ctx, rows, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		batch++
		b.StartTimer()
		base, err = s.Commit(ctx, base, staged, engine.Commit{Pipeline: testPipeline, Batch: batch,
			Offsets: engine.Offsets{{Topic: "tx", Partition: 0}: batch * n}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode builds the Arrow record batch of 100,000 ledger rows.
func BenchmarkEncode(b *testing.B) {
	enc, err := NewRowEncoder(nil)
	if err != nil {
		b.Fatal(err)
	}
	rows := generatedRows(100_000)
	b.ReportAllocs()
	for b.Loop() {
		enc.Encode(rows, time.Now()).Release()
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}

// contractRows are n rows of the example contract as the pipeline makes them from the
// contract generator's messages (one timestamp a second: the day and currency partitions
// the bench's data touch).
func contractRows(tb testing.TB, ct *ledger.Contract, n int) []ledger.Row {
	gen, err := ledger.NewGeneratorFor(ct, 7, ledger.GeneratorOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	rules := ledger.Rules{Contract: ct}
	rows := make([]ledger.Row, n)
	now := time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)
	for i := range rows {
		var rej *ledger.Reject
		if rows[i], rej = rules.Decode(gen.Next(now.Add(time.Duration(i) * time.Second)).Value); rej != nil {
			tb.Fatal(rej)
		}
		rows[i].SourceTopic, rows[i].SourcePartition, rows[i].SourceOffset = "payments", int32(i%3), int64(i/3)
	}
	return rows
}

// BenchmarkStageContract writes a staged part (25,000 rows, what a batch writes while it
// reads on) of the example contract's ledger, partitioned by day and currency as the
// example says and unpartitioned, and reports the CPU per row as BenchmarkStage does.
func BenchmarkStageContract(b *testing.B) {
	for _, partitioned := range []bool{true, false} {
		name := map[bool]string{true: "partitioned", false: "unpartitioned"}[partitioned]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			cat := openSQLite(b)
			ct := exampleContract(b)
			if !partitioned {
				var err error
				if ct, err = ledger.ParseContract(regexp.MustCompile(`(?m)^partition:.*$`).ReplaceAll(ct.YAML(), nil)); err != nil {
					b.Fatal(err)
				}
			}
			ident := table.Identifier{"pay", "ledger"}
			if _, _, err := cat.EnsureLedger(ctx, ident, ct); err != nil {
				b.Fatal(err)
			}
			sink, err := cat.NewContractSink(ctx, ident, testPipeline, ct)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sink.Load(ctx); err != nil {
				b.Fatal(err)
			}
			rows := contractRows(b, ct, 25_000)
			cpu, files := stageEach(b, sink, rows)
			b.ReportMetric(float64(len(files)), "files")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(rows)), "cpu-ns/row")
		})
	}
}

// BenchmarkEncodeContract builds the Arrow record batch of 25,000 rows of the example
// contract (Encode), and the batches of its partitions (split: EncodeSplit, as a partitioned
// table's part is encoded; the rows touch 4 partitions).
func BenchmarkEncodeContract(b *testing.B) {
	cat := openSQLite(b)
	ct := exampleContract(b)
	tbl, _, err := cat.EnsureLedger(context.Background(), table.Identifier{"pay", "ledger"}, ct)
	if err != nil {
		b.Fatal(err)
	}
	rows := contractRows(b, ct, 25_000)
	for _, split := range []bool{false, true} {
		b.Run(map[bool]string{false: "one", true: "split"}[split], func(b *testing.B) {
			enc, err := NewContractEncoder(nil, tbl.Schema(), ct)
			if err != nil {
				b.Fatal(err)
			}
			enc.splitBy(tbl.Spec())
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if !split {
					enc.Encode(rows, time.Now()).Release()
					continue
				}
				recs, _ := enc.EncodeSplit(rows, time.Now())
				for _, rec := range recs {
					rec.Release()
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*len(rows)), "cpu-ns/row")
		})
	}
}
