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
