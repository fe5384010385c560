package iceberg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// Snapshot summary keys of the exactly-once protocol (DESIGN §4).
const (
	SummaryPipeline = "ledgerstream.pipeline"
	SummaryBatch    = "ledgerstream.batch"
	SummaryOffsets  = "ledgerstream.offsets"
	// SummaryClean is engine.Commit.Clean (ledger only): how far the rejects table is
	// known complete beyond its own offsets. Same format as SummaryOffsets; absent when nil.
	SummaryClean = "ledgerstream.clean"
)

// EncodeOffsets renders o as {"<topic>":{"<partition>":<next offset>,...},...}, Spark's
// offset format, with topics sorted and partitions in numeric order, so that equal maps give
// byte-equal summaries.
func EncodeOffsets(o engine.Offsets) string {
	byTopic := make(map[string][]int32)
	for p := range o {
		byTopic[p.Topic] = append(byTopic[p.Topic], p.Partition)
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	slices.Sort(topics)

	var b bytes.Buffer
	b.WriteByte('{')
	for i, t := range topics {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(t) // a string always marshals
		b.Write(name)
		b.WriteString(":{")
		parts := byTopic[t]
		slices.Sort(parts)
		for j, p := range parts {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('"')
			b.WriteString(strconv.FormatInt(int64(p), 10))
			b.WriteString(`":`)
			b.WriteString(strconv.FormatInt(o[engine.Partition{Topic: t, Partition: p}], 10))
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.String()
}

// DecodeOffsets parses what EncodeOffsets writes.
func DecodeOffsets(s string) (engine.Offsets, error) {
	var m map[string]map[string]int64
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("iceberg: offsets %q: %w", s, err)
	}
	o := make(engine.Offsets)
	for topic, parts := range m {
		for ps, off := range parts {
			p, err := strconv.ParseInt(ps, 10, 32)
			if err != nil || p < 0 {
				return nil, fmt.Errorf("iceberg: offsets %q: bad partition %q of topic %q", s, ps, topic)
			}
			if off < 0 {
				return nil, fmt.Errorf("iceberg: offsets %q: negative offset for %s/%d", s, topic, p)
			}
			o[engine.Partition{Topic: topic, Partition: int32(p)}] = off
		}
	}
	return o, nil
}
