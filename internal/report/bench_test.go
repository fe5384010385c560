package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// BenchmarkBuilderAdd measures Add over a realistic table: distinct ids and hashes (so the
// sets grow as they do in production), 4 types × 3 currencies, times in no particular
// order. Every million rows the Builder starts over, so the figure is for tables of up to
// a million rows and memory stays bounded however large b.N gets.
func BenchmarkBuilderAdd(b *testing.B) {
	const tableRows = 1 << 20
	types := []string{"transfer", "payment", "withdrawal", "deposit"}
	currencies := []string{"USD", "EUR", "GBP"}
	base := time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)
	rows := make([]ledger.Row, tableRows)
	for i := range rows {
		id := fmt.Sprintf("TXN%08d", i)
		h := sha256.Sum256([]byte(id))
		rows[i] = ledger.Row{
			TransactionID:   id,
			AccountFrom:     fmt.Sprintf("ACC%04d", 1000+i%9000),
			AccountTo:       fmt.Sprintf("ACC%04d", 1000+(i*7)%9000),
			Amount:          int64(1000 + (i*7919)%999000),
			Currency:        currencies[i%3],
			TransactionType: types[(i/3)%4],
			TransactionHash: hex.EncodeToString(h[:]),
			// Scattered times: the latest-10 insertion path runs only now and then.
			EventTime:   base.Add(time.Duration((i*2654435761)%tableRows) * time.Microsecond),
			SourceTopic: "financial_transactions",
		}
	}
	processed := base.Add(time.Minute)

	for _, presized := range []bool{false, true} {
		b.Run(fmt.Sprintf("presized=%v", presized), func(b *testing.B) {
			fresh := func() *Builder {
				if presized {
					return NewBuilder(tableRows)
				}
				return &Builder{}
			}
			b.ReportAllocs()
			bld := fresh()
			b.ResetTimer()
			for i := range b.N {
				j := i % tableRows
				if j == 0 && i > 0 {
					b.StopTimer()
					bld = fresh()
					b.StartTimer()
				}
				bld.Add(rows[j], processed)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
