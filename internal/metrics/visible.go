package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// VisibleBuckets suit produce-to-visible latencies in seconds: 50 ms to 10 minutes.
var VisibleBuckets = []float64{.05, .1, .25, .5, .75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600}

// Visible measures produce-to-visible latency: from a record's Kafka timestamp (when it was
// produced, with the producer's CreateTime) to the ledger commit that made it visible. It
// samples the first record of each partition in each fetch, which bounds its memory by the
// fetches of a batch whatever the record rate, and observes each sample once a commit's
// offsets pass it. Safe for concurrent use.
type Visible struct {
	Hist *Histogram

	mu      sync.Mutex
	pending map[engine.Partition][]visibleSample // ascending offsets
	last    time.Duration                        // the newest observation
	lastAt  time.Time
}

type visibleSample struct {
	offset int64
	ts     time.Time
}

// NewVisible returns an empty Visible.
func NewVisible() *Visible {
	return &Visible{Hist: NewHistogram(VisibleBuckets), pending: map[engine.Partition][]visibleSample{}}
}

// Fetched records the records of one fetch (in offset order per partition).
func (v *Visible) Fetched(recs []engine.Record) {
	if len(recs) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var seen map[engine.Partition]bool
	for i := range recs {
		r := &recs[i]
		if r.Control || r.Timestamp.IsZero() || seen[r.Partition] {
			continue
		}
		if seen == nil {
			seen = map[engine.Partition]bool{}
		}
		seen[r.Partition] = true
		q := v.pending[r.Partition]
		if n := len(q); n > 0 && q[n-1].offset >= r.Offset {
			// A seek back (a dropped batch read again): forget what lies ahead of it.
			for n > 0 && q[n-1].offset >= r.Offset {
				n--
			}
			q = q[:n]
		}
		v.pending[r.Partition] = append(q, visibleSample{offset: r.Offset, ts: r.Timestamp})
	}
}

// Committed observes, at now, every sample that offsets (the ledger's offsets map after a
// commit: next offset per partition) passed.
func (v *Visible) Committed(offsets engine.Offsets, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for p, q := range v.pending {
		end, ok := offsets[p]
		if !ok {
			continue
		}
		i := 0
		for ; i < len(q) && q[i].offset < end; i++ {
			d := now.Sub(q[i].ts)
			v.Hist.ObserveDuration(max(d, 0))
			v.last, v.lastAt = d, now
		}
		if i == len(q) {
			delete(v.pending, p)
		} else if i > 0 {
			v.pending[p] = append(q[:0:0], q[i:]...)
		}
	}
}

// Last returns the newest observation and when it was made (zero before any).
func (v *Visible) Last() (time.Duration, time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last, v.lastAt
}

// Collect emits the histogram and the newest observation.
func (v *Visible) Collect(e *Emitter) {
	e.Histogram("ledgerstream_produce_to_visible_seconds",
		"From a record's Kafka timestamp to the ledger commit that made it visible (the first record of each partition in each fetch).", v.Hist)
	if d, at := v.Last(); !at.IsZero() {
		e.Gauge("ledgerstream_produce_to_visible_last_seconds", "The newest produce-to-visible observation.", d.Seconds())
	}
}

// VisibleSource is an engine.Source that shows each fetch to a Visible.
type VisibleSource struct {
	engine.Source
	V *Visible
}

// Fetch fetches from the source and records the sample.
func (s VisibleSource) Fetch(ctx context.Context, max int) ([]engine.Record, error) {
	recs, err := s.Source.Fetch(ctx, max)
	s.V.Fetched(recs)
	return recs, err
}
