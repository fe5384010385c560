package report

import (
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WriteText prints the report as the notebook printed it: each heading, then the query
// result laid out as Spark's DataFrame.show() lays it out (at most 20 rows per table,
// cells right-aligned and cut at 20 characters, "2025-01-16 10:00:..." for a timestamp
// with a fraction, as show() does). The notebook's emoji are left out of the headings;
// its blank lines (show() is a println, the next heading starts with "\n") are kept, so
// the output lines up with a notebook run.
func (r *Report) WriteText(w io.Writer) error {
	return r.writeText(w, showRows, showTruncate)
}

// WriteTextFull prints the report as WriteText does but as show(n, truncate=False) lays
// it out: every row, whole cells, left-aligned.
func (r *Report) WriteTextFull(w io.Writer) error {
	n := max(len(r.Summary), len(r.Duplicates), len(r.Latest))
	return r.writeText(w, n, 0)
}

func (r *Report) writeText(w io.Writer, numRows, truncate int) error {
	var sb strings.Builder
	if err := WriteDamageText(&sb, r.Damaged); err != nil {
		return err
	}

	if r.Window != nil {
		sb.WriteString("Window: " + r.Window.Filter + " (read " + strconv.Itoa(r.Window.FilesRead) + " of " +
			strconv.Itoa(r.Window.FilesTotal) + " data files; the others were pruned unopened)\n\n")
	}
	sb.WriteString("Transaction Ledger Summary:\n")
	rows := make([][]string, 0, len(r.Summary))
	header := []string{"transaction_type", "currency", "txn_count", "total_amount", "avg_amount"}
	if r.Columns != nil {
		header = append(slices.Clone(r.GroupBy), "txn_count", "total_"+r.AmountColumn, "avg_"+r.AmountColumn)
	}
	for _, s := range r.Summary {
		if r.Columns != nil {
			rows = append(rows, append(slices.Clone(s.Group), strconv.FormatInt(s.Count, 10), s.Total.String(), s.Avg.String()))
			continue
		}
		rows = append(rows, []string{
			s.TransactionType, s.Currency, strconv.FormatInt(s.Count, 10), s.Total.String(), s.Avg.String(),
		})
	}
	sb.WriteString(showString(header, rows, numRows, truncate))
	sb.WriteString("\n")

	sb.WriteString("\nDuplicate Check: " + strconv.Itoa(len(r.Duplicates)) + " duplicates found\n")
	if len(r.Duplicates) > 0 {
		rows = rows[:0]
		for _, d := range r.Duplicates {
			rows = append(rows, []string{d.TransactionHash, strconv.FormatInt(d.Count, 10)})
		}
		sb.WriteString(showString([]string{"transaction_hash", "occurrence_count"}, rows, numRows, truncate))
		sb.WriteString("\n")
	}

	sb.WriteString("\nLatest " + strconv.Itoa(LatestN) + " Transactions:\n")
	rows = rows[:0]
	if r.Columns != nil {
		for _, l := range r.Latest {
			rows = append(rows, l.Values)
		}
		sb.WriteString(showString(r.Columns, rows, numRows, truncate))
		sb.WriteString("\n")
		rows = rows[:0]
	}
	for _, l := range r.Latest {
		if l.Values != nil {
			continue
		}
		rows = append(rows, []string{
			l.TransactionID, l.AccountFrom, l.AccountTo, l.Amount.String(), l.Currency,
			l.TransactionType, formatTimestamp(l.EventTime),
		})
	}
	if r.Columns == nil {
		sb.WriteString(showString([]string{
			"transaction_id", "account_from", "account_to", "amount", "currency", "transaction_type", "event_timestamp",
		}, rows, numRows, truncate))
		sb.WriteString("\n")
	}

	if r.Rejects != nil {
		sb.WriteString(r.Rejects.text(numRows, truncate))
	} else if r.Window != nil {
		// A refused message has no event time the ledger trusts: it is in no window.
		sb.WriteString("\nRejects: not in a window report (a refused message has no trusted event time); see `ledgerstream rejects list`\n")
	}

	_, err := io.WriteString(w, sb.String())
	return err
}

// reportJSON is Report's own field set; the conversion keeps MarshalJSON from recursing.
type reportJSON Report

// MarshalJSON encodes the report with, besides its fields, "duplicate_count": the
// notebook's "N duplicates found", i.e. len(Duplicates); and the processing time range,
// null for an empty ledger.
func (r *Report) MarshalJSON() ([]byte, error) {
	orNull := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return json.Marshal(struct {
		*reportJSON
		DuplicateCount int        `json:"duplicate_count"`
		FirstProcessed *time.Time `json:"first_processing_time"`
		LastProcessed  *time.Time `json:"last_processing_time"`
	}{(*reportJSON)(r), len(r.Duplicates), orNull(r.FirstProcessed), orNull(r.LastProcessed)})
}

// WriteJSON prints the report as one indented JSON document (every row of every part, not
// only the 20 that the text form shows). Amounts are decimal strings such as "1234.50",
// timestamps RFC 3339 in UTC.
func (r *Report) WriteJSON(w io.Writer) error {
	return writeJSON(w, r)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
