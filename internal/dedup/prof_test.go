package dedup

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

func TestProfSync(t *testing.T) {
	g := &genLedger{n: 300000, batch: 100000}
	x, err := Open(filepath.Join(t.TempDir(), "p.idx"), g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for k := int64(1); k <= 4; k++ {
		if err := x.Sync(context.Background(), engine.TableState{SnapshotID: k}); err != nil {
			t.Fatal(err)
		}
	}
}
