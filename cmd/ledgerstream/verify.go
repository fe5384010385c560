package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/audit"
	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

func newVerifyCmd(g *cli.Globals) *cobra.Command {
	var asJSON, tableOnly bool
	var pipeline, asOf, from, to string
	var where []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the ledger: the notebook's validations and, against the topic, exactly once",
		Long: `Runs the reference notebook's validations on the ledger (rows > 0, distinct hashes =
rows, distinct ids = rows, no amount <= 0), then reconciles the ledger with the topic read
with read_committed up to the offsets the pipeline committed: every message there is in
exactly one of the ledger (once, at its source position, with its hash) and the rejects
table (with the reason its content or the ledger's history gives), no transaction_id
appears twice in the ledger, and nothing in either table is absent from the topic.
Exits 1 naming the failed checks. A data file or manifest of the tables that cannot be
read (missing, cut short, damaged) does not stop it: verify names the file, counts the rows
it held as lost (check readable_files) and goes on with the others.

--as-of checks the ledger as it was at an RFC 3339 time or a snapshot id (see
'ledgerstream history'), reconciled up to the offsets the pipeline had committed then.

--from, --to and --where (with --table-only) run the validations on a window of the ledger,
as report does, reading only the data files that can hold its rows. The reconciliation with
the topic takes no window: it accounts for every offset, so it reads every row.`,
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
			if !w.IsZero() && !tableOnly {
				return errors.New("--from, --to and --where need --table-only: the reconciliation with the topic accounts for every offset, " +
					"so it reads every row (a window would make the rows outside it look lost); " +
					"`verify --table-only --from ...` runs the notebook's validations on the window, `verify` alone reconciles the whole ledger")
			}
			res, err := verify(cmd.Context(), g, pipeline, !tableOnly, at, w)
			if err != nil {
				return err
			}
			if res.PipelineNote != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), res.PipelineNote)
			}
			return writeVerify(cmd.OutOrStdout(), res, asJSON)
		},
	}
	cli.AddJSONFlag(cmd.Flags(), &asJSON)
	cmd.Flags().BoolVar(&tableOnly, "table-only", false, "run only the notebook's validations, without reading the topic")
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "pipeline whose committed offsets bound the reconciliation (default: the only one that committed to the table)")
	cmd.Flags().StringVar(&asOf, "as-of", "", "check the ledger as it was at this RFC 3339 time or snapshot id (default: now)")
	cmd.Flags().StringVar(&from, "from", "", "with --table-only: check only the rows whose time column is at or after this RFC 3339 time or date (YYYY-MM-DD)")
	cmd.Flags().StringVar(&to, "to", "", "with --table-only: check only the rows whose time column is before this RFC 3339 time or date")
	cmd.Flags().StringArrayVar(&where, "where", nil, "with --table-only: check only the rows whose group-by column has one of these values: COLUMN=V1,V2")
	return cmd
}

// writeVerify prints res as text, or as one JSON document, and returns an exit error
// naming the failed checks when one failed.
func writeVerify(w io.Writer, res *audit.VerifyResult, asJSON bool) error {
	if asJSON {
		if err := cli.WriteJSON(w, res); err != nil {
			return err
		}
	} else if err := res.WriteText(w); err != nil {
		return err
	}
	if err := report.Err(res.Checks); err != nil {
		return &cli.ExitError{Code: 1, Msg: err.Error()}
	}
	return nil
}

// verify checks the ledger as of at (audit.View.Verify), on the rows of w only (verify
// --table-only --from/--to/--where), reading the topic when withTopic is set.
func verify(ctx context.Context, g *cli.Globals, pipeline string, withTopic bool, at audit.AsOf, w iceberg.Window) (*audit.VerifyResult, error) {
	ident, cat, err := g.OpenLedger(ctx)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	v, err := audit.Open(ctx, cat, ident, at)
	if err != nil {
		return nil, err
	}
	if _, err := g.LedgerContract(ctx, cat, ident); err != nil {
		return nil, err // a --contract that is not the table's
	}
	opts := audit.VerifyOptions{Pipeline: pipeline, Topic: g.Topic, Window: w}
	if withTopic {
		opts.ReadTopic = func(ctx context.Context, fn func(engine.Record) error) (engine.TopicState, error) {
			return kafka.ReadTopicState(ctx, g.KafkaConfigBounded(), g.Topic, fn)
		}
	}
	return v.Verify(ctx, opts)
}
