package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// ReadTopic reads every partition of topic with read_committed, from the earliest offset
// to the last stable offset as of the call, and calls fn for each data record in offset
// order within a partition (partitions interleave). Control records are not passed to fn.
// It uses no consumer group and commits nothing. It returns the end offsets it read to;
// an error from fn stops the read and is returned as is.
//
// A partition is done once the record just below its end offset (data or control) has
// been seen. One interleaving defeats that: a transaction aborted while another one was
// still open before it leaves aborted records just below the last stable offset and its
// abort marker above it, and read_committed then shows nothing at the end offset's
// predecessor, so the read waits. Bound the call with ctx.
//
// A topic the cluster does not have is ErrUnknownTopic, not an empty read.
func ReadTopic(ctx context.Context, cfg ClientConfig, topic string, fn func(engine.Record) error) (engine.Offsets, error) {
	st, err := ReadTopicState(ctx, cfg, topic, fn)
	if err != nil {
		return nil, err
	}
	return st.End, nil
}

// ReadTail is ReadTopic limited to the last n offsets of each partition (those below its
// last stable offset): what a producer needs to see where earlier runs left off.
func ReadTail(ctx context.Context, cfg ClientConfig, topic string, n int64, fn func(engine.Record) error) (engine.Offsets, error) {
	if n <= 0 {
		return nil, fmt.Errorf("kafka: read the tail of %s: want n > 0, not %d", topic, n)
	}
	st, err := DescribeTopic(ctx, cfg, topic)
	if err != nil {
		return nil, explainNoTopic(err, cfg, topic)
	}
	starts := make(engine.Offsets, len(st.Start))
	for p, s := range st.Start {
		starts[p] = max(s, st.End[p]-n)
	}
	if err := readRange(ctx, cfg, topic, starts, st.End, fn); err != nil {
		return nil, err
	}
	return st.End, nil
}

// ReadTopicState is ReadTopic returning what the topic was as it was read: its id,
// partition count, and the log starts and end offsets the read went from and to.
func ReadTopicState(ctx context.Context, cfg ClientConfig, topic string, fn func(engine.Record) error) (TopicState, error) {
	admCl, err := cfg.newClient()
	if err != nil {
		return TopicState{Topic: topic}, err
	}
	st, err := describeTopic(ctx, kadm.NewClient(admCl), topic)
	err = explainNoTopic(err, cfg, topic)
	admCl.Close()
	if err != nil {
		return st, err
	}
	if err := readRange(ctx, cfg, topic, st.Start, st.End, fn); err != nil {
		return st, err
	}
	return st, nil
}

// readRange reads every partition of topic from starts to ends (see ReadTopic).
func readRange(ctx context.Context, cfg ClientConfig, topic string, starts, ends engine.Offsets, fn func(engine.Record) error) error {

	// Only partitions with something between start and end are consumed; next tracks the
	// position reached in each.
	next := make(map[int32]int64)
	consume := make(map[int32]kgo.Offset)
	for p, end := range ends {
		start, ok := starts[p]
		if !ok {
			return fmt.Errorf("kafka: start offset of %s[%d] missing", topic, p.Partition)
		}
		if start < end {
			next[p.Partition] = start
			consume[p.Partition] = kgo.NewOffset().At(start)
		}
	}
	if len(consume) == 0 {
		return nil
	}

	cl, err := cfg.newClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are how a partition whose last records are a transaction
		// marker (or aborted records and their marker) is seen to reach its end.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	for len(next) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("kafka: read %s: %w", topic, err)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			e := errs[0]
			return fmt.Errorf("kafka: read %s[%d]: %w", e.Topic, e.Partition, e.Err)
		}
		var fnErr error
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			pos, want := next[fp.Partition]
			if !want || fnErr != nil {
				return
			}
			end := ends[engine.Partition{Topic: topic, Partition: fp.Partition}]
			for _, r := range fp.Records {
				if r.Offset >= end {
					break // committed after the call began: not ours to read
				}
				pos = r.Offset + 1
				if r.Attrs.IsControl() {
					continue
				}
				if fnErr = fn(toRecord(r)); fnErr != nil {
					return
				}
			}
			if pos >= end {
				delete(next, fp.Partition)
				// Stop fetching what we would discard.
				cl.PauseFetchPartitions(map[string][]int32{topic: {fp.Partition}})
			} else {
				next[fp.Partition] = pos
			}
		})
		if fnErr != nil {
			return fnErr
		}
	}
	return nil
}

// TopicPartitions returns how many partitions topic has, or an error wrapping ErrNoTopic
// (naming the topic and the brokers) when the cluster has no such topic. It never creates
// the topic.
func TopicPartitions(ctx context.Context, cfg ClientConfig, topic string) (int, error) {
	st, err := DescribeTopic(ctx, cfg, topic)
	if err != nil {
		return 0, explainNoTopic(err, cfg, topic)
	}
	return int(st.Partitions), nil
}

// explainNoTopic turns ErrNoTopic into a message for a person: which topic, on which
// cluster, and what to do.
func explainNoTopic(err error, cfg ClientConfig, topic string) error {
	if !errors.Is(err, ErrNoTopic) {
		return err
	}
	return fmt.Errorf("kafka: %w: %q on %s (check --topic; `ledgerstream produce --create-topic` creates it)",
		ErrNoTopic, topic, strings.Join(cfg.Brokers, ","))
}
