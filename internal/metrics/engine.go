package metrics

import (
	"slices"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// Engine collects the engine's running totals (engine.Stats), read at scrape time.
func Engine(st *engine.Stats) Collector {
	return CollectorFunc(func(e *Emitter) {
		e.Counter("ledgerstream_records_consumed_total", "Data records read from Kafka (control records excluded).", float64(st.Records.Load()))
		e.Counter("ledgerstream_records_accepted_total", "Rows committed to the ledger.", float64(st.Accepted.Load()))
		e.Counter("ledgerstream_records_replayed_total", "Records re-read that their table already held (after a restart).", float64(st.Replayed.Load()))
		e.Counter("ledgerstream_batches_total", "Batches committed.", float64(st.Batches.Load()))
		e.Counter("ledgerstream_commit_conflicts_total", "Commits refused because the table moved since the batch was planned.", float64(st.Conflicts.Load()))
		e.Counter("ledgerstream_batches_fenced_total", "Batches dropped because another writer had done their work.", float64(st.Fenced.Load()))
		e.Counter("ledgerstream_commit_unknown_total", "Commits whose outcome was unknown, settled by reading the table back.", float64(st.Unknown.Load()))
		byReason := st.RejectedBy()
		reasons := make([]ledger.Reason, 0, len(byReason))
		for r := range byReason {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		const help = "Records committed to the rejects table, by reason code."
		if len(reasons) == 0 {
			// An empty family still tells a dashboard the metric exists.
			e.family("ledgerstream_records_rejected_total", help, "counter")
		}
		for _, r := range reasons {
			e.Counter("ledgerstream_records_rejected_total", help, float64(byReason[r]), Label{"reason", string(r)})
		}
	})
}
