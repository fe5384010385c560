package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/audit"
	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

func newReportCmd(g *cli.Globals) *cobra.Command {
	var asJSON, full bool
	var asOf, from, to string
	var txns, where []string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Print the ledger summary, the duplicate check, the latest 10 transactions and the rejects by reason",
		Long: `Prints the notebook's report on the ledger: the summary by (transaction_type, currency),
the duplicate check, the latest 10 transactions, and the rejects by reason.

A data file or manifest that cannot be read is named, with the rows it held, above the
figures (in JSON: damaged_files); the report goes on without it and exits 1, since its
figures lack those rows.

--as-of answers from the ledger as it was at an RFC 3339 time or a snapshot id (see
'ledgerstream history'); --transaction tells where transactions came from, as
'ledgerstream history --transaction' does.

--from, --to and --where report on part of the ledger: a time window on the report's time
column (event_timestamp) and values of its group-by columns. They prune the scan: data files
whose partition values or column bounds cannot match are not read, and the report says how
many were.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, err := audit.ParseAsOf(asOf)
			if err != nil {
				return err
			}
			w, err := audit.ParseWindow(from, to, where)
			if err != nil {
				return err
			}
			if len(txns) > 0 {
				if !w.IsZero() {
					return errors.New("--transaction finds transactions wherever they are: it takes no --from, --to or --where")
				}
				return findTransactions(cmd.Context(), cmd.OutOrStdout(), g, at, txns, nil, asJSON)
			}
			rep, err := buildReportWindow(cmd.Context(), g, at, w)
			if err != nil {
				return err
			}
			if err := writeReport(cmd.OutOrStdout(), rep, asJSON, full); err != nil {
				return err
			}
			if msg := rep.Incomplete(); msg != "" {
				return &cli.ExitError{Code: 1, Msg: msg}
			}
			return nil
		},
	}
	cli.AddJSONFlag(cmd.Flags(), &asJSON)
	cmd.Flags().BoolVar(&full, "full", false, "print whole cells, not cut at 20 characters as Spark's show() does")
	cmd.Flags().StringVar(&asOf, "as-of", "", "report the ledger as it was at this RFC 3339 time or snapshot id (default: now)")
	cmd.Flags().StringVar(&from, "from", "", "report only the rows whose time column is at or after this RFC 3339 time or date (YYYY-MM-DD, midnight UTC)")
	cmd.Flags().StringVar(&to, "to", "", "report only the rows whose time column is before this RFC 3339 time or date")
	cmd.Flags().StringArrayVar(&where, "where", nil, "report only the rows whose group-by column has one of these values: COLUMN=V1,V2 (repeat for more columns)")
	cmd.Flags().StringSliceVar(&txns, "transaction", nil, "instead of the report, show which snapshot, batch and source record brought these transaction ids in (comma-separated or repeated)")
	return cmd
}

func writeReport(w io.Writer, rep *report.Report, asJSON, full bool) error {
	switch {
	case asJSON:
		return rep.WriteJSON(w)
	case full:
		return rep.WriteTextFull(w)
	}
	return rep.WriteText(w)
}

// buildReportWindow scans the ledger table as of at once and builds the report over the
// rows in w (report --from/--to/--where), with the rejects table's counts by reason when
// there is one.
func buildReportWindow(ctx context.Context, g *cli.Globals, at audit.AsOf, w iceberg.Window) (*report.Report, error) {
	ident, cat, err := g.OpenLedger(ctx)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	if _, err := g.LedgerContract(ctx, cat, ident); err != nil {
		return nil, err // a --contract that is not the table's
	}
	v, err := audit.Open(ctx, cat, ident, at)
	if err != nil {
		return nil, err
	}
	return v.ReportWindow(ctx, w)
}
