package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Names of the checks Validate makes. They are a public interface (scripts match on them):
// add, never rename.
const (
	CheckRowsPresent     = "rows_present"     // COUNT(*) > 0
	CheckUniqueHashes    = "unique_hashes"    // COUNT(DISTINCT transaction_hash) == COUNT(*)
	CheckUniqueIDs       = "unique_ids"       // COUNT(DISTINCT transaction_id) == COUNT(*)
	CheckPositiveAmounts = "positive_amounts" // COUNT(*) WHERE amount <= 0 == 0
)

// Check is the outcome of one validation.
type Check struct {
	// Name identifies the check (one of the Check* constants, or a caller's own).
	Name string `json:"name"`
	// Passed says whether the ledger satisfies it.
	Passed bool `json:"passed"`
	// Figure is the number the check measured: the row count, the distinct count, or the
	// count of offending rows, as the check's Detail says.
	Figure int64 `json:"figure"`
	// Detail is a sentence for people, with the figure in it.
	Detail string `json:"detail"`
}

// Validate makes the notebook's four validations over r. Unlike the notebook, which stops at
// the first failed assert, it makes them all, so that one run shows everything wrong.
func Validate(r *Report) []Check {
	checks := make([]Check, 0, 4)

	c := Check{Name: CheckRowsPresent, Passed: r.Rows > 0, Figure: r.Rows}
	if c.Passed {
		c.Detail = fmt.Sprintf("Processed %d transactions", r.Rows)
	} else {
		c.Detail = "Should have processed transactions: the ledger is empty"
	}
	checks = append(checks, c)

	c = Check{Name: CheckUniqueHashes, Passed: r.DistinctHashes == r.Rows, Figure: r.DistinctHashes}
	if c.Passed {
		c.Detail = fmt.Sprintf("Exactly-once guarantee verified: %d unique transactions", r.DistinctHashes)
	} else {
		c.Detail = fmt.Sprintf("Should have no duplicate transaction hashes: %d distinct hashes in %d rows, repeated hashes: %d",
			r.DistinctHashes, r.Rows, len(r.Duplicates))
	}
	checks = append(checks, c)

	c = Check{Name: CheckUniqueIDs, Passed: r.DistinctIDs == r.Rows, Figure: r.DistinctIDs}
	if c.Passed {
		c.Detail = fmt.Sprintf("All transaction IDs unique: %d distinct", r.DistinctIDs)
	} else {
		c.Detail = fmt.Sprintf("Should have unique transaction IDs: %d distinct ids in %d rows", r.DistinctIDs, r.Rows)
		if len(r.DuplicateIDExamples) > 0 {
			c.Detail += " (e.g. " + strings.Join(r.DuplicateIDExamples, ", ") + ")"
		}
	}
	checks = append(checks, c)

	if r.NoAmountCheck {
		return checks
	}
	c = Check{Name: CheckPositiveAmounts, Passed: r.NonPositiveAmounts == 0, Figure: r.NonPositiveAmounts}
	if c.Passed {
		c.Detail = "All amounts are positive: rows with amount <= 0: 0"
	} else {
		c.Detail = fmt.Sprintf("No negative amounts allowed: rows with amount <= 0: %d", r.NonPositiveAmounts)
	}
	checks = append(checks, c)

	return checks
}

// Failed returns the checks that did not pass, in order.
func Failed(checks []Check) []Check {
	var failed []Check
	for _, c := range checks {
		if !c.Passed {
			failed = append(failed, c)
		}
	}
	return failed
}

// Err returns nil if every check passed, else an error naming each failed check, e.g.
// "validation failed: unique_ids (Should have unique transaction IDs: …)". The CLI prints
// it and exits 1.
func Err(checks []Check) error {
	failed := Failed(checks)
	if len(failed) == 0 {
		return nil
	}
	parts := make([]string, len(failed))
	for i, c := range failed {
		parts[i] = c.Name + " (" + c.Detail + ")"
	}
	return errors.New("validation failed: " + strings.Join(parts, "; "))
}

// WriteChecksText prints one line per check, "PASS name: detail" or "FAIL name: detail",
// then a verdict line: the notebook's "All validations passed! Ledger integrity confirmed."
// or "Validation FAILED: " and the names of the failed checks.
func WriteChecksText(w io.Writer, checks []Check) error {
	var sb strings.Builder
	for _, c := range checks {
		if c.Passed {
			sb.WriteString("PASS ")
		} else {
			sb.WriteString("FAIL ")
		}
		sb.WriteString(c.Name + ": " + c.Detail + "\n")
	}
	if failed := Failed(checks); len(failed) == 0 {
		sb.WriteString("\nAll validations passed! Ledger integrity confirmed.\n")
	} else {
		names := make([]string, len(failed))
		for i, c := range failed {
			names[i] = c.Name
		}
		sb.WriteString("\nValidation FAILED: " + strings.Join(names, ", ") + "\n")
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteChecksJSON prints {"passed": bool, "checks": [...]} as one indented JSON document;
// "passed" is true when every check passed.
func WriteChecksJSON(w io.Writer, checks []Check) error {
	if checks == nil {
		checks = []Check{}
	}
	return writeJSON(w, struct {
		Passed bool    `json:"passed"`
		Checks []Check `json:"checks"`
	}{len(Failed(checks)) == 0, checks})
}
