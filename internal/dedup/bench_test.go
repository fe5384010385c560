package dedup

import (
	"path/filepath"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// BenchmarkAdd records batches of 100,000 committed rows (the engine's call after each
// ledger commit), ids ascending as the generator makes them.
func BenchmarkAdd(b *testing.B) {
	x := openIndex(b, filepath.Join(b.TempDir(), "ids.db"), newFakeLedger())
	const n = 100_000
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		rows := rowsOf(i*n, n, 0, int64(i*n))
		b.StartTimer()
		if err := x.Add(rows, engine.TableState{SnapshotID: int64(i + 1)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "ids/s")
}
