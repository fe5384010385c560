// Package produce is the reference producer behind `ledgerstream produce` and the demo: the
// seed notebook's generated transactions, keyed by transaction_id, sent through the
// idempotent producer, numbered after the highest transaction id already on the topic.
package produce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// Options are what to send and how.
type Options struct {
	// Contract, when set, says what the messages look like (ledger.NewGeneratorFor): the
	// notebook's transactions without one. ContractSource names it in errors.
	Contract       *ledger.Contract
	ContractSource string
	// Count transactions, at Rate per second (0: as fast as possible).
	Count int
	Rate  float64
	// Seed makes the data reproducible (0: a new one, printed).
	Seed int64
	// Duplicates and Malformed are the fractions of producer retries and bad messages.
	Duplicates, Malformed float64
	// FirstID is the number of the first transaction_id, TXN<FirstID>; -1 continues after
	// the highest one already on the topic.
	FirstID int
	// CreateTopic creates a missing topic (with the cluster's default partitions) instead
	// of refusing.
	CreateTopic bool
	// Progress, when set, is called about every ProgressEvery while sending, and at the end.
	Progress      func(kafka.ProduceStats)
	ProgressEvery time.Duration
}

// tailScan is how many of each partition's last records Run reads to find the highest
// transaction_id there. A run's highest id is among its last messages (ids grow; only
// duplicates, which reach back at most 1024 messages, come after it).
const tailScan = 2048

// InterruptedError is Run stopped by its context before every transaction was sent.
type InterruptedError struct {
	Acked int64
	Count int
	Topic string
	Err   error // what the producer returned
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("produce interrupted: %d of %d transactions acknowledged by %s", e.Acked, e.Count, e.Topic)
}

// Unwrap returns what the producer returned.
func (e *InterruptedError) Unwrap() error { return e.Err }

// Run sends the transactions to topic and prints what it does to out. When ctx ends first
// it returns what was acknowledged and an *InterruptedError.
func Run(ctx context.Context, kc kafka.ClientConfig, topic string, o Options, out io.Writer) (kafka.ProduceStats, error) {
	st, err := run(ctx, kc, topic, o, out)
	if err != nil && ctx.Err() != nil {
		return st, &InterruptedError{Acked: st.Acked, Count: o.Count, Topic: topic, Err: err}
	}
	return st, err
}

func run(ctx context.Context, kc kafka.ClientConfig, topic string, o Options, out io.Writer) (kafka.ProduceStats, error) {
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	// The generator of the contract's messages (the notebook's without one); a first one
	// numbers the keys already on the topic.
	keys, err := ledger.NewGeneratorFor(o.Contract, o.Seed, ledger.GeneratorOptions{})
	if err != nil {
		return kafka.ProduceStats{}, fmt.Errorf("produce --contract %s: %w", o.ContractSource, err)
	}
	first, err := firstTransaction(ctx, kc, topic, o, keys, out)
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	prod, err := kafka.NewProducer(kc)
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	defer prod.Close()
	gen, err := ledger.NewGeneratorFor(o.Contract, o.Seed, ledger.GeneratorOptions{Duplicates: o.Duplicates, Malformed: o.Malformed, FirstID: first})
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	msgs := iter.Seq2[[]byte, []byte](func(yield func([]byte, []byte) bool) {
		for range o.Count {
			m := gen.Next(time.Now())
			if !yield(m.Key, m.Value) {
				return
			}
		}
	})
	fmt.Fprintf(out, "Producing %d financial transactions to %s (seed %d, ids from %s)...\n", o.Count, topic, o.Seed, keys.KeyText(first))
	st, err := prod.Produce(ctx, topic, msgs, kafka.ProduceOptions{Rate: o.Rate, ProgressEvery: o.ProgressEvery, Progress: o.Progress})
	if err != nil {
		if ctx.Err() != nil {
			return st, err
		}
		return st, fmt.Errorf("produce: %d of %d acknowledged: %w", st.Acked, o.Count, err)
	}
	fmt.Fprintf(out, "Produced %d transactions to %s in %s\n", st.Acked, topic, st.Elapsed.Round(time.Millisecond))
	return st, nil
}

// firstTransaction checks that the topic exists (or creates it, with CreateTopic) and
// picks the number of the first transaction_id: FirstID, or one past the highest TXN id
// in the last records of each partition. A FirstID that reaches back into ids already
// sent is said out loud: those messages will be refused as duplicates.
func firstTransaction(ctx context.Context, kc kafka.ClientConfig, topic string, o Options, keys ledger.MessageSource, out io.Writer) (int, error) {
	if _, err := kafka.TopicPartitions(ctx, kc, topic); err != nil {
		if !errors.Is(err, kafka.ErrNoTopic) || !o.CreateTopic {
			return 0, err
		}
		if err := kafka.CreateTopic(ctx, kc, topic); err != nil {
			return 0, err
		}
		fmt.Fprintf(out, "Created topic %s\n", topic)
	}
	highest := -1
	if _, err := kafka.ReadTail(ctx, kc, topic, tailScan, func(r engine.Record) error {
		if n, ok := keys.KeyNumber(r.Key); ok {
			highest = max(highest, n)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("produce: find the highest transaction_id on %s: %w", topic, err)
	}
	first := o.FirstID
	switch {
	case first < 0:
		first = highest + 1
		if highest >= 0 {
			fmt.Fprintf(out, "The topic already holds ids up to %s: continuing after it (--first-id chooses)\n", keys.KeyText(highest))
		}
	case first <= highest:
		fmt.Fprintf(out, "Note: --first-id %d re-sends ids already on the topic (up to %s): the ledger refuses each repeat as duplicate (same content) or conflicting_duplicate (other content)\n",
			first, keys.KeyText(highest))
	}
	if last := first + o.Count - 1; last > ledger.MaxTransactionNumber {
		return 0, fmt.Errorf("produce: ids %s to %d would pass %s, the last the numbering of ids allows: lower --count or choose --first-id",
			keys.KeyText(first), last, keys.KeyText(ledger.MaxTransactionNumber))
	}
	return first, nil
}
