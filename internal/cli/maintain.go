package cli

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
)

// MaintainFlags are the maintenance settings, shared by maintain and run's automatic
// maintenance.
type MaintainFlags struct {
	RetainLast      int
	OlderThan       time.Duration
	OrphanOlderThan time.Duration
	TargetFileSize  int64
	MinInputFiles   int
	Steps           string
}

var maintainSteps = []string{"compact", "manifests", "expire", "orphans"}

// AddFlags registers m's flags on f, each name with prefix before it (run's are
// --maintain-*).
func (m *MaintainFlags) AddFlags(f *pflag.FlagSet, prefix string) {
	f.IntVar(&m.RetainLast, prefix+"retain-last", iceberg.DefaultRetainLast, "snapshots to keep at least (a pipeline's newest snapshot and every newer one are always kept)")
	f.DurationVar(&m.OlderThan, prefix+"older-than", 0, "keep snapshots younger than this too (0 = age protects nothing beyond the retained count)")
	f.DurationVar(&m.OrphanOlderThan, prefix+"orphan-older-than", iceberg.DefaultOrphanOlderThan, "orphan removal deletes only files older than this (safety margin for batches being committed)")
	f.Int64Var(&m.TargetFileSize, prefix+"target-file-size", 0, "compaction target file size in bytes (0 = the table's write.target-file-size-bytes)")
	f.IntVar(&m.MinInputFiles, prefix+"min-input-files", iceberg.DefaultMinInputFiles, "fewest small files worth a compaction rewrite")
	f.StringVar(&m.Steps, prefix+"steps", strings.Join(maintainSteps, ","), "steps to run, comma-separated: "+strings.Join(maintainSteps, ", "))
	FlagRange(f, prefix+"retain-last", "1", Unbounded)
	FlagRange(f, prefix+"older-than", "0s", Unbounded)
	FlagRange(f, prefix+"orphan-older-than", "0s", Unbounded)
	FlagRange(f, prefix+"target-file-size", "0", Unbounded)
	FlagRange(f, prefix+"min-input-files", "1", Unbounded)
}

// Options are the maintenance options the flags describe.
func (m MaintainFlags) Options(dryRun bool) (iceberg.MaintainOptions, error) {
	o := iceberg.MaintainOptions{
		RetainLast: m.RetainLast, OlderThan: m.OlderThan, OrphanOlderThan: m.OrphanOlderThan,
		TargetFileSize: m.TargetFileSize, MinInputFiles: m.MinInputFiles, DryRun: dryRun,
		SkipCompaction: true, SkipManifests: true, SkipExpiry: true, SkipOrphans: true,
		Logger: slog.Default(),
	}
	if m.RetainLast < 1 {
		return o, fmt.Errorf("--retain-last must be at least 1, not %d", m.RetainLast)
	}
	for _, s := range strings.Split(m.Steps, ",") {
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
