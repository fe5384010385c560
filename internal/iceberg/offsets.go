package iceberg

// Snapshot summary keys of the exactly-once protocol (docs/design.md §4).
const (
	SummaryPipeline = "ledgerstream.pipeline"
	SummaryBatch    = "ledgerstream.batch"
	SummaryOffsets  = "ledgerstream.offsets"
	// SummaryClean is engine.Commit.Clean (ledger only): how far the rejects table is
	// known complete beyond its own offsets. Same format as SummaryOffsets; absent when nil.
	SummaryClean = "ledgerstream.clean"
)
