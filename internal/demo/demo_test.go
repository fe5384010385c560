package demo

import (
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

func TestThisRun(t *testing.T) {
	var st engine.Stats
	st.Records.Store(5)
	st.Accepted.Store(4)
	st.Rejected.Store(1)
	want := "This run: 6 transactions produced, 5 records read, 4 rows committed, 1 rejected; 1 not read within --duration"
	if got := thisRun(&st, 6); got != want {
		t.Errorf("thisRun = %q, want %q", got, want)
	}
}
