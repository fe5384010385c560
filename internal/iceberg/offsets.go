package iceberg

import (
	"slices"
	"strings"
)

// Snapshot summary keys of the exactly-once protocol (docs/design.md §4).
const (
	SummaryPipeline = "ledgerstream.pipeline"
	SummaryBatch    = "ledgerstream.batch"
	SummaryOffsets  = "ledgerstream.offsets"
	// SummaryClean is engine.Commit.Clean (ledger only): how far the rejects table is
	// known complete beyond its own offsets. Same format as SummaryOffsets; absent when nil.
	SummaryClean = "ledgerstream.clean"
	// SummaryTopicIDs is engine.Commit.TopicIDs (ledger only): the ids of the topics the
	// offsets were read from, {"topic":"id"} (Kafka topic ids, KIP-516). A topic deleted
	// and created again has another id, and the pipeline refuses to read it on.
	SummaryTopicIDs = "ledgerstream.topic-ids"
)

// PropertyPipelines is the table property in which maintenance's expiry records every
// pipeline whose newest snapshot it kept (comma-separated, sorted). Once older snapshots are
// gone, it is what tells a pipeline that never committed (it may start from its configured
// position) from one whose history was cut (engine.NeverCommitted).
const PropertyPipelines = "ledgerstream.pipelines"

// knownPipelines reads PropertyPipelines; recorded is false when the table has none.
func knownPipelines(props map[string]string) (known []string, recorded bool) {
	v, ok := props[PropertyPipelines]
	if !ok {
		return nil, false
	}
	for _, p := range strings.Split(v, ",") {
		if p != "" {
			known = append(known, p)
		}
	}
	return known, true
}

// withPipelines returns the PropertyPipelines value naming the pipelines already recorded
// in props and those of protected.
func withPipelines(props map[string]string, protected map[string]int64) string {
	known, _ := knownPipelines(props)
	for p := range protected {
		if !slices.Contains(known, p) {
			known = append(known, p)
		}
	}
	slices.Sort(known)
	return strings.Join(known, ",")
}
