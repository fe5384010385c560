package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// produceFlags are the producer's settings, shared by produce and demo.
type produceFlags struct {
	count       int
	rate        float64
	seed        int64
	duplicates  float64
	malformed   float64
	firstID     int  // -1: after the highest transaction_id already on the topic
	createTopic bool // create a missing topic instead of refusing
}

// tailScan is how many of each partition's last records produce reads to find the highest
// transaction_id there. A run's highest id is among its last messages (ids grow; only
// duplicates, which reach back at most 1024 messages, come after it).
const tailScan = 2048

func newProduceCmd(g *globals) *cobra.Command {
	var p produceFlags
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send the seed's financial transactions to the topic",
		Long: `Sends --count generated transactions (the reference notebook's producer: accounts
ACC1000-ACC9999, amounts 10.00-10000.00, USD/EUR/GBP, four types, timestamp now in UTC)
keyed by transaction_id through an idempotent producer. --seed makes the data
reproducible; --duplicates and --malformed mix in retries and bad messages.

With --contract FILE, the messages are that contract's instead: every field a valid
value (enum values, strings that match the pattern, numbers within the bounds, decimals
at the column's scale, nested objects along the paths; optional fields sometimes absent),
keyed by the contract's key, counted as below (TXN + 8 digits when the key's checks allow
it); --malformed breaks one rule of the contract per message.

Transaction ids are TXN + 8 digits. By default a run continues after the highest id
already on the topic (read from the last records of each partition), so a second run
adds new transactions. --first-id N starts at TXN<N> instead: --first-id 0 with an
earlier run's --seed re-sends that run's transactions, which the ledger refuses as
duplicate (the same content) or conflicting_duplicate (another content); the dedup
demonstration. A topic that does not exist is an error unless --create-topic is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := produce(cmd.Context(), g, p, cmd.OutOrStdout())
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.count, "count", 200, "transactions to send")
	f.Float64Var(&p.rate, "rate", 0, "transactions per second (0 = as fast as possible)")
	f.Int64Var(&p.seed, "seed", 0, "random seed (0 = a new one each run)")
	f.Float64Var(&p.duplicates, "duplicates", 0, "fraction of messages that re-send an earlier transaction")
	f.Float64Var(&p.malformed, "malformed", 0, "fraction of messages that break a validation rule")
	f.IntVar(&p.firstID, "first-id", -1, "number of the first transaction_id, TXN<N> (-1 = after the highest one already on the topic)")
	f.BoolVar(&p.createTopic, "create-topic", false, "create the topic (the cluster's default partitions) when it does not exist")
	limitProduceFlags(f, "count")
	flagRange(f, "first-id", "-1", strconv.Itoa(ledger.MaxTransactionNumber))
	return cmd
}

// limitProduceFlags gives the producer's flags their ranges; count is the name of the
// transaction count flag (demo calls it --transactions).
func limitProduceFlags(f *pflag.FlagSet, count string) {
	flagRange(f, count, "1", strconv.Itoa(ledger.MaxTransactionNumber+1))
	if f.Lookup("rate") != nil {
		flagRange(f, "rate", "0", unbounded)
		flagRange(f, "duplicates", "0", "1")
		flagRange(f, "malformed", "0", "1")
	}
}

// produce sends the transactions and prints progress lines to out.
func produce(ctx context.Context, g *globals, p produceFlags, out io.Writer) (kafka.ProduceStats, error) {
	if p.seed == 0 {
		p.seed = time.Now().UnixNano()
	}
	contract, err := g.contractFlag()
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	// The generator of the contract's messages (the notebook's without --contract); a first
	// one numbers the keys already on the topic.
	keys, err := ledger.NewGeneratorFor(contract, p.seed, ledger.GeneratorOptions{})
	if err != nil {
		return kafka.ProduceStats{}, fmt.Errorf("produce --contract %s: %w", g.contract, err)
	}
	kc := g.kafkaConfigBounded()
	first, err := firstTransaction(ctx, kc, g.topic, p, keys, out)
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	prod, err := kafka.NewProducer(kc)
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	defer prod.Close()
	gen, err := ledger.NewGeneratorFor(contract, p.seed, ledger.GeneratorOptions{Duplicates: p.duplicates, Malformed: p.malformed, FirstID: first})
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	msgs := iter.Seq2[[]byte, []byte](func(yield func([]byte, []byte) bool) {
		for range p.count {
			m := gen.Next(time.Now())
			if !yield(m.Key, m.Value) {
				return
			}
		}
	})
	fmt.Fprintf(out, "Producing %d financial transactions to %s (seed %d, ids from %s)...\n", p.count, g.topic, p.seed, keys.KeyText(first))
	progress := newProgress(out)
	st, err := prod.Produce(ctx, g.topic, msgs, kafka.ProduceOptions{
		Rate: p.rate,
		// A live line on a terminal (observe.go), a plain line every ten seconds elsewhere.
		ProgressEvery: progress.period(),
		Progress: func(s kafka.ProduceStats) {
			rate := float64(s.Acked) / max(s.Elapsed.Seconds(), 1e-9)
			progress.show(fmt.Sprintf("  sent %d/%d, acknowledged %d (%.0f/s), ETA %s", s.Sent, p.count, s.Acked, rate,
				eta(int64(p.count)-s.Acked, rate)), s.Acked+s.Failed >= int64(p.count))
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return st, &exitError{code: interruptedCode(ctx), msg: fmt.Sprintf("produce interrupted: %d of %d transactions acknowledged by %s", st.Acked, p.count, g.topic)}
		}
		return st, fmt.Errorf("produce: %d of %d acknowledged: %w", st.Acked, p.count, err)
	}
	fmt.Fprintf(out, "Produced %d transactions to %s in %s\n", st.Acked, g.topic, st.Elapsed.Round(time.Millisecond))
	return st, nil
}

// firstTransaction checks that the topic exists (or creates it, with --create-topic) and
// picks the number of the first transaction_id: --first-id, or one past the highest
// TXN id in the last records of each partition. A --first-id that reaches back into ids
// already sent is said out loud: those messages will be refused as duplicates.
func firstTransaction(ctx context.Context, kc kafka.ClientConfig, topic string, p produceFlags, keys ledger.MessageSource, out io.Writer) (int, error) {
	if _, err := kafka.TopicPartitions(ctx, kc, topic); err != nil {
		if !errors.Is(err, kafka.ErrNoTopic) || !p.createTopic {
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
	first := p.firstID
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
	if last := first + p.count - 1; last > ledger.MaxTransactionNumber {
		return 0, fmt.Errorf("produce: ids %s to %d would pass %s, the last the numbering of ids allows: lower --count or choose --first-id",
			keys.KeyText(first), last, keys.KeyText(ledger.MaxTransactionNumber))
	}
	return first, nil
}

// dataPath is a folder under the data directory.
func dataPath(g *globals, sub string) string {
	dir := g.dataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Join(dir, sub)
}
