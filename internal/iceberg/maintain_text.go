package iceberg

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteText prints what maintenance did (or, in a dry run, would do) to the table: the
// properties set, manifests merged, files compacted, snapshots expired (with each
// pipeline's protected one) and orphan files removed.
func (r *MaintainResult) WriteText(w io.Writer) {
	verb := func(done, would string) string {
		if r.DryRun {
			return would
		}
		return done
	}
	title := "Maintained " + r.Table
	if r.DryRun {
		title = "Dry run on " + r.Table + " (nothing changed)"
	}
	fmt.Fprintln(w, title)
	if len(r.PropertiesSet) > 0 {
		keys := make([]string, 0, len(r.PropertiesSet))
		for k, v := range r.PropertiesSet {
			keys = append(keys, k+"="+v)
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "  properties  %s %s\n", verb("set", "would set"), strings.Join(keys, ", "))
	}
	fmt.Fprintf(w, "  manifests   %d in the head's manifest list", r.Manifests.Before)
	if r.Manifests.After != r.Manifests.Before {
		fmt.Fprintf(w, ", merged into %d", r.Manifests.After)
	}
	fmt.Fprintln(w)
	c := r.Compaction
	if c.Groups == 0 {
		fmt.Fprintf(w, "  compaction  nothing to do (%d data files)\n", c.FilesBefore)
	} else {
		fmt.Fprintf(w, "  compaction  %s %d files (%s) into %d (%s) in %d groups; %d files left as they are\n",
			verb("rewrote", "would rewrite"), c.InputFiles, bytesStr(c.InputBytes), c.OutputFiles, bytesStr(c.OutputBytes), c.Groups, c.SkippedFiles)
	}
	e := r.Expiry
	pipes := make([]string, 0, len(e.Protected))
	for p, id := range e.Protected {
		pipes = append(pipes, fmt.Sprintf("%s@%d", p, id))
	}
	slices.Sort(pipes)
	fmt.Fprintf(w, "  expiry      %d snapshots, %s %d, %d kept; newest of each pipeline kept: %s\n",
		e.SnapshotsBefore, verb("expired", "would expire"), len(e.Expired), e.Retained, strings.Join(pipes, ", "))
	o := r.Orphans
	fmt.Fprintf(w, "  orphans     %d files (%s) %s\n", len(o.Files), bytesStr(o.Bytes), verb(fmt.Sprintf("found, %d deleted", o.Deleted), "would be deleted"))
	for i, f := range o.Files {
		if i == 10 && len(o.Files) > 11 {
			fmt.Fprintf(w, "              … and %d more\n", len(o.Files)-10)
			break
		}
		if r.DryRun {
			fmt.Fprintf(w, "              %s\n", f)
		}
	}
	if r.Conflicts > 0 {
		fmt.Fprintf(w, "  conflicts   %d commits retried because a pipeline committed first\n", r.Conflicts)
	}
}

// bytesStr is n bytes in B, KiB, MiB or GiB.
func bytesStr(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
