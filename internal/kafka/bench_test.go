package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

const benchRecords = 200_000

// benchBroker starts an in-memory broker holding benchRecords small records (~100 bytes,
// like a transaction message) and reports the produce rate.
func benchBroker(b *testing.B) *Broker {
	br := startTestBroker(b, BrokerConfig{Topics: []string{"bench"}})
	p, err := NewProducer(ClientConfig{Brokers: []string{br.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	value := make([]byte, 100)
	recs := func(yield func([]byte, []byte) bool) {
		for i := range benchRecords {
			if !yield(fmt.Appendf(nil, "TXN%08d", i), value) {
				return
			}
		}
	}
	start := time.Now()
	st, err := p.Produce(context.Background(), "bench", recs, ProduceOptions{})
	if err != nil || st.Acked != benchRecords {
		b.Fatalf("produce: %+v %v", st, err)
	}
	b.Logf("produced %d records at %.0f rec/s", benchRecords, benchRecords/time.Since(start).Seconds())
	return br
}

// BenchmarkSourceFetch measures the consume path the pipeline uses: a group Source with
// read_committed and control records, fetching and discarding.
func BenchmarkSourceFetch(b *testing.B) {
	br := benchBroker(b)
	cc := ClientConfig{Brokers: []string{br.Addr()}}
	var total, join time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		// Fetching begins when Resume returns: time the join apart from the reading.
		var resumed atomic.Int64
		resume := func(ctx context.Context, parts []engine.Partition) (engine.Offsets, error) {
			resumed.CompareAndSwap(0, time.Now().UnixNano())
			return earliest(ctx, parts)
		}
		s, err := NewSource(context.Background(), SourceConfig{
			Client: cc, Topic: "bench", Group: fmt.Sprintf("bench-%d", i),
			SessionTimeout: time.Second, Resume: resume,
		})
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < benchRecords; {
			recs, err := s.Fetch(context.Background(), 0)
			if err != nil {
				b.Fatal(err)
			}
			n += len(recs)
			s.Release()
		}
		end := time.Now()
		r := time.Unix(0, resumed.Load())
		join += r.Sub(start)
		total += end.Sub(r)
		s.Close()
	}
	b.ReportMetric(float64(benchRecords*b.N)/total.Seconds(), "rec/s")
	b.ReportMetric(float64(join.Milliseconds())/float64(b.N), "ms-join")
}

// BenchmarkRawConsume is the franz-go floor: a direct consumer, no group, no conversion.
func BenchmarkRawConsume(b *testing.B) {
	br := benchBroker(b)
	var total time.Duration
	for b.Loop() {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(br.Addr()),
			kgo.ConsumeTopics("bench"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for n := 0; n < benchRecords; {
			n += cl.PollFetches(context.Background()).NumRecords()
		}
		total += time.Since(start)
		cl.Close()
	}
	b.ReportMetric(float64(benchRecords*b.N)/total.Seconds(), "rec/s")
}
