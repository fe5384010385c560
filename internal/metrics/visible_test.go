package metrics

import (
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

func TestVisible(t *testing.T) {
	v := NewVisible()
	p0, p1 := engine.Partition{Topic: "t", Partition: 0}, engine.Partition{Topic: "t", Partition: 1}
	t0 := time.Now()
	rec := func(p engine.Partition, off int64, age time.Duration) engine.Record {
		return engine.Record{Partition: p, Offset: off, Timestamp: t0.Add(-age)}
	}
	// One fetch: the first record of each partition is sampled.
	v.Fetched([]engine.Record{rec(p0, 10, 3*time.Second), rec(p0, 11, time.Second), rec(p1, 5, 2*time.Second)})
	v.Fetched([]engine.Record{rec(p0, 20, time.Second)})
	// The commit passes p0's first sample and p1's, not p0's second.
	v.Committed(engine.Offsets{p0: 15, p1: 6}, t0)
	if n := v.Hist.Count(); n != 2 {
		t.Fatalf("%d observations, want 2", n)
	}
	// A seek back to 12 forgets the sample at 20; the re-read record at 12 is sampled.
	v.Fetched([]engine.Record{rec(p0, 12, 500*time.Millisecond)})
	v.Committed(engine.Offsets{p0: 13}, t0)
	if d, _ := v.Last(); v.Hist.Count() != 3 || d != 500*time.Millisecond {
		t.Errorf("after the seek back: %d observations, last %s; want 3, 500ms", v.Hist.Count(), d)
	}
	v.Committed(engine.Offsets{p0: 100}, t0)
	if v.Hist.Count() != 3 || len(v.pending) != 0 {
		t.Errorf("the forgotten sample was observed, or samples are left: %d, %v", v.Hist.Count(), v.pending)
	}
}
