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
		e.Counter("ledgerstream_gaps_recorded_total", "Gaps committed to the rejects table (run --on-gap record): ranges of offsets deleted from the topic before the pipeline read them.", float64(st.Gaps.Load()))
		e.Counter("ledgerstream_offsets_lost_before_processing_total", "Offsets in the gaps committed to the rejects table: records deleted before the pipeline read them.", float64(st.LostOffsets.Load()))
		e.Counter("ledgerstream_gaps_refused_total", "Gaps the pipeline stopped at (run --on-gap fail): records deleted before it read them.", float64(st.GapsRefused.Load()))
		changed := 0.0
		if st.TopicChanged.Load() {
			changed = 1
		}
		e.Gauge("ledgerstream_topic_changed", "1 once the topic was found not to be the one the tables' offsets name (re-created, shrunk, truncated): the pipeline stopped.", changed)
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
