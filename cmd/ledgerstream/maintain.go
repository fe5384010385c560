package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
)

func newMaintainCmd(g *cli.Globals) *cobra.Command {
	var (
		m      cli.MaintainFlags
		dryRun bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "maintain",
		Short: "Compact small files, merge manifests, expire snapshots and remove orphan files",
		Long: `Keeps the ledger (and <table>_rejects when it exists) fast to commit to: merges the
manifests every append adds, bin-packs small data files toward the target size, expires
old snapshots (the newest snapshot of every pipeline, which holds its offsets map, and
every snapshot newer than it always survive), and deletes files under the table's
location that no live metadata references and that are older than --orphan-older-than
(staged files of batches that never committed, superseded manifests, old metadata).
Safe while run commits to the same table: maintenance commits keep every row and carry
no ledgerstream.* summary key, so the pipeline's offsets are untouched; a pipeline commit
that lands first makes maintenance re-apply its work to the new head. --dry-run prints
what would be done.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := m.Options(dryRun)
			if err != nil {
				return err
			}
			g.ReadOnly = dryRun // a dry run creates nothing, not even an empty catalog
			ident, cat, err := g.OpenLedger(cmd.Context())
			if err != nil {
				return err
			}
			defer cat.Close()
			results, err := pipeline.MaintainTables(cmd.Context(), cat, ident, opts)
			if asJSON {
				if jerr := writeMaintainJSON(cmd.OutOrStdout(), results); jerr != nil {
					return errors.Join(err, jerr)
				}
			} else {
				for _, r := range results {
					r.WriteText(cmd.OutOrStdout())
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	m.AddFlags(f, "")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be done, change nothing")
	cli.AddJSONFlag(f, &asJSON)
	return cmd
}

// writeMaintainJSON prints maintain's --json document.
func writeMaintainJSON(w io.Writer, results []*iceberg.MaintainResult) error {
	return cli.WriteJSON(w, map[string]any{"tables": results})
}
