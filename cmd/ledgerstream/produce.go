package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// produceFlags are the producer's settings, shared by produce and demo.
type produceFlags struct {
	count      int
	rate       float64
	seed       int64
	duplicates float64
	malformed  float64
}

func newProduceCmd(g *globals) *cobra.Command {
	var p produceFlags
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send the seed's financial transactions to the topic",
		Long: `Sends --count generated transactions (the reference notebook's producer: accounts
ACC1000-ACC9999, amounts 10.00-10000.00, USD/EUR/GBP, four types, timestamp now in UTC)
keyed by transaction_id through an idempotent producer. --seed makes the data
reproducible; --duplicates and --malformed mix in retries and bad messages.`,
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
	return cmd
}

// produce sends the transactions and prints progress lines to out.
func produce(ctx context.Context, g *globals, p produceFlags, out io.Writer) (kafka.ProduceStats, error) {
	if p.seed == 0 {
		p.seed = time.Now().UnixNano()
	}
	prod, err := kafka.NewProducer(g.kafkaConfig())
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	defer prod.Close()
	gen := ledger.NewGenerator(p.seed, ledger.GeneratorOptions{Duplicates: p.duplicates, Malformed: p.malformed})
	msgs := iter.Seq2[[]byte, []byte](func(yield func([]byte, []byte) bool) {
		for range p.count {
			m := gen.Next(time.Now())
			if !yield(m.Key, m.Value) {
				return
			}
		}
	})
	fmt.Fprintf(out, "Producing %d financial transactions to %s (seed %d)...\n", p.count, g.topic, p.seed)
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
		return st, fmt.Errorf("produce: %d of %d acknowledged: %w", st.Acked, p.count, err)
	}
	fmt.Fprintf(out, "Produced %d transactions to %s in %s\n", st.Acked, g.topic, st.Elapsed.Round(time.Millisecond))
	return st, nil
}

// dataPath is a folder under the data directory.
func dataPath(g *globals, sub string) string {
	dir := g.dataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Join(dir, sub)
}
