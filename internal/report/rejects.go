package report

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// RejectSummary counts the rows of the rejects table by reason code.
type RejectSummary struct {
	Total    int64         `json:"total"`
	ByReason []ReasonCount `json:"by_reason"` // by count descending, then reason
}

// ReasonCount is one row of the rejects-by-reason table.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// RejectTally accumulates rejects rows into a RejectSummary. The zero value is ready.
type RejectTally struct {
	by map[ledger.Reason]int64
}

// Add counts one row of the rejects table.
func (t *RejectTally) Add(row ledger.RejectRow) {
	if t.by == nil {
		t.by = map[ledger.Reason]int64{}
	}
	t.by[row.Reason]++
}

// Summary returns the counts so far.
func (t *RejectTally) Summary() *RejectSummary {
	s := &RejectSummary{ByReason: []ReasonCount{}}
	for r, n := range t.by {
		s.Total += n
		s.ByReason = append(s.ByReason, ReasonCount{Reason: string(r), Count: n})
	}
	slices.SortFunc(s.ByReason, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	return s
}

// text lays the summary out as show() does, after a heading. Reason codes are never cut:
// they are meant to be copied into `rejects list --reason`.
func (s *RejectSummary) text(numRows, _ int) string {
	rows := make([][]string, 0, len(s.ByReason))
	for _, r := range s.ByReason {
		rows = append(rows, []string{r.Reason, strconv.FormatInt(r.Count, 10)})
	}
	return "\nRejects by Reason: " + strconv.FormatInt(s.Total, 10) + " rejected\n" +
		showString([]string{"reason", "count"}, rows, max(numRows, len(rows)), 0) + "\n"
}

// Show lays out a table as Spark's DataFrame.show() does: every row, cells cut at 20
// characters when truncate is set, whole and left-aligned otherwise.
func Show(header []string, rows [][]string, truncate bool) string {
	t := 0
	if truncate {
		t = showTruncate
	}
	return showString(header, rows, len(rows), t)
}
