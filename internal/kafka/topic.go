package kafka

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// TopicState is what the cluster says of a topic now (engine.TopicState). Its ID is in
// Kafka's own text form (URL-safe base64, as kafka-topics --describe prints it).
type TopicState = engine.TopicState

// ErrNoTopic reports that the topic does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// TopicIDString formats a topic id as Kafka does; the zero id (no topic ids) is "".
func TopicIDString(id [16]byte) string {
	if id == ([16]byte{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// describeTopic lists the topic's id, partition count and offsets. The end offsets are
// listed before the start offsets: a start listed after an end can only be newer
// (retention), never past that end.
func describeTopic(ctx context.Context, adm *kadm.Client, topic string) (TopicState, error) {
	st := TopicState{Topic: topic}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return st, fmt.Errorf("kafka: describe topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return st, fmt.Errorf("kafka: describe topic %s: %w", topic, ErrNoTopic)
	}
	if d.Err != nil {
		return st, fmt.Errorf("kafka: describe topic %s: %w", topic, d.Err)
	}
	st.ID = TopicIDString(d.ID)
	st.Partitions = int32(len(d.Partitions))
	if st.End, err = listStableEnds(ctx, adm, topic); err != nil {
		return st, err
	}
	if st.Start, err = listStarts(ctx, adm, topic); err != nil {
		return st, err
	}
	return st, nil
}

// DescribeTopic returns what the cluster says of topic now.
func DescribeTopic(ctx context.Context, cfg ClientConfig, topic string) (TopicState, error) {
	cl, err := cfg.newClient()
	if err != nil {
		return TopicState{Topic: topic}, err
	}
	defer cl.Close()
	return describeTopic(ctx, kadm.NewClient(cl), topic)
}

// Topic returns what the cluster says of the source's topic now.
func (s *Source) Topic(ctx context.Context) (TopicState, error) {
	_, adm := s.clients()
	return describeTopic(ctx, adm, s.topic)
}

// DeleteRecords moves the log start of the given partitions of topic up to the given
// offsets (Kafka's DeleteRecords, KIP-107): the records below are deleted, as retention
// would delete them. For operators' rehearsals and tests.
func DeleteRecords(ctx context.Context, cfg ClientConfig, topic string, before map[int32]int64) error {
	cl, err := cfg.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	offs := kadm.Offsets{}
	for p, off := range before {
		offs.AddOffset(topic, p, off, -1)
	}
	resp, err := kadm.NewClient(cl).DeleteRecords(ctx, offs)
	if err != nil {
		return fmt.Errorf("kafka: delete records of %s: %w", topic, err)
	}
	var errs []error
	for _, ps := range resp {
		for p, r := range ps {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("partition %d: %w", p, r.Err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafka: delete records of %s: %w", topic, errors.Join(errs...))
	}
	return nil
}

// RecreateTopic deletes topic and creates it again, empty, with partitions partitions:
// the same name, a new topic id, offsets from 0. For operators' rehearsals and tests.
func RecreateTopic(ctx context.Context, cfg ClientConfig, topic string, partitions int32) error {
	cl, err := cfg.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	del, err := adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = del.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: delete topic %s: %w", topic, err)
	}
	created, err := adm.CreateTopics(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: create topic %s again: %w", topic, err)
	}
	return nil
}
