package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// TestTopicStateRetentionAndRecreation: DeleteRecords moves a partition's log start as
// retention would, a source positioned below it gets OFFSET_OUT_OF_RANGE instead of being
// moved to the log start silently, and a topic deleted and created again has a new id,
// its new partition count and offsets from 0.
func TestTopicStateRetentionAndRecreation(t *testing.T) {
	const topic = "gaps"
	b := startTestBroker(t, BrokerConfig{Partitions: 3, Topics: []string{topic}})
	cc := clientCfg(t, b)
	ctx := context.Background()
	produce(t, cc, topic, "v", 60)

	st, err := DescribeTopic(ctx, cc, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range st.End {
		total += e
	}
	if st.ID == "" || st.Partitions != 3 || total != 60 || len(st.Start) != 3 {
		t.Fatalf("topic state %+v", st)
	}
	p0 := engine.Partition{Topic: topic, Partition: 0}
	if st.End[p0] < 5 {
		t.Fatalf("partition 0 holds %d records; the test needs 5", st.End[p0])
	}

	if err := DeleteRecords(ctx, cc, topic, map[int32]int64{0: 5}); err != nil {
		t.Fatal(err)
	}
	st2, err := DescribeTopic(ctx, cc, topic)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Start[p0] != 5 || st2.ID != st.ID || st2.End[p0] != st.End[p0] {
		t.Fatalf("after DeleteRecords to 5: %+v (before %+v)", st2, st)
	}

	// A source resuming at offset 2 of partition 0, now deleted, is told so.
	at := func(_ context.Context, parts []engine.Partition) (engine.Offsets, error) {
		o := engine.Offsets{}
		for _, p := range parts {
			o[p] = 0
			if p == p0 {
				o[p] = 2
			}
		}
		return o, nil
	}
	s := newTestSource(t, cc, topic, "g-gaps", at)
	waitFor(t, "assignment", 10*time.Second, func() bool { return len(s.Assigned()) == 3 })
	if got, err := s.Topic(ctx); err != nil || got.ID != st.ID || got.Start[p0] != 5 {
		t.Fatalf("Source.Topic = %+v, %v", got, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	var outOfRange bool
	for !outOfRange && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		recs, err := s.Fetch(fctx, 0)
		cancel()
		for _, r := range recs {
			if r.Partition == p0 {
				t.Fatalf("read %v@%d: the source moved past deleted records on its own", r.Partition, r.Offset)
			}
		}
		var fe *FetchError
		if errors.As(err, &fe) && fe.OutOfRange() {
			outOfRange = true
			if fe.Temporary() {
				t.Errorf("out of range reported as temporary: %v", err)
			}
		} else if err != nil && !isTemp(err) {
			t.Fatalf("fetch: %v", err)
		}
		s.Release()
	}
	if !outOfRange {
		t.Fatal("no OFFSET_OUT_OF_RANGE for a position below the log start")
	}
	// Seeking to the log start resumes the partition.
	s.Seek(engine.Offsets{p0: 5})
	waitFor(t, "partition 0 from its log start", 10*time.Second, func() bool {
		fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		recs, _ := s.Fetch(fctx, 0)
		s.Release()
		for _, r := range recs {
			if r.Partition == p0 {
				if r.Offset < 5 {
					t.Fatalf("read deleted offset %d", r.Offset)
				}
				return true
			}
		}
		return false
	})
	s.Close()

	if err := RecreateTopic(ctx, cc, topic, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the re-created topic", 10*time.Second, func() bool {
		st3, err := DescribeTopic(ctx, cc, topic)
		return err == nil && st3.Partitions == 2
	})
	st3, err := DescribeTopic(ctx, cc, topic)
	if err != nil {
		t.Fatal(err)
	}
	if st3.ID == "" || st3.ID == st.ID || st3.End[p0] != 0 || st3.Start[p0] != 0 {
		t.Fatalf("re-created topic %+v, old id %s", st3, st.ID)
	}
	if _, err := DescribeTopic(ctx, cc, "no-such-topic"); !errors.Is(err, ErrNoTopic) {
		t.Fatalf("missing topic: %v", err)
	}
}
