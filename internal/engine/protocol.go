package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file holds the decisions of the exactly-once protocol (DESIGN §4) as pure functions:
// where a newly assigned partition starts, what a batch claims, and what to do after a
// commit fails. The loop in engine.go only feeds them and carries out their answers.

// Span is the part of one partition that a batch covers: the records from the table's
// committed offset From (the position the batch continues from) up to To (exclusive).
type Span struct {
	// From is the table's offset for the partition when the batch began reading it.
	// HasFrom is false when the table had no entry for the partition (first batch ever).
	From    int64
	HasFrom bool
	To      int64
}

// Claim is what a batch says it did: for each partition it covers, the span it read.
type Claim map[Partition]Span

// Ends returns the offsets the claim moves its partitions to.
func (c Claim) Ends() Offsets {
	o := make(Offsets, len(c))
	for p, s := range c {
		o[p] = s.To
	}
	return o
}

// Outcome is the verdict on a batch after its commit failed or its outcome is unknown.
type Outcome int

// The outcomes of Settle.
const (
	// Retry: the table still stands where the batch began on every partition it covers;
	// nobody took the work. Merge the offsets map and commit again.
	Retry Outcome = iota
	// Landed: the table already shows the batch's end on every partition (a commit whose
	// acknowledgement was lost). Nothing to redo.
	Landed
	// Fenced: someone else moved at least one of the partitions (a rebalance, or this
	// worker is a zombie). Drop the batch and its files and re-seek to the table.
	Fenced
)

func (o Outcome) String() string {
	switch o {
	case Retry:
		return "retry"
	case Landed:
		return "landed"
	case Fenced:
		return "fenced"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Settle decides what a batch's claim means against the table's current offsets map.
// It is the fencing rule: a batch may be committed only on top of the table state it
// continues from, partition by partition.
func Settle(claim Claim, current Offsets) (Outcome, []Partition) {
	atStart, atEnd := 0, 0
	var moved []Partition
	for p, s := range claim {
		off, ok := current[p]
		switch {
		case ok == s.HasFrom && (!ok || off == s.From):
			atStart++
		case ok && off == s.To:
			atEnd++
		default:
			moved = append(moved, p)
		}
	}
	switch {
	case len(moved) == 0 && atEnd == 0:
		return Retry, nil
	case len(moved) == 0 && atStart == 0:
		return Landed, nil
	}
	// Partly at the end and partly at the start cannot come from one atomic commit of ours:
	// someone else committed these partitions. Fence on all that are not where we began.
	for p, s := range claim {
		if off, ok := current[p]; ok && off == s.To && !(s.HasFrom && off == s.From) {
			moved = append(moved, p)
		}
	}
	SortPartitions(moved)
	return Fenced, moved
}

// Merge returns the offsets map a commit must carry: the table's current map, which may
// hold other workers' partitions, with the batch's partitions moved to their ends.
func Merge(current Offsets, claim Claim) Offsets {
	m := current.Clone()
	for p, s := range claim {
		m[p] = s.To
	}
	return m
}

// StartOffsets returns where each newly assigned partition must start: the table's
// committed offset, or the configured starting position (OffsetEarliest or OffsetLatest)
// for a partition the table has never seen.
func StartOffsets(parts []Partition, table Offsets, starting int64) Offsets {
	start := make(Offsets, len(parts))
	for _, p := range parts {
		if off, ok := table[p]; ok {
			start[p] = off
		} else {
			start[p] = starting
		}
	}
	return start
}

// SortPartitions orders partitions by topic, then number, for stable logs and output.
func SortPartitions(ps []Partition) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Topic != ps[j].Topic {
			return ps[i].Topic < ps[j].Topic
		}
		return ps[i].Partition < ps[j].Partition
	})
}

// MarshalOffsets encodes an offsets map as the JSON that snapshot summaries carry:
// {"topic":{"2":7,"10":5}}, topics sorted, partitions in numeric order (as Spark's Kafka
// source writes them). It is the one encoding of the map, for summaries and for logs.
func MarshalOffsets(o Offsets) string {
	byTopic := make(map[string][]int32)
	for p := range o {
		byTopic[p.Topic] = append(byTopic[p.Topic], p.Partition)
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	var b strings.Builder
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
			b.WriteString(strconv.FormatInt(o[Partition{Topic: t, Partition: p}], 10))
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.String()
}

// UnmarshalOffsets decodes MarshalOffsets' JSON.
func UnmarshalOffsets(s string) (Offsets, error) {
	var byTopic map[string]map[string]int64
	if err := json.Unmarshal([]byte(s), &byTopic); err != nil {
		return nil, fmt.Errorf("decode offsets map %q: %w", s, err)
	}
	o := make(Offsets)
	for topic, parts := range byTopic {
		for ps, off := range parts {
			n, err := strconv.ParseInt(ps, 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("decode offsets map: bad partition %q of topic %q", ps, topic)
			}
			if off < 0 {
				return nil, fmt.Errorf("decode offsets map: negative offset %d for %s/%s", off, topic, ps)
			}
			o[Partition{Topic: topic, Partition: int32(n)}] = off
		}
	}
	return o, nil
}

// String formats a partition as topic/number.
func (p Partition) String() string { return p.Topic + "/" + strconv.Itoa(int(p.Partition)) }
