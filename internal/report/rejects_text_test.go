package report

import (
	"strings"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// A reason code in the report is meant to be copied into `rejects list --reason`: show()'s
// 20-character cut must not apply to it.
func TestReportKeepsReasonsWhole(t *testing.T) {
	var tally RejectTally
	tally.Add(ledger.RejectRow{Reason: ledger.ReasonConflictingDuplicate})
	tally.Add(ledger.RejectRow{Reason: ledger.ReasonNonPositiveAmount})
	rep := NewBuilder(0).Report()
	rep.Rejects = tally.Summary()
	var sb strings.Builder
	if err := rep.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"|conflicting_duplicate|", "|nonpositive_amount   |"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("report text lacks %q:\n%s", want, sb.String())
		}
	}
}
