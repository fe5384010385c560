package audit

import (
	"fmt"
	"io"

	"github.com/ledgerstream/ledgerstream/internal/report"
)

// WriteText prints r as verify does: the window, the files that could not be read, the
// reconciliation and the checks.
func (r *VerifyResult) WriteText(w io.Writer) error {
	if r.Window != nil {
		fmt.Fprintf(w, "Window: %s (read %d of %d data files; the others were pruned unopened)\n\n", r.Window.Filter, r.Window.FilesRead, r.Window.FilesTotal)
	}
	if err := report.WriteDamageText(w, r.Damaged); err != nil {
		return err
	}
	if r.Reconcile != nil {
		if err := r.Reconcile.WriteText(w); err != nil {
			return err
		}
	}
	return report.WriteChecksText(w, r.Checks)
}
