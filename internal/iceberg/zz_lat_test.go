package iceberg

import (
	"context"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/ledgerstream/ledgerstream/internal/engine"
)

func TestLatencyBreakdown(t *testing.T) {
	ctx := context.Background()
	c := openSQLite(t)
	s := newSink(t, c)
	base := mustLoad(t, s)
	for i := 0; i < 10; i++ {
		st, _ := s.Stage(ctx, testRows("tx", 0, i*10000, 10000), time.Now())
		tbl := s.Table()
		t0 := time.Now()
		txn := tbl.NewTransaction()
		txn.AssertRefSnapshotID("main")
		if err := txn.AddDataFiles(ctx, st.(*Staged).files, nil, table.WithoutDuplicateCheck()); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		nt, err := txn.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		s.mu.Lock(); s.tbl = nt; s.mu.Unlock()
		t.Logf("add %v commit %v", t1.Sub(t0), t2.Sub(t1))
		_ = base
		_ = engine.ErrConflict
	}
}
