package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// Message is one record to send with SendAll: unlike Produce's pairs, it carries headers.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte // nil sends a tombstone
	Headers []engine.Header
}

// Delivery is where the broker put a message SendAll sent, or why it could not.
type Delivery struct {
	Partition int32
	Offset    int64
	Err       error
}

// SendAll sends msgs through the idempotent producer and waits for every acknowledgement.
// It returns one Delivery per message, in the order of msgs, and an error joining the failures.
func (p *Producer) SendAll(ctx context.Context, msgs []Message) ([]Delivery, error) {
	recs := make([]*kgo.Record, len(msgs))
	at := make(map[*kgo.Record]int, len(msgs)) // results come in completion order
	for i, m := range msgs {
		r := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i], at[r] = r, i
	}
	res := p.cl.ProduceSync(ctx, recs...)
	out := make([]Delivery, len(res))
	var errs []error
	for _, r := range res {
		out[at[r.Record]] = Delivery{Partition: r.Record.Partition, Offset: r.Record.Offset, Err: r.Err}
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("kafka: send to %s: %w", r.Record.Topic, r.Err))
		}
	}
	return out, errors.Join(errs...)
}
