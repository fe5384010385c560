package bench

import (
	"fmt"
	"io"
	"strings"
)

// Cell is r on one line, as the bench prints each stage when it is measured.
func (r Result) Cell() string {
	if r.Unit != "" {
		return fmt.Sprintf("%.2f %s %s", r.Value, r.Unit, r.Note)
	}
	return fmt.Sprintf("%d records in %.2fs = %.0f/s %s", r.Records, r.Seconds, r.PerSec, r.Note)
}

// WriteScale writes the scale-out figures as a Markdown table, as the README shows them.
func WriteScale(out io.Writer, o Options, rows []ScaleRow) {
	kind := "SQLite"
	switch {
	case strings.HasPrefix(o.Catalog, "postgres"):
		kind = "PostgreSQL"
	case strings.HasPrefix(o.Catalog, "http"):
		kind = "REST"
	}
	fmt.Fprintf(out, "\nscale-out: %d/s offered for %s to %d partitions, trigger 1s, one table, %s catalog\n\n",
		o.ScaleRate, o.ScaleDuration, o.ScalePartitions, kind)
	fmt.Fprintln(out, "| workers | commits/s | commits/s per worker | conflicts (retries) per commit | unknown per commit | mean commit attempt | fenced batches | p99 produce→visible | index rows synced per worker (mean / max) | CPU per tx | CPU per worker | load average |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %d | %.2f | %.2f | %.2f | %.2f | %.0f ms | %d | %.2f s | %.0f / %d | %.1f µs | %.2f cores | %.1f |\n",
			r.Workers, r.CommitsPerSec, r.CommitsPerSecPerWorker, r.ConflictsPerCommit, r.UnknownPerCommit, r.CommitSeconds*1000, r.Fenced, r.P99.Seconds(),
			r.IndexRowsSyncedMean, r.IndexRowsSyncedMax, float64(r.CPUPerTx.Nanoseconds())/1000, r.CPUPerWorker, r.Load)
	}
}

// WriteTable writes the results as one aligned table.
func WriteTable(out io.Writer, results []Result) {
	fmt.Fprintln(out)
	w := 0
	for _, r := range results {
		w = max(w, len(r.Stage))
	}
	line := strings.Repeat("-", w+2) + "+" + strings.Repeat("-", 14) + "+" + strings.Repeat("-", 10) + "+" + strings.Repeat("-", 16) + "+" + strings.Repeat("-", 30)
	fmt.Fprintf(out, "%-*s | %12s | %8s | %14s | %s\n%s\n", w, "stage", "records", "seconds", "per second", "value / note", line)
	for _, r := range results {
		rec, sec, ps := "", "", ""
		if r.Records > 0 {
			rec = fmt.Sprint(r.Records)
		}
		if r.Seconds > 0 {
			sec = fmt.Sprintf("%.2f", r.Seconds)
		}
		if r.PerSec > 0 {
			ps = fmt.Sprintf("%.0f", r.PerSec)
		}
		note := r.Note
		if r.Unit != "" {
			note = strings.TrimSpace(fmt.Sprintf("%.2f %s %s", r.Value, r.Unit, r.Note))
		}
		fmt.Fprintf(out, "%-*s | %12s | %8s | %14s | %s\n", w, r.Stage, rec, sec, ps, note)
	}
}
