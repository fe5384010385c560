package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

func newReportCmd(g *globals) *cobra.Command {
	var asJSON, full bool
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Print the ledger summary, the duplicate check, the latest 10 transactions and the rejects by reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := buildReport(cmd.Context(), g)
			if err != nil {
				return err
			}
			return writeReport(cmd.OutOrStdout(), rep, asJSON, full)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().BoolVar(&full, "full", false, "print whole cells, not cut at 20 characters as Spark's show() does")
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

// buildReport scans the ledger table once and builds the report, with the rejects table's
// counts by reason when there is one.
func buildReport(ctx context.Context, g *globals) (*report.Report, error) {
	ident, cat, err := openLedger(ctx, g)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	b := report.NewBuilder(0)
	if err := cat.ScanLedger(ctx, ident, 0, func(row ledger.Row, processed time.Time) error {
		b.Add(row, processed)
		return nil
	}); err != nil {
		return nil, err
	}
	rep := b.Report()
	rejects, err := loadRejectsTable(ctx, cat, ident, "", nil)
	if err != nil || !rejects.exists {
		return rep, err
	}
	var tally report.RejectTally
	if err := rejects.scan(ctx, cat, func(row ledger.RejectRow, _ time.Time) error {
		tally.Add(row)
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Rejects = tally.Summary()
	return rep, nil
}
