package main

import (
	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/produce"
)

func newProduceCmd(g *cli.Globals) *cobra.Command {
	var p cli.ProduceFlags
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
			opts, err := p.Options(g, cli.NewProgress(cmd.OutOrStdout()))
			if err != nil {
				return err
			}
			_, err = produce.Run(cmd.Context(), g.KafkaConfigBounded(), g.Topic, opts, cmd.OutOrStdout())
			return cli.Interrupted(cmd.Context(), err)
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.Count, "count", 200, "transactions to send")
	f.Float64Var(&p.Rate, "rate", 0, "transactions per second (0 = as fast as possible)")
	f.Int64Var(&p.Seed, "seed", 0, "random seed (0 = a new one each run)")
	f.Float64Var(&p.Duplicates, "duplicates", 0, "fraction of messages that re-send an earlier transaction")
	f.Float64Var(&p.Malformed, "malformed", 0, "fraction of messages that break a validation rule")
	f.IntVar(&p.FirstID, "first-id", -1, "number of the first transaction_id, TXN<N> (-1 = after the highest one already on the topic)")
	f.BoolVar(&p.CreateTopic, "create-topic", false, "create the topic (the cluster's default partitions) when it does not exist")
	cli.LimitProduceFlags(f, "count")
	return cmd
}
