package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/produce"
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
			_, err := sendTransactions(cmd.Context(), g, p, cmd.OutOrStdout())
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

// sendTransactions sends the transactions (internal/produce) and prints progress lines to out.
func sendTransactions(ctx context.Context, g *globals, p produceFlags, out io.Writer) (kafka.ProduceStats, error) {
	opts, err := p.options(g, newProgress(out))
	if err != nil {
		return kafka.ProduceStats{}, err
	}
	st, err := produce.Run(ctx, g.kafkaConfigBounded(), g.topic, opts, out)
	return st, interrupted(ctx, err)
}

// options are the producer's options the flags describe (the messages of --contract, when
// given), with progress lines on progress: a live line on a terminal, a plain line every
// ten seconds elsewhere.
func (p produceFlags) options(g *globals, progress *progressPrinter) (produce.Options, error) {
	contract, err := g.contractFlag()
	if err != nil {
		return produce.Options{}, err
	}
	return produce.Options{
		Contract: contract, ContractSource: g.contract,
		Count: p.count, Rate: p.rate, Seed: p.seed, Duplicates: p.duplicates, Malformed: p.malformed,
		FirstID: p.firstID, CreateTopic: p.createTopic,
		ProgressEvery: progress.period(),
		Progress: func(s kafka.ProduceStats) {
			rate := float64(s.Acked) / max(s.Elapsed.Seconds(), 1e-9)
			progress.show(fmt.Sprintf("  sent %d/%d, acknowledged %d (%.0f/s), ETA %s", s.Sent, p.count, s.Acked, rate,
				eta(int64(p.count)-s.Acked, rate)), s.Acked+s.Failed >= int64(p.count))
		},
	}, nil
}

// interrupted makes a producer stopped by a signal exit as shells report the signal.
func interrupted(ctx context.Context, err error) error {
	var ie *produce.InterruptedError
	if errors.As(err, &ie) {
		return &exitError{code: interruptedCode(ctx), msg: ie.Error()}
	}
	return err
}

// dataPath is a folder under the data directory.
func dataPath(g *globals, sub string) string {
	dir := g.dataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Join(dir, sub)
}
