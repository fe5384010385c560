package kafka

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// testLogger shows warnings and errors in verbose test output.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return discardLogger
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name())
}

func startTestBroker(t testing.TB, cfg BrokerConfig) *Broker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	b, err := StartBroker(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func clientCfg(t testing.TB, b *Broker) ClientConfig {
	return ClientConfig{Brokers: []string{b.Addr()}, Logger: testLogger(t)}
}

// pairs yields n records "k<i>" -> "<prefix><i>".
func pairs(prefix string, n int) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for i := range n {
			if !yield(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "%s%d", prefix, i)) {
				return
			}
		}
	}
}

func produce(t testing.TB, cc ClientConfig, topic, prefix string, n int) {
	t.Helper()
	p, err := NewProducer(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, err := p.Produce(context.Background(), topic, pairs(prefix, n), ProduceOptions{})
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	if st.Acked != int64(n) {
		t.Fatalf("produce: acked %d of %d", st.Acked, n)
	}
}

// earliest is a ResumeFunc with no tables behind it: every partition from the start.
func earliest(_ context.Context, parts []engine.Partition) (engine.Offsets, error) {
	o := make(engine.Offsets, len(parts))
	for _, p := range parts {
		o[p] = engine.OffsetEarliest
	}
	return o, nil
}

func newTestSource(t testing.TB, cc ClientConfig, topic, group string, resume engine.ResumeFunc) *Source {
	t.Helper()
	s, err := NewSource(context.Background(), SourceConfig{
		Client:         cc,
		Topic:          topic,
		Group:          group,
		SessionTimeout: time.Second,
		Resume:         resume,
		Logger:         testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// availableNow does what an --available-now run does: wait for the assignment, take the
// ends, and fetch (releasing between fetches) until every owned partition's position
// reaches its end. It returns every record seen, control records included.
func availableNow(t testing.TB, s *Source, nparts int) ([]engine.Record, engine.Offsets) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
restart:
	waitFor(t, "assignment", 10*time.Second, func() bool { return len(s.Assigned()) == nparts })
	start, end, err := s.Ends(context.Background())
	if err != nil {
		t.Fatalf("ends: %v", err)
	}
	pos := start.Clone()
	var recs []engine.Record
	for !reached(pos, end) {
		if time.Now().After(deadline) {
			t.Fatalf("positions %v never reached ends %v", pos, end)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		got, err := s.Fetch(ctx, 0)
		cancel()
		if isTemp(err) {
			// On a loaded machine a 1 s session can expire: the partitions were lost
			// and come back through Resume, from the start. So does this run.
			t.Logf("temporary fetch error, starting over: %v", err)
			s.Release()
			goto restart
		}
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for _, r := range got {
			if r.Offset < pos[r.Partition] {
				t.Fatalf("record %v@%d below position %d", r.Partition, r.Offset, pos[r.Partition])
			}
			pos[r.Partition] = r.Offset + 1
			recs = append(recs, r)
		}
		s.Release()
	}
	return recs, end
}

func reached(pos, end engine.Offsets) bool {
	for p, e := range end {
		if pos[p] < e {
			return false
		}
	}
	return true
}

func dataValues(recs []engine.Record) map[string]int {
	m := make(map[string]int)
	for _, r := range recs {
		if !r.Control {
			m[string(r.Value)]++
		}
	}
	return m
}

// rawClient is a plain franz-go client for what our own API does not do (transactions,
// manual partitioning).
func rawClient(t testing.TB, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func isTemp(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}
