package kafka

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"net"

	"github.com/ledgerstream/ledgerstream/internal/retry"
	"github.com/ledgerstream/ledgerstream/internal/subprocess"
	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

func TestBrokerPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b1, err := StartBroker(context.Background(), BrokerConfig{DataDir: dir, Partitions: 3, Topics: []string{"tx"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, clientCfg(t, b1), "tx", "v", 100)
	b1.Close()

	// The second start asks for 5 partitions: the saved topic keeps its 3, a new
	// topic gets 5.
	b2 := startTestBroker(t, BrokerConfig{DataDir: dir, Partitions: 5, Topics: []string{"tx", "new"}})
	var n int
	ends, err := ReadTopic(context.Background(), clientCfg(t, b2), "tx", func(r engine.Record) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Errorf("read %d records after restart, want 100", n)
	}
	if len(ends) != 3 {
		t.Errorf("tx has %d partitions after restart, want the saved 3", len(ends))
	}
	newEnds, err := ReadTopic(context.Background(), clientCfg(t, b2), "new", func(engine.Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(newEnds) != 5 {
		t.Errorf("new topic has %d partitions, want 5", len(newEnds))
	}
}

func TestBrokerRejectsNonLoopback(t *testing.T) {
	_, err := StartBroker(context.Background(), BrokerConfig{Listen: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v, want a loopback refusal", err)
	}
}

func TestSourceAvailableNow(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	const n = 2000
	produce(t, cc, "tx", "v", n)

	s := newTestSource(t, cc, "tx", "pipe", earliest)
	recs, ends := availableNow(t, s, 3)
	vals := dataValues(recs)
	if len(vals) != n {
		t.Fatalf("got %d distinct values, want %d", len(vals), n)
	}
	for v, c := range vals {
		if c != 1 {
			t.Errorf("%s delivered %d times", v, c)
		}
	}
	var total int64
	for _, e := range ends {
		total += e
	}
	if total != n {
		t.Errorf("ends sum to %d, want %d", total, n)
	}
	if recs[0].Timestamp.IsZero() || len(recs[0].Key) == 0 {
		t.Errorf("record lacks timestamp or key: %+v", recs[0])
	}

	// Advisory offsets land in the group.
	if err := s.CommitAdvisory(context.Background(), ends); err != nil {
		t.Fatal(err)
	}
	committed, err := kadm.NewClient(s.cl).FetchOffsets(context.Background(), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	for p, e := range ends {
		if o, ok := committed.Lookup(p.Topic, p.Partition); !ok || o.At != e {
			t.Errorf("group offset of %v = %+v, want %d", p, o, e)
		}
	}
}

func TestSourceResumeOffsets(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	produce(t, cc, "tx", "v", 300)

	p0 := engine.Partition{Topic: "tx", Partition: 0}
	var called atomic.Int32
	resume := func(ctx context.Context, parts []engine.Partition) (engine.Offsets, error) {
		called.Add(1)
		o, _ := earliest(ctx, parts)
		o[p0] = 5
		return o, nil
	}
	s := newTestSource(t, cc, "tx", "pipe", resume)
	recs, ends := availableNow(t, s, 3)
	if called.Load() == 0 {
		t.Fatal("resume never called")
	}
	var p0n int
	for _, r := range recs {
		if r.Partition == p0 {
			p0n++
			if r.Offset < 5 {
				t.Errorf("partition 0 offset %d delivered, resume said 5", r.Offset)
			}
		}
	}
	if want := int(ends[p0] - 5); p0n != want {
		t.Errorf("partition 0 delivered %d records, want %d", p0n, want)
	}
	if got, want := len(dataValues(recs)), 300-5; got != want {
		t.Errorf("got %d records, want %d", got, want)
	}
}

func TestSourceSeekDropsBuffered(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	produce(t, cc, "tx", "v", 3000)

	s, err := NewSource(context.Background(), SourceConfig{
		Client: cc, Topic: "tx", Group: "pipe", SessionTimeout: time.Second,
		Resume: earliest, MaxPollRecords: 10, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitFor(t, "assignment", 10*time.Second, func() bool { return len(s.Assigned()) == 3 })
	_, ends, err := s.Ends(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// Fetch until partition 0 is past offset 5 and plenty is buffered behind it.
	p0 := engine.Partition{Topic: "tx", Partition: 0}
	next := make(engine.Offsets)
	seeked := false
	deadline := time.Now().Add(20 * time.Second)
	for !reached(next, ends) {
		if time.Now().After(deadline) {
			t.Fatalf("stuck at %v of %v", next, ends)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		recs, err := s.Fetch(ctx, 0)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			// Every partition stays contiguous across the seek: nothing stale after it,
			// nothing lost for the partitions not sought.
			if r.Offset != next[r.Partition] {
				t.Fatalf("%v: got offset %d, want %d (seeked=%v)", r.Partition, r.Offset, next[r.Partition], seeked)
			}
			next[r.Partition] = r.Offset + 1
		}
		if !seeked && next[p0] > 5 {
			if buffered := s.cl.BufferedFetchRecords(); buffered == 0 {
				t.Logf("nothing buffered at the seek; the test is weaker")
			}
			s.Seek(engine.Offsets{p0: 2})
			next[p0] = 2
			seeked = true
		}
		s.Release()
	}
	if !seeked {
		t.Fatal("never sought")
	}
}

func TestSourceTransactions(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	txn := rawClient(t, b,
		kgo.TransactionalID("ledger-test"),
		kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	ctx := context.Background()
	runTxn := func(prefix string, n int, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			// Spread over partitions 0 and 1; partition 2 stays empty.
			r := &kgo.Record{Value: fmt.Appendf(nil, "%s%d", prefix, i), Partition: int32(i % 2)}
			if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	runTxn("c1-", 6, kgo.TryCommit)
	runTxn("ab-", 6, kgo.TryAbort)
	runTxn("c2-", 6, kgo.TryCommit)

	s := newTestSource(t, cc, "tx", "pipe", earliest)
	recs, ends := availableNow(t, s, 3)
	vals := dataValues(recs)
	var control int
	for _, r := range recs {
		if r.Control {
			control++
		}
	}
	for v := range vals {
		if strings.HasPrefix(v, "ab-") {
			t.Errorf("aborted record %s delivered", v)
		}
	}
	if len(vals) != 12 {
		t.Errorf("got %d committed records, want 12: %v", len(vals), vals)
	}
	// Three markers in each of partitions 0 and 1.
	if control != 6 {
		t.Errorf("got %d control records, want 6", control)
	}
	// Each of partitions 0 and 1: 9 data records and 3 markers.
	for p := range int32(2) {
		if e := ends[engine.Partition{Topic: "tx", Partition: p}]; e != 12 {
			t.Errorf("end of partition %d = %d, want 12", p, e)
		}
	}

	// An open transaction holds the last stable offset back: Ends does not move, a
	// read_committed read stops short of it.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("open"), Partition: 0}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, end2, err := s.Ends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e := end2[engine.Partition{Topic: "tx", Partition: 0}]; e != 12 {
		t.Errorf("end of partition 0 with a transaction open = %d, want 12 (the last stable offset)", e)
	}
	// Lag measures from the same last stable offset: a ledger at 12 is caught up on
	// partition 0 although the high watermark is 13.
	lags, err := s.Lag(ctx, engine.Offsets{{Topic: "tx", Partition: 0}: 12, {Topic: "tx", Partition: 1}: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := map[engine.Partition]PartitionLag{
		{Topic: "tx", Partition: 0}: {End: 12, Lag: 0},
		{Topic: "tx", Partition: 1}: {End: 12, Lag: 7},
		{Topic: "tx", Partition: 2}: {End: 0, Lag: 0},
	}
	if !maps.Equal(lags, want) {
		t.Errorf("Lag with a transaction open = %v, want %v (from last stable offsets)", lags, want)
	}
	hw, err := kadm.NewClient(s.cl).ListEndOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := hw.Lookup("tx", 0); o.Offset != 13 {
		t.Errorf("high watermark of partition 0 = %d, want 13", o.Offset)
	}
	var read int
	if _, err := ReadTopic(ctx, cc, "tx", func(r engine.Record) error {
		if strings.HasPrefix(string(r.Value), "ab-") || string(r.Value) == "open" || r.Control {
			t.Errorf("ReadTopic passed %q (control=%v)", r.Value, r.Control)
		}
		read++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if read != 12 {
		t.Errorf("ReadTopic read %d records, want 12", read)
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}

// batchHold makes pollLoop hold its batch (not release) while on is set; holding says
// the loop is in the hold.
type batchHold struct{ on, holding atomic.Bool }

// messageLog is a slog.Handler that keeps every message, for tests that wait on one.
type messageLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *messageLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *messageLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *messageLog) WithGroup(string) slog.Handler            { return l }
func (l *messageLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

// has reports whether msg was logged.
func (l *messageLog) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.msgs, msg)
}

// pollLoop is what the engine does: fetch, (process), release. It runs until ctx ends.
func pollLoop(ctx context.Context, s *Source, hold *batchHold) error {
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := s.Fetch(fctx, 0)
		cancel()
		if err != nil && ctx.Err() == nil && !isTemp(err) {
			return err
		}
		for hold != nil && hold.on.Load() && ctx.Err() == nil {
			hold.holding.Store(true)
			time.Sleep(10 * time.Millisecond) // a batch that takes its time
		}
		if hold != nil {
			hold.holding.Store(false)
		}
		s.Release()
	}
	return nil
}

func TestSourceRebalance(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Partitions: 4, Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	produce(t, cc, "tx", "v", 200)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loops := make(chan error, 1)
	ctxB, cancelB := context.WithCancel(ctx)
	loopB := make(chan error, 1)

	// A's client logs (franz-go's, at debug level) say when its group goroutine waits for
	// the batch: the evidence that the rebalance is held back, not merely slow.
	aLog := &messageLog{}
	ccA := cc
	ccA.Logger = slog.New(aLog)
	a, err := NewSource(ctx, SourceConfig{Client: ccA, Topic: "tx", Group: "pipe", SessionTimeout: time.Second,
		Resume: earliest, Logger: slog.New(aLog)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	var holdA batchHold
	go func() { loops <- pollLoop(ctx, a, &holdA) }()
	waitFor(t, "a owns all", 10*time.Second, func() bool { return len(a.Assigned()) == 4 })

	// A is in the middle of a batch: B's arrival must not take partitions from it.
	holdA.on.Store(true)
	waitFor(t, "a holds its batch", 10*time.Second, holdA.holding.Load)
	bSrc := newTestSource(t, cc, "tx", "pipe", earliest)
	go func() { loopB <- pollLoop(ctxB, bSrc, nil) }()
	// B's join puts the group in a rebalance. A hears of it at its next heartbeat and must
	// revoke its partitions, which its group goroutine does only once the batch is
	// released: franz-go then heartbeats on "while waiting for user revoke to finish".
	// That line is the condition; nothing may have moved by then.
	waitFor(t, "a's revoke to wait for its batch", 20*time.Second, func() bool {
		return aLog.has("kgo: heartbeat errored again while waiting for user revoke to finish")
	})
	if got, gotB := len(a.Assigned()), len(bSrc.Assigned()); got != 4 || gotB != 0 || !holdA.holding.Load() {
		t.Fatalf("a owns %d partitions and b %d while a holds its batch (%v), want 4 and 0", got, gotB, holdA.holding.Load())
	}
	holdA.on.Store(false)

	waitFor(t, "split 2/2", 10*time.Second, func() bool {
		return len(a.Assigned()) == 2 && len(bSrc.Assigned()) == 2
	})
	seen := make(map[engine.Partition]bool)
	for _, p := range append(a.Assigned(), bSrc.Assigned()...) {
		if seen[p] {
			t.Fatalf("%v owned twice", p)
		}
		seen[p] = true
	}

	// Stopping B's loop and closing B (a dynamic member: it leaves the group) gives
	// everything back to A at once, without waiting out a session timeout.
	cancelB()
	if err := <-loopB; err != nil {
		t.Errorf("b's poll loop: %v", err)
	}
	closed := time.Now()
	bSrc.Close()
	waitFor(t, "a owns all again", 5*time.Second, func() bool { return len(a.Assigned()) == 4 })
	t.Logf("partitions moved back %v after close", time.Since(closed).Round(time.Millisecond))
	if _, err := bSrc.Fetch(ctx, 0); err == nil {
		t.Error("fetch after close: no error")
	}
	cancel()
	if err := <-loops; err != nil {
		t.Errorf("a's poll loop: %v", err)
	}
}

func TestProducerRateAndProgress(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}})
	p, err := NewProducer(clientCfg(t, b))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var reports int
	start := time.Now()
	st, err := p.Produce(context.Background(), "tx", pairs("v", 100), ProduceOptions{
		Rate:          200,
		ProgressEvery: 100 * time.Millisecond,
		Progress:      func(ProduceStats) { reports++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if st.Acked != 100 || st.Sent != 100 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	// A lower bound only: a loaded machine makes any run slower, never a rate limit
	// faster (the first records may go at once, as a burst).
	if el < 400*time.Millisecond {
		t.Errorf("100 records at 200/s took %v, want at least about 0.5 s", el)
	}
	if reports < 3 {
		t.Errorf("%d progress reports, want several", reports)
	}
}

func TestProducerReportsErrors(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}})
	p, err := NewProducer(clientCfg(t, b))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	big := make([]byte, 2<<20) // over the 1 MB batch limit
	recs := iter.Seq2[[]byte, []byte](func(yield func([]byte, []byte) bool) {
		_ = yield([]byte("a"), []byte("small")) && yield([]byte("b"), big)
	})
	st, err := p.Produce(context.Background(), "tx", recs, ProduceOptions{})
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("err = %v, want MessageTooLarge", err)
	}
	if st.Failed != 1 || st.Acked != 1 {
		t.Errorf("stats %+v, want 1 acked and 1 failed", st)
	}
}

func TestSourceStaticMemberRejoins(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	newStatic := func() *Source {
		s, err := NewSource(context.Background(), SourceConfig{
			Client: cc, Topic: "tx", Group: "pipe", InstanceID: "worker-1",
			SessionTimeout: 6 * time.Second, Resume: earliest, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1 := newStatic()
	waitFor(t, "first owns all", 10*time.Second, func() bool { return len(s1.Assigned()) == 3 })
	s1.Close() // a static member does not leave: the group keeps its place

	// A restart with the same instance id takes the partitions back well within the
	// session timeout (what kill -9 recovery relies on).
	start := time.Now()
	s2 := newStatic()
	defer s2.Close()
	waitFor(t, "restart owns all", 4*time.Second, func() bool { return len(s2.Assigned()) == 3 })
	t.Logf("static member owned its partitions again %v after restart", time.Since(start).Round(time.Millisecond))
}

func TestFetchErrorTemporary(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&kgo.ErrGroupSession{Err: kerr.UnknownMemberID}, true},
		{&kgo.ErrGroupSession{Err: kerr.RebalanceInProgress}, true},
		{&kgo.ErrGroupSession{Err: kerr.InvalidSessionTimeout}, false},
		{kerr.NotLeaderForPartition, true},
		{kerr.TopicAuthorizationFailed, false},
		{kgo.ErrClientClosed, false},
	} {
		if got := isTemporary(fmt.Errorf("wrapped: %w", c.err)); got != c.want {
			t.Errorf("isTemporary(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestSourceSessionTimeoutBelowBrokerMinimum(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}}) // accepts 1 s and up
	s, err := NewSource(context.Background(), SourceConfig{
		Client: clientCfg(t, b), Topic: "tx", Group: "pipe",
		SessionTimeout: 500 * time.Millisecond, Resume: earliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = s.Fetch(ctx, 0)
	if !errors.Is(err, kerr.InvalidSessionTimeout) || isTemp(err) {
		t.Fatalf("err = %v, want a permanent InvalidSessionTimeout", err)
	}
}

// TestSourceRidesOutBrokerOutage puts a fault proxy between the consumer and the broker
// (the broker advertises the proxy's address, so every connection goes through it), resets
// every connection for a while, and checks that the source says Kafka is down, reports
// only temporary errors (franz-go's "broker connection has died" among them), and
// consumes again, with Kafka up, once the proxy heals.
func TestSourceRidesOutBrokerOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	real := ln.Addr().String()
	ln.Close()
	// The proxy must exist before the broker advertises it; it forwards to the broker's port.
	proxy := testinfra.StartFaultProxy(t, real)
	b := startTestBroker(t, BrokerConfig{Listen: real, Advertise: proxy.Addr, Topics: []string{"tx"}, Partitions: 1})
	if b.Addr() != proxy.Addr {
		t.Fatalf("broker advertises %s, want the proxy %s", b.Addr(), proxy.Addr)
	}
	cc := clientCfg(t, b)
	produce(t, cc, "tx", "a", 10)

	tracker := retry.NewTracker(testLogger(t), nil)
	s, err := NewSource(context.Background(), SourceConfig{
		Client: cc, Topic: "tx", Group: "pipe", SessionTimeout: 3 * time.Second,
		Resume: earliest, Logger: testLogger(t), Tracker: tracker,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fetchAll := func(want int, timeout time.Duration) {
		t.Helper()
		got := 0
		deadline := time.Now().Add(timeout)
		for got < want {
			if time.Now().After(deadline) {
				t.Fatalf("fetched %d records of %d in %s", got, want, timeout)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			recs, err := s.Fetch(ctx, 0)
			cancel()
			if err != nil && !isTemp(err) {
				t.Fatalf("fetch: permanent error %v", err)
			}
			for _, r := range recs {
				if !r.Control {
					got++
				}
			}
			s.Release()
		}
	}
	fetchAll(10, 20*time.Second)
	if !tracker.State(retry.Kafka).Up {
		t.Fatal("kafka down while it answers")
	}

	proxy.Set(testinfra.Reset)
	waitFor(t, "kafka down", 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := s.Fetch(ctx, 0)
		cancel()
		if err != nil && !isTemp(err) {
			t.Fatalf("fetch during the outage: permanent error %v", err)
		}
		return !tracker.State(retry.Kafka).Up
	})
	if st := tracker.State(retry.Kafka); st.LastError == "" || st.Op == "" {
		t.Fatalf("down without saying why: %+v", st)
	}
	time.Sleep(2 * time.Second)
	proxy.Heal()
	produce(t, ClientConfig{Brokers: []string{real}}, "tx", "b", 5) // straight to the broker
	fetchAll(5, 30*time.Second)
	if !tracker.State(retry.Kafka).Up {
		t.Fatalf("kafka still down after the heal: %+v", tracker.State(retry.Kafka))
	}
}

// A worker that gives its partitions up (its catalog is unreachable) leaves the group: the
// other member owns them all well within the session timeout, even though both are static
// members (whose clients do not leave on close). While out, the worker fetches nothing and
// still answers Lag; when it rejoins, the partitions are shared again.
func TestSourceLeaveAndRejoin(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Partitions: 4, Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	produce(t, cc, "tx", "v", 100)
	static := func(id string) *Source {
		s, err := NewSource(context.Background(), SourceConfig{
			Client: cc, Topic: "tx", Group: "pipe", InstanceID: id,
			SessionTimeout: 60 * time.Second, Resume: earliest, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, other := static("w1"), static("w2")
	ctxA, cancelA := context.WithCancel(ctx)
	loopA, loopB := make(chan error, 1), make(chan error, 1)
	go func() { loopA <- pollLoop(ctxA, a, nil) }()
	go func() { loopB <- pollLoop(ctx, other, nil) }()
	waitFor(t, "split 2/2", 30*time.Second, func() bool { return len(a.Assigned()) == 2 && len(other.Assigned()) == 2 })

	// a's loop stops (its batch waits on the catalog); it then leaves.
	cancelA()
	if err := <-loopA; err != nil {
		t.Fatalf("a's poll loop: %v", err)
	}
	left := time.Now()
	if err := a.Leave(ctx, "test: catalog unreachable"); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if n := len(a.Assigned()); n != 0 {
		t.Fatalf("a owns %d partitions after leaving", n)
	}
	// The session timeout is 60 s: without the explicit leave the group would wait for it.
	waitFor(t, "the other member owns all", 30*time.Second, func() bool { return len(other.Assigned()) == 4 })
	t.Logf("partitions moved %v after the leave", time.Since(left).Round(time.Millisecond))
	if _, err := a.Fetch(ctx, 0); !errors.Is(err, ErrLeft) {
		t.Fatalf("fetch while out of the group = %v, want ErrLeft", err)
	}
	lag, err := a.Lag(ctx, nil)
	if err != nil || len(lag) != 4 {
		t.Fatalf("lag while out of the group: %v, %v", lag, err)
	}

	if err := a.Rejoin(); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	ctxA, cancelA = context.WithCancel(ctx)
	defer cancelA()
	go func() { loopA <- pollLoop(ctxA, a, nil) }()
	waitFor(t, "split 2/2 again", 30*time.Second, func() bool { return len(a.Assigned()) == 2 && len(other.Assigned()) == 2 })
	cancel()
	for _, ch := range []chan error{loopA, loopB} {
		if err := <-ch; err != nil {
			t.Errorf("poll loop: %v", err)
		}
	}
}

// A worker stops in bounded time even while the group coordinator holds its JoinGroup:
// franz-go's Close waits for that request, which the coordinator may hold for the whole
// rebalance timeout (60 s) while another member finishes its batch, and a worker in a
// network fault can be held as long (TestOutages/kafka-black-hole once hung a minute at
// SIGTERM). Close leaves the group directly then, so that the group does not wait for
// it either.
func TestSourceCloseWhileJoinHeld(t *testing.T) {
	b := startTestBroker(t, BrokerConfig{Partitions: 4, Topics: []string{"tx"}})
	cc := clientCfg(t, b)
	produce(t, cc, "tx", "a", 20)
	var logs subprocess.Output // written by the client's goroutines while the test reads it
	member := func(log *slog.Logger) *Source {
		s, err := NewSource(context.Background(), SourceConfig{
			Client: cc, Topic: "tx", Group: "pipe", SessionTimeout: 3 * time.Second, Resume: earliest, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	poll := func(s *Source) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _ = s.Fetch(ctx, 0)
	}
	a := member(slog.New(slog.NewTextHandler(&logs, nil)))
	busy := member(testLogger(t))
	defer busy.Close()
	waitFor(t, "both members own partitions", 30*time.Second, func() bool {
		poll(a)
		a.Release()
		poll(busy)
		busy.Release()
		return len(a.Assigned()) > 0 && len(busy.Assigned()) > 0
	})
	// busy is in the middle of a batch: it polled and has not released, so it cannot
	// rejoin. A third member starts a rebalance; a rejoins, and the coordinator holds a's
	// JoinGroup until busy rejoins too, or the rebalance times out.
	poll(busy)
	third := member(testLogger(t))
	defer third.Close()
	poll(third)
	time.Sleep(3 * time.Second) // a's heartbeat learns of the rebalance and a sends its JoinGroup
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		a.Close()
	}()
	select {
	case <-closed:
	case <-time.After(closeWait + 5*time.Second):
		t.Fatalf("Close still waiting after %s while the coordinator holds the group's join", time.Since(start).Round(time.Second))
	}
	t.Logf("Close returned after %s; its log:\n%s", time.Since(start).Round(100*time.Millisecond), logs.String())
	// a told the coordinator it left: the group's rebalance goes on without it, long before
	// the rebalance timeout would have dropped it, and the other two own every partition.
	busy.Release()
	left := time.Now()
	waitFor(t, "the two members left own every partition", 20*time.Second, func() bool {
		poll(busy)
		busy.Release()
		poll(third)
		third.Release()
		return len(busy.Assigned())+len(third.Assigned()) == 4
	})
	t.Logf("the others owned every partition %s after a closed", time.Since(left).Round(100*time.Millisecond))
}
