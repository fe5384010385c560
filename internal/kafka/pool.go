package kafka

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordSlices keeps the slices franz-go decodes fetched records into (kgo.PoolRecords),
// so that a catch-up does not allocate one per fetched batch (some 150 bytes a record,
// 7% of what a run allocated, issue 16). Fetch copies what it needs out of each record and
// recycles it at once; franz-go puts a slice back when every record of it was recycled.
type recordSlices struct {
	mu   sync.Mutex
	free [][]kgo.Record
}

// keptRecordSlices bounds the slices kept: about as many as a fetch holds batches.
const keptRecordSlices = 64

var _ kgo.PoolRecords = (*recordSlices)(nil)

// GetRecords returns a kept slice with room for n records, or a new one.
func (p *recordSlices) GetRecords(n int) []kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if s := p.free[i]; cap(s) >= n {
			last := len(p.free) - 1
			p.free[i], p.free[last] = p.free[last], nil
			p.free = p.free[:last]
			return s[:0]
		}
	}
	return make([]kgo.Record, 0, n)
}

// PutRecords keeps s, cleared: a record franz-go decoded but never handed out (one below
// the offset asked for) would otherwise keep its fetched batch's bytes alive.
func (p *recordSlices) PutRecords(s []kgo.Record) {
	clear(s[:cap(s)])
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < keptRecordSlices {
		p.free = append(p.free, s[:0])
	}
}
