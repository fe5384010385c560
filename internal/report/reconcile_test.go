package report

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// topicMsg is a valid message for transaction id with the given amount.
func topicMsg(id, amount string) []byte {
	return fmt.Appendf(nil, `{"transaction_id":%q,"account_from":"ACC1","account_to":"ACC2","amount":%q,"currency":"EUR","transaction_type":"payment","timestamp":"2025-01-16T10:00:00"}`, id, amount)
}

func rowOf(t *testing.T, value []byte, part int32, off int64) ledger.Row {
	t.Helper()
	rules := ledger.DefaultRules()
	row, rej := rules.Decode(value)
	if rej != nil {
		t.Fatal(rej)
	}
	row.SourceTopic, row.SourcePartition, row.SourceOffset = "tx", part, off
	return row
}

func rejectOf(value []byte, part int32, off int64, reason ledger.Reason) ledger.RejectRow {
	return ledger.NewRejectRow("tx", part, off, nil, value, nil, time.Time{}, &ledger.Reject{Reason: reason})
}

// TestReconcile feeds a small topic and tables, each case breaking them in one way.
func TestReconcile(t *testing.T) {
	msgs := [][]byte{
		topicMsg("T1", "10.00"),
		[]byte(`{"bad":`),
		topicMsg("T1", "10.00"), // a retry of T1
		topicMsg("T1", "99.00"), // T1 again with other content
		topicMsg("T2", "5.00"),
	}
	tp := TopicPartition{"tx", 0}
	good := func(t *testing.T) ([]ledger.Row, []ledger.RejectRow) {
		return []ledger.Row{rowOf(t, msgs[0], 0, 0), rowOf(t, msgs[4], 0, 4)},
			[]ledger.RejectRow{rejectOf(msgs[1], 0, 1, ledger.ReasonMalformedJSON),
				rejectOf(msgs[2], 0, 2, ledger.ReasonDuplicate), rejectOf(msgs[3], 0, 3, ledger.ReasonConflictingDuplicate)}
	}
	for _, tc := range []struct {
		name     string
		rejectAt int64
		edit     func(rows []ledger.Row, rejects []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow)
		want     string // "" for a pass, else a fragment of the first discrepancy
	}{
		{"all accounted for", 5, nil, ""},
		{"rejects still pending after a crash", 1, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			return r, j[:0]
		}, ""},
		{"lost row", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			return r[:1], j
		}, "not in the ledger"},
		{"lost reject", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			return r, j[1:]
		}, "in neither table"},
		{"doubled row", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			return append(r, r[0]), j
		}, "more than one row"},
		{"duplicate accepted", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			return append(r, rowOf(t, msgs[2], 0, 2)), j[:1]
		}, "appears twice"},
		{"in both tables", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			return r, append(j, rejectOf(msgs[0], 0, 0, ledger.ReasonDuplicate))
		}, "both the ledger and the rejects table"},
		{"wrong reason", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			j[2].Reason = ledger.ReasonDuplicate
			return r, j
		}, "hashes say otherwise"},
		{"altered row", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			r[1].TransactionHash = strings.Repeat("0", 64)
			return r, j
		}, "does not match its record"},
		{"row from nowhere", 5, func(r []ledger.Row, j []ledger.RejectRow) ([]ledger.Row, []ledger.RejectRow) {
			x := rowOf(t, topicMsg("T9", "1.00"), 0, 7)
			return append(r, x), j
		}, "matches no record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, rejects := good(t)
			if tc.edit != nil {
				rows, rejects = tc.edit(rows, rejects)
			}
			rec := NewReconciler(map[TopicPartition]int64{tp: 5}, map[TopicPartition]int64{tp: tc.rejectAt})
			for _, r := range rows {
				rec.AddRow(r)
			}
			for _, r := range rejects {
				rec.AddReject(r)
			}
			rules := ledger.DefaultRules()
			for off, m := range msgs {
				rec.AddRecord(tp, int64(off), m, &rules)
			}
			rec.AddRecord(tp, 5, msgs[0], &rules) // above the committed offset: pending
			res := rec.Result()
			check := res.Check()
			if tc.want == "" {
				if !check.Passed {
					t.Fatalf("failed: %s", check.Detail)
				}
				return
			}
			if check.Passed || !strings.Contains(check.Detail, tc.want) {
				t.Fatalf("check %+v, want a failure mentioning %q", check, tc.want)
			}
		})
	}
}

// TestReconcileGaps: records deleted from the topic (retention, DeleteRecords) are told
// apart: processed before they were deleted (fine), lost before processing and recorded
// as a gap (accounted for), lost without a trace (a discrepancy with its range), and a
// re-created topic is named as such.
func TestReconcileGaps(t *testing.T) {
	tp := TopicPartition{"tx", 0}
	var msgs [][]byte
	for i := range 10 {
		msgs = append(msgs, topicMsg(fmt.Sprintf("T%d", i), "1.00"))
	}
	rowsAt := func(t *testing.T, offs ...int64) []ledger.Row {
		var rows []ledger.Row
		for _, o := range offs {
			rows = append(rows, rowOf(t, msgs[o], 0, o))
		}
		return rows
	}
	gap := func(first, last int64) ledger.RejectRow { return ledger.NewGapRow("tx", 0, first, last, "lost") }
	for _, tc := range []struct {
		name       string
		committed  int64
		logStart   int64
		rows       []int64
		rejects    []ledger.RejectRow
		recreated  string
		unseen     bool   // the tables hold offsets of the topic, none of this partition
		want       string // "" for a pass, else a fragment of the check's detail
		wantGaps   []OffsetRange
		wantDelete int64
	}{
		{name: "processed, then deleted by retention", committed: 10, logStart: 7, rows: []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
			want: "", wantDelete: 7},
		{name: "skipped silently past the log start", committed: 10, logStart: 7, rows: []int64{0, 1, 2, 3, 7, 8, 9},
			want:     "tx/0 offsets 4-6 (3) were lost before processing",
			wantGaps: []OffsetRange{{Partition: "tx/0", First: 4, Last: 6}}, wantDelete: 4},
		{name: "gap recorded", committed: 10, logStart: 7, rows: []int64{0, 1, 2, 3, 7, 8, 9}, rejects: []ledger.RejectRow{gap(4, 6)},
			want:     "",
			wantGaps: []OffsetRange{{Partition: "tx/0", First: 4, Last: 6, Recorded: true}}, wantDelete: 4},
		{name: "the pipeline stopped at the gap", committed: 4, logStart: 7, rows: []int64{0, 1, 2, 3},
			want:     "tx/0 offsets 4-6 (3) were lost before processing",
			wantGaps: []OffsetRange{{Partition: "tx/0", First: 4, Last: 6}}, wantDelete: 4},
		{name: "everything deleted before the first read", committed: 0, logStart: 7,
			want:     "tx/0 offsets 0-6 (7) were lost before processing",
			wantGaps: []OffsetRange{{Partition: "tx/0", First: 0, Last: 6}}},
		{name: "a partition the pipeline never read, deleted before it got there", unseen: true, logStart: 7,
			want:     "tx/0 offsets 0-6 (7) were lost before processing",
			wantGaps: []OffsetRange{{Partition: "tx/0", First: 0, Last: 6}}},
		{name: "a gap over records the topic holds", committed: 10, logStart: 7, rows: []int64{0, 1, 2, 3, 8, 9}, rejects: []ledger.RejectRow{gap(4, 7)},
			want: "yet recorded as lost before processing", wantDelete: 4},
		{name: "overlapping gaps", committed: 10, logStart: 7, rows: []int64{0, 1, 2, 3, 7, 8, 9}, rejects: []ledger.RejectRow{gap(4, 6), gap(5, 5)},
			want: "overlap", wantDelete: 4},
		{name: "topic re-created", committed: 10, logStart: 0, rows: []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
			recreated: "the topic tx was deleted and created again", want: "deleted and created again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			committed := map[TopicPartition]int64{tp: tc.committed}
			if tc.unseen {
				committed = map[TopicPartition]int64{{"tx", 1}: 0}
			}
			rec := NewReconciler(committed, committed)
			rec.SetLogStarts(map[TopicPartition]int64{tp: tc.logStart})
			if tc.recreated != "" {
				rec.SetTopicRecreated(tc.recreated)
			}
			for _, r := range rowsAt(t, tc.rows...) {
				rec.AddRow(r)
			}
			for _, r := range tc.rejects {
				rec.AddReject(r)
			}
			rules := ledger.DefaultRules()
			for off := tc.logStart; off < int64(len(msgs)); off++ {
				rec.AddRecord(tp, off, msgs[off], &rules)
			}
			res := rec.Result()
			check := res.Check()
			if tc.want == "" && !check.Passed {
				t.Fatalf("failed: %s", check.Detail)
			}
			if tc.want != "" && (check.Passed || !strings.Contains(check.Detail, tc.want)) {
				t.Fatalf("check %+v, want a failure mentioning %q", check, tc.want)
			}
			if tc.wantGaps != nil && fmt.Sprint(res.Gaps) != fmt.Sprint(tc.wantGaps) {
				t.Errorf("gaps %v, want %v", res.Gaps, tc.wantGaps)
			}
			if tc.recreated == "" && res.Partitions[0].Deleted != tc.wantDelete {
				t.Errorf("deleted after processing %d, want %d", res.Partitions[0].Deleted, tc.wantDelete)
			}
			if res.Unexpected != 0 {
				t.Errorf("%d unexpected: rows below the log start were taken for strays", res.Unexpected)
			}
			var out strings.Builder
			if err := res.WriteText(&out); err != nil {
				t.Fatal(err)
			}
			for _, g := range tc.wantGaps {
				if !strings.Contains(out.String(), g.String()) {
					t.Errorf("the text does not name %s:\n%s", g, out.String())
				}
			}
		})
	}
}
