package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/audit"
	"github.com/ledgerstream/ledgerstream/internal/cli"
)

func newHistoryCmd(g *cli.Globals) *cobra.Command {
	var asJSON bool
	var since, asOf string
	var limit int
	var txns, positions []string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the ledger's snapshots, or tell which batch brought given transactions in",
		Long: `Lists the ledger's snapshots, newest first: when each was committed, by which pipeline
and batch (or "maintenance", or "foreign writer"), the rows and rejects it added, the files
it added, and the offsets it moved per partition.

With --transaction (or --position), tells instead for each transaction id (or source record
TOPIC/PARTITION/OFFSET) which snapshot, batch and source record brought it into the ledger
or the rejects table, and shows its row. Exits 1 when one is in neither table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, err := audit.ParseAsOf(asOf)
			if err != nil {
				return err
			}
			if len(txns) > 0 || len(positions) > 0 {
				return findTransactions(cmd.Context(), cmd.OutOrStdout(), g, at, txns, positions, asJSON)
			}
			if !at.IsZero() {
				return fmt.Errorf("--as-of goes with --transaction or --position; to list older snapshots use --since and --limit")
			}
			var opts audit.HistoryOptions
			if since != "" {
				if opts.Since, err = time.Parse(time.RFC3339Nano, since); err != nil {
					return fmt.Errorf("--since %q: not an RFC 3339 time (e.g. 2026-11-27T17:00:00Z)", since)
				}
			}
			opts.Limit = limit
			ident, cat, err := g.OpenLedger(cmd.Context())
			if err != nil {
				return err
			}
			defer cat.Close()
			if _, err := g.LedgerContract(cmd.Context(), cat, ident); err != nil {
				return err
			}
			h, err := audit.History(cmd.Context(), cat, ident, opts)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.WriteJSON(cmd.OutOrStdout(), h)
			}
			return h.WriteText(cmd.OutOrStdout())
		},
	}
	cli.AddJSONFlag(cmd.Flags(), &asJSON)
	cmd.Flags().StringVar(&since, "since", "", "only snapshots committed at or after this RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many snapshots, newest first (0 = all)")
	cli.FlagRange(cmd.Flags(), "limit", "0", cli.Unbounded)
	cmd.Flags().StringSliceVar(&txns, "transaction", nil, "transaction ids to trace (comma-separated or repeated)")
	cmd.Flags().StringSliceVar(&positions, "position", nil, "source records TOPIC/PARTITION/OFFSET to trace (comma-separated or repeated)")
	cmd.Flags().StringVar(&asOf, "as-of", "", "with --transaction: look in the tables as they were at this RFC 3339 time or snapshot id")
	return cmd
}

// findTransactions prints where transaction ids and source positions came from; exit 1
// when one is in neither table.
func findTransactions(ctx context.Context, w io.Writer, g *cli.Globals, at audit.AsOf, txns, positions []string, asJSON bool) error {
	var pos []audit.Position
	for _, s := range positions {
		p, err := audit.ParsePosition(s)
		if err != nil {
			return err
		}
		pos = append(pos, p)
	}
	ident, cat, err := g.OpenLedger(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	if _, err := g.LedgerContract(ctx, cat, ident); err != nil {
		return err
	}
	v, err := audit.Open(ctx, cat, ident, at)
	if err != nil {
		return err
	}
	res, err := v.Find(ctx, txns, pos)
	if err != nil {
		return err
	}
	if asJSON {
		err = cli.WriteJSON(w, res)
	} else {
		err = res.WriteText(w)
	}
	if err != nil {
		return err
	}
	if missing := res.NotFound(); len(missing) > 0 {
		return &cli.ExitError{Code: 1, Msg: fmt.Sprintf("not found in %s or its rejects table (as of %s): %s", g.Table, at, strings.Join(missing, ", "))}
	}
	return nil
}
