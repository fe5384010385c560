package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// Kinds of snapshot, by who made it.
const (
	KindPipeline    = "pipeline"       // a batch of a ledgerstream pipeline (ledgerstream.* summary keys)
	KindMaintenance = "maintenance"    // a rewrite that keeps every row (compaction, manifest merge)
	KindForeign     = "foreign writer" // any other commit: another writer appending, deleting, …
)

// Entry is one snapshot of the ledger's history, with what it changed.
type Entry struct {
	SnapshotID  int64     `json:"snapshot_id"`
	ParentID    int64     `json:"parent_id,omitempty"`
	CommittedAt time.Time `json:"committed_at"`
	// Table is "ledger", or "rejects" for a commit to the rejects table that no ledger
	// snapshot of its pipeline precedes (its rejects are not counted elsewhere).
	Table     string `json:"table"`
	Kind      string `json:"kind"`
	Operation string `json:"operation"`
	Pipeline  string `json:"pipeline,omitempty"`
	Batch     int64  `json:"batch,omitempty"`
	// RowsAdded is the net number of rows the snapshot added (added minus deleted records:
	// 0 for a compaction).
	RowsAdded int64 `json:"rows_added"`
	// RejectsAdded are the rows the same batch added to the rejects table (its commits
	// there follow the ledger's).
	RejectsAdded int64 `json:"rejects_added"`
	FilesAdded   int64 `json:"files_added"`
	FilesRemoved int64 `json:"files_removed"`
	// Offsets are the partitions whose committed offset the snapshot moved.
	Offsets []OffsetMove `json:"offsets_moved,omitempty"`
}

// OffsetMove is one partition's committed offset before and after a batch.
type OffsetMove struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// From is the offset before the batch; nil when the pipeline had not committed the
	// partition before, or when the snapshot before was expired (FromUnknown).
	From        *int64 `json:"from"`
	FromUnknown bool   `json:"from_unknown,omitempty"`
	To          int64  `json:"to"`
}

func (m OffsetMove) String() string {
	from := "new"
	switch {
	case m.FromUnknown:
		from = "?"
	case m.From != nil:
		from = strconv.FormatInt(*m.From, 10)
	}
	return fmt.Sprintf("%s/%d %s→%d", m.Topic, m.Partition, from, m.To)
}

// HistoryResult is the history of the ledger, newest first.
type HistoryResult struct {
	Table   string  `json:"table"`
	Entries []Entry `json:"snapshots"`
	// Complete says whether the history reaches the table's first snapshot; when false,
	// older snapshots were expired and Oldest is the oldest moment still available.
	Complete bool      `json:"complete"`
	Oldest   time.Time `json:"oldest_available,omitzero"`
	// Shown and Total count the entries printed and those the history holds.
	Total int `json:"total"`
}

// HistoryOptions select entries: committed at or after Since (zero: all), at most Limit
// of them, newest first (0: all).
type HistoryOptions struct {
	Since time.Time
	Limit int
}

// History reads the histories of the ledger ident and its rejects table and describes each
// ledger snapshot, newest first.
func History(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier, opts HistoryOptions) (*HistoryResult, error) {
	ledgerHistory, err := cat.Snapshots(ctx, ident)
	if err != nil {
		return nil, err
	}
	rejectsHistory, err := cat.Snapshots(ctx, iceberg.RejectsIdent(ident))
	if err != nil && !errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, err
	}
	res := &HistoryResult{Table: identName(ident), Complete: true}
	if n := len(ledgerHistory); n > 0 {
		oldest := ledgerHistory[n-1]
		res.Complete, res.Oldest = oldest.ParentID == 0, oldest.Time
	}
	all := buildHistory(ledgerHistory, rejectsHistory)
	res.Total = len(all)
	for _, e := range all {
		if !opts.Since.IsZero() && e.CommittedAt.Before(opts.Since) {
			break // newest first: the rest are older still
		}
		if opts.Limit > 0 && len(res.Entries) == opts.Limit {
			break
		}
		res.Entries = append(res.Entries, e)
	}
	return res, nil
}

// buildHistory describes the snapshots of ledger (main's history, newest first) and
// attaches to each pipeline batch the rows its pipeline then added to the rejects table
// (rejects, newest first): a batch commits its rejects after its ledger rows, so a rejects
// commit belongs to the newest ledger snapshot of its pipeline committed before it.
func buildHistory(ledger, rejects []iceberg.SnapshotInfo) []Entry {
	entries := make([]Entry, 0, len(ledger))
	for i, s := range ledger {
		e := Entry{SnapshotID: s.SnapshotID, ParentID: s.ParentID, CommittedAt: s.Time, Table: "ledger",
			Kind: kindOf(s), Operation: s.Operation, Pipeline: s.Pipeline, Batch: s.Batch,
			RowsAdded:    summaryInt(s, "added-records") - summaryInt(s, "deleted-records"),
			FilesAdded:   summaryInt(s, "added-data-files"),
			FilesRemoved: summaryInt(s, "deleted-data-files"),
		}
		if s.Pipeline != "" {
			e.Offsets = moves(s, ledger[i+1:])
		}
		entries = append(entries, e)
	}
	// Rejects commits, oldest first, each to the newest earlier ledger batch of its pipeline.
	for j := len(rejects) - 1; j >= 0; j-- {
		r := rejects[j]
		if r.Pipeline == "" {
			continue // maintenance of the rejects table, or a foreign writer: no rejects of ours
		}
		added := summaryInt(r, "added-records") - summaryInt(r, "deleted-records")
		owner := -1
		for i, s := range ledger {
			if s.Pipeline == r.Pipeline && !s.Time.After(r.Time) {
				owner = i
				break
			}
		}
		if owner >= 0 {
			entries[owner].RejectsAdded += added
			continue
		}
		if added == 0 {
			continue
		}
		entries = append(entries, Entry{SnapshotID: r.SnapshotID, ParentID: r.ParentID, CommittedAt: r.Time,
			Table: "rejects", Kind: KindPipeline, Operation: r.Operation, Pipeline: r.Pipeline, Batch: r.Batch,
			RejectsAdded: added, FilesAdded: summaryInt(r, "added-data-files"), Offsets: moves(r, rejects[j+1:])})
	}
	slices.SortStableFunc(entries, func(a, b Entry) int { return b.CommittedAt.Compare(a.CommittedAt) })
	return entries
}

// kindOf says who made snapshot s: a pipeline (its summary keys), maintenance (a replace
// that adds no rows), or anyone else.
func kindOf(s iceberg.SnapshotInfo) string {
	switch {
	case s.Pipeline != "":
		return KindPipeline
	case s.Operation == string(table.OpReplace) && summaryInt(s, "added-records") == summaryInt(s, "deleted-records"):
		return KindMaintenance
	}
	return KindForeign
}

// moves returns the partitions whose offset snapshot s (of a pipeline) moved, compared with
// the newest snapshot of its pipeline in older (newest first).
func moves(s iceberg.SnapshotInfo, older []iceberg.SnapshotInfo) []OffsetMove {
	prev, found := newestOf(older, s.Pipeline)
	// Without a predecessor in the kept history, was there one that expired?
	oldestKept := s
	if len(older) > 0 {
		oldestKept = older[len(older)-1]
	}
	expired := !found && oldestKept.ParentID != 0
	var out []OffsetMove
	for p, to := range s.Offsets {
		m := OffsetMove{Topic: p.Topic, Partition: p.Partition, To: to}
		switch from, ok := prev.Offsets[p]; {
		case ok && from == to:
			continue
		case ok:
			m.From = &from
		case expired:
			m.FromUnknown = true
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b OffsetMove) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// summaryInt is an integer of s's summary (0 when absent).
func summaryInt(s iceberg.SnapshotInfo, key string) int64 {
	n, _ := strconv.ParseInt(s.Summary[key], 10, 64)
	return n
}

// WriteText prints the history as a table, newest first, and how far it reaches.
func (h *HistoryResult) WriteText(w io.Writer) error {
	// With one topic (the usual case), the moves name partitions only.
	topics := map[string]bool{}
	for _, e := range h.Entries {
		for _, m := range e.Offsets {
			topics[m.Topic] = true
		}
	}
	movedHeader := "offsets_moved"
	oneTopic := len(topics) == 1
	if oneTopic {
		for t := range topics {
			movedHeader = "offsets_moved (" + t + ")"
		}
	}
	header := []string{"committed_at", "snapshot_id", "by", "rows_added", "rejects_added", "files_added", movedHeader}
	rows := make([][]string, 0, len(h.Entries))
	for _, e := range h.Entries {
		by := e.Kind
		if e.Kind == KindPipeline {
			by = fmt.Sprintf("%s batch %d", e.Pipeline, e.Batch)
			if e.Table != "ledger" {
				by += " (" + e.Table + " only)"
			}
		}
		files := strconv.FormatInt(e.FilesAdded, 10)
		if e.FilesRemoved > 0 {
			files += fmt.Sprintf(" (-%d)", e.FilesRemoved)
		}
		moved := make([]string, len(e.Offsets))
		for i, m := range e.Offsets {
			moved[i] = m.String()
			if oneTopic {
				moved[i] = strings.TrimPrefix(moved[i], m.Topic+"/")
			}
		}
		rows = append(rows, []string{e.CommittedAt.UTC().Format(time.RFC3339Nano), strconv.FormatInt(e.SnapshotID, 10), by,
			strconv.FormatInt(e.RowsAdded, 10), strconv.FormatInt(e.RejectsAdded, 10), files, strings.Join(moved, " ")})
	}
	var b strings.Builder
	if len(rows) == 0 {
		fmt.Fprintf(&b, "%s: no snapshot to show\n", h.Table)
	} else {
		b.WriteString(report.Show(header, rows, false))
	}
	fmt.Fprintf(&b, "%d of %d snapshots of %s shown", len(h.Entries), h.Total, h.Table)
	if !h.Complete {
		fmt.Fprintf(&b, "; older snapshots were expired by maintenance, the oldest moment still available is %s",
			h.Oldest.UTC().Format(time.RFC3339Nano))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// partitionOf is the offsets map key of a source position.
func partitionOf(topic string, partition int32) engine.Partition {
	return engine.Partition{Topic: topic, Partition: partition}
}
