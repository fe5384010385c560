package dedup

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// BenchmarkAdd records batches of 100,000 committed rows (the engine's call after each
// ledger commit): ids ascending as the generator makes them, and ids in no order (random
// 16 hex digits), on an index that already holds 1M ids. Besides the time it reports the
// process's CPU time per id (cpu-ns/id), background writes and merges included: on a
// shared machine that figure moves far less than the time.
func BenchmarkAdd(b *testing.B) {
	for _, random := range []bool{false, true} {
		b.Run(map[bool]string{false: "ascending", true: "random"}[random], func(b *testing.B) {
			const n, preload = 100_000, 1_000_000
			l := newFakeLedger()
			x := openIndex(b, filepath.Join(b.TempDir(), "ids.idx"), l)
			rng := rand.New(rand.NewPCG(3, 4))
			i := 0
			batch := func() []ledger.Row {
				if random {
					return randomRows(rng, n, int32(i%3), int64(i*n))
				}
				return rowsOf(i*n, n, int32(i%3), int64(i*n))
			}
			for i < preload/n {
				if err := x.Add(batch(), engine.TableState{SnapshotID: int64(i + 1)}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			quiesce(x)
			// The batches are made before the clock starts: making them (a SHA-256 and a
			// formatted id a row) costs more CPU than indexing them.
			batches := make([][]ledger.Row, b.N)
			for j := range batches {
				batches[j] = batch()
				i++
			}
			i -= b.N
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for j := 0; j < b.N; j++ {
				if err := x.Add(batches[j], engine.TableState{SnapshotID: int64(i + 1)}); err != nil {
					b.Fatal(err)
				}
				batches[j] = nil
				i++
			}
			quiesce(x)
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "ids/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/id")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprint("getrusage: ", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
