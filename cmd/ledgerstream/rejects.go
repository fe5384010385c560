package main

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/rejects"
)

func newRejectsCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rejects",
		Short: "List, show and re-publish the messages in the rejects table",
		Long: `The rejects table (<table>_rejects) holds every message that did not become a ledger
row: its source position, key, value (the first 64 KiB, with the size and SHA-256 of the
whole), headers, a reason code and a readable message.`,
	}
	cmd.AddCommand(newRejectsListCmd(g), newRejectsShowCmd(g), newRejectsRepublishCmd(g))
	return cmd
}

// readRejects reads the rows keep accepts from the rejects table of --table.
func readRejects(ctx context.Context, g *cli.Globals, keep func(*ledger.RejectRow) bool) ([]rejects.Row, error) {
	ident, cat, err := g.OpenLedger(ctx)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	return rejects.Read(ctx, cat, ident, keep)
}

func newRejectsListCmd(g *cli.Globals) *cobra.Command {
	var reason string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rejects in source position order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckReason(reason); err != nil {
				return err
			}
			rows, err := readRejects(cmd.Context(), g, func(r *ledger.RejectRow) bool {
				return reason == "" || string(r.Reason) == reason
			})
			if err != nil {
				return err
			}
			total := len(rows)
			if limit > 0 && len(rows) > limit {
				rows = rows[:limit]
			}
			return rejects.WriteList(cmd.OutOrStdout(), rows, total, asJSON)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "only rejects with this reason code")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many rows (0 = all)")
	cli.FlagRange(cmd.Flags(), "limit", "0", cli.Unbounded)
	cli.AddJSONFlag(cmd.Flags(), &asJSON)
	return cmd
}

func newRejectsShowCmd(g *cli.Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show TOPIC/PARTITION/OFFSET...",
		Short: "Print whole reject rows: key, value (text if printable UTF-8, else hex), headers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := rejects.AtPositions(args)
			if err != nil {
				return err
			}
			rows, err := readRejects(cmd.Context(), g, keep)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				err = rejects.WriteList(w, rows, len(rows), true)
			}
			for i := 0; i < len(rows) && !asJSON && err == nil; i++ {
				err = rejects.WriteRow(w, &rows[i])
			}
			if err != nil {
				return err
			}
			if missing := rejects.Missing(args, rows); len(missing) > 0 {
				return &cli.ExitError{Code: 1, Msg: "no reject at " + strings.Join(missing, ", ")}
			}
			return nil
		},
	}
	cli.AddJSONFlag(cmd.Flags(), &asJSON)
	return cmd
}

func newRejectsRepublishCmd(g *cli.Globals) *cobra.Command {
	var reason string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "republish (--reason R | TOPIC/PARTITION/OFFSET...)",
		Short: "Send chosen rejects to the topic again, once their cause is fixed",
		Long: `Sends the chosen rejects to --topic again through the idempotent producer, with their
key, value and headers, plus the header ` + rejects.RepublishedHeader + `=TOPIC/PARTITION/OFFSET
naming the reject. The pipeline then treats them as new messages: a fixed cause (a
currency or type added to the rules, a larger --max-message-bytes) lets them into the
ledger, and one republished twice is refused the second time as a duplicate.
Rejects whose value the table holds only in part (too_large beyond 64 KiB) are skipped:
their whole value is not there to send; so are gaps (lost_before_processing), which
hold no message at all.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (reason == "") == (len(args) == 0) {
				return errors.New("republish: give either --reason or positions, not both nor neither")
			}
			if err := cli.CheckReason(reason); err != nil {
				return err
			}
			keep := func(r *ledger.RejectRow) bool { return string(r.Reason) == reason }
			if len(args) > 0 {
				var err error
				if keep, err = rejects.AtPositions(args); err != nil {
					return err
				}
			}
			rows, err := readRejects(cmd.Context(), g, keep)
			if err != nil {
				return err
			}
			return rejects.Republish(cmd.Context(), g.KafkaConfigBounded(), g.Topic, rows, dryRun, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "re-publish every reject with this reason code")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be sent, send nothing")
	return cmd
}
