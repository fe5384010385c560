package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

func failedNames(checks []Check) string {
	var names []string
	for _, c := range Failed(checks) {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

func TestValidate(t *testing.T) {
	good := fixture()
	dupHash := append(append([]ledger.Row{}, good...), good[2]) // a replayed row: same id, same hash
	dupHash[len(dupHash)-1].TransactionID = "TXN-OTHER"         // ...but under a new id
	dupID := append(append([]ledger.Row{}, good...),
		row("TXN00000003", "X", "Y", 500, "USD", "payment", "2025-01-16 10:00:00"))
	zero := append(append([]ledger.Row{}, good...),
		row("TXN-ZERO", "X", "Y", 0, "USD", "payment", "2025-01-16 10:00:00"))
	negative := append(append([]ledger.Row{}, good...),
		row("TXN-NEG", "X", "Y", -1, "USD", "payment", "2025-01-16 10:00:00"))
	replay := append(append([]ledger.Row{}, good...), good[0])

	for _, tc := range []struct {
		name   string
		rows   []ledger.Row
		failed string
		figure map[string]int64
		detail string
	}{
		{"good", good, "", map[string]int64{CheckRowsPresent: 7, CheckUniqueHashes: 7, CheckUniqueIDs: 7, CheckPositiveAmounts: 0}, ""},
		{"empty", nil, CheckRowsPresent, map[string]int64{CheckRowsPresent: 0}, "ledger is empty"},
		{"duplicate hash", dupHash, CheckUniqueHashes, map[string]int64{CheckUniqueHashes: 7}, "7 distinct hashes in 8 rows, repeated hashes: 1"},
		{"duplicate id", dupID, CheckUniqueIDs, map[string]int64{CheckUniqueIDs: 7}, "7 distinct ids in 8 rows (e.g. TXN00000003)"},
		{"zero amount", zero, CheckPositiveAmounts, map[string]int64{CheckPositiveAmounts: 1}, "rows with amount <= 0: 1"},
		{"negative amount", negative, CheckPositiveAmounts, map[string]int64{CheckPositiveAmounts: 1}, "rows with amount <= 0: 1"},
		{"replayed row", replay, CheckUniqueHashes + "," + CheckUniqueIDs, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checks := Validate(build(tc.rows))
			if len(checks) != 4 {
				t.Fatalf("%d checks", len(checks))
			}
			if got := failedNames(checks); got != tc.failed {
				t.Errorf("failed %q, want %q", got, tc.failed)
			}
			for _, c := range checks {
				if want, ok := tc.figure[c.Name]; ok && c.Figure != want {
					t.Errorf("%s figure %d, want %d", c.Name, c.Figure, want)
				}
			}
			err := Err(checks)
			if (err == nil) != (tc.failed == "") {
				t.Fatalf("Err = %v", err)
			}
			if err != nil {
				for _, name := range strings.Split(tc.failed, ",") {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
				if !strings.Contains(err.Error(), tc.detail) {
					t.Errorf("error %q lacks %q", err, tc.detail)
				}
			}
		})
	}
}

func TestChecksText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteChecksText(&buf, Validate(build(fixture()))); err != nil {
		t.Fatal(err)
	}
	const want = `PASS rows_present: Processed 7 transactions
PASS unique_hashes: Exactly-once guarantee verified: 7 unique transactions
PASS unique_ids: All transaction IDs unique: 7 distinct
PASS positive_amounts: All amounts are positive: rows with amount <= 0: 0

All validations passed! Ledger integrity confirmed.
`
	if buf.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := WriteChecksText(&buf, Validate(build(nil))); err != nil {
		t.Fatal(err)
	}
	const wantEmpty = `FAIL rows_present: Should have processed transactions: the ledger is empty
PASS unique_hashes: Exactly-once guarantee verified: 0 unique transactions
PASS unique_ids: All transaction IDs unique: 0 distinct
PASS positive_amounts: All amounts are positive: rows with amount <= 0: 0

Validation FAILED: rows_present
`
	if buf.String() != wantEmpty {
		t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), wantEmpty)
	}
}

func TestChecksJSON(t *testing.T) {
	for _, tc := range []struct {
		rows   []ledger.Row
		passed bool
	}{{fixture(), true}, {nil, false}} {
		var buf bytes.Buffer
		if err := WriteChecksJSON(&buf, Validate(build(tc.rows))); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Passed bool    `json:"passed"`
			Checks []Check `json:"checks"`
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Passed != tc.passed || len(got.Checks) != 4 || got.Checks[0].Name != CheckRowsPresent {
			t.Errorf("got %+v", got)
		}
	}
}
