package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
)

// maintainFlags are the maintenance settings, shared by maintain and run's automatic
// maintenance.
type maintainFlags struct {
	retainLast      int
	olderThan       time.Duration
	orphanOlderThan time.Duration
	targetFileSize  int64
	minInputFiles   int
	steps           string
}

var maintainSteps = []string{"compact", "manifests", "expire", "orphans"}

func addMaintainFlags(f *pflag.FlagSet, m *maintainFlags, prefix string) {
	f.IntVar(&m.retainLast, prefix+"retain-last", iceberg.DefaultRetainLast, "snapshots to keep at least (a pipeline's newest snapshot and every newer one are always kept)")
	f.DurationVar(&m.olderThan, prefix+"older-than", 0, "keep snapshots younger than this too (0 = age protects nothing beyond the retained count)")
	f.DurationVar(&m.orphanOlderThan, prefix+"orphan-older-than", iceberg.DefaultOrphanOlderThan, "orphan removal deletes only files older than this (safety margin for batches being committed)")
	f.Int64Var(&m.targetFileSize, prefix+"target-file-size", 0, "compaction target file size in bytes (0 = the table's write.target-file-size-bytes)")
	f.IntVar(&m.minInputFiles, prefix+"min-input-files", iceberg.DefaultMinInputFiles, "fewest small files worth a compaction rewrite")
	f.StringVar(&m.steps, prefix+"steps", strings.Join(maintainSteps, ","), "steps to run, comma-separated: "+strings.Join(maintainSteps, ", "))
	flagRange(f, prefix+"retain-last", "1", unbounded)
	flagRange(f, prefix+"older-than", "0s", unbounded)
	flagRange(f, prefix+"orphan-older-than", "0s", unbounded)
	flagRange(f, prefix+"target-file-size", "0", unbounded)
	flagRange(f, prefix+"min-input-files", "1", unbounded)
}

func (m maintainFlags) options(dryRun bool) (iceberg.MaintainOptions, error) {
	o := iceberg.MaintainOptions{
		RetainLast: m.retainLast, OlderThan: m.olderThan, OrphanOlderThan: m.orphanOlderThan,
		TargetFileSize: m.targetFileSize, MinInputFiles: m.minInputFiles, DryRun: dryRun,
		SkipCompaction: true, SkipManifests: true, SkipExpiry: true, SkipOrphans: true,
		Logger: slog.Default(),
	}
	if m.retainLast < 1 {
		return o, fmt.Errorf("--retain-last must be at least 1, not %d", m.retainLast)
	}
	for _, s := range strings.Split(m.steps, ",") {
		switch strings.TrimSpace(s) {
		case "compact":
			o.SkipCompaction = false
		case "manifests":
			o.SkipManifests = false
		case "expire":
			o.SkipExpiry = false
		case "orphans":
			o.SkipOrphans = false
		case "":
		default:
			return o, fmt.Errorf("--steps: unknown step %q (want %s)", s, strings.Join(maintainSteps, ", "))
		}
	}
	return o, nil
}

func newMaintainCmd(g *globals) *cobra.Command {
	var (
		m      maintainFlags
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
			opts, err := m.options(dryRun)
			if err != nil {
				return err
			}
			g.readOnly = dryRun // a dry run creates nothing, not even an empty catalog
			ident, cat, err := openLedger(cmd.Context(), g)
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
	addMaintainFlags(f, &m, "")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be done, change nothing")
	f.BoolVar(&asJSON, "json", false, "print one JSON document")
	return cmd
}

func writeMaintainJSON(w io.Writer, results []*iceberg.MaintainResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"tables": results})
}
