package iceberg

import (
	"errors"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// NewestOfPipeline over Snapshots' answer: the protocol's rule (engine.NewestOfPipeline) on
// a history that ends at the branch's first snapshot, or where it was expired.
func TestNewestOfPipelineOverHistory(t *testing.T) {
	// Newest first: 40 foreign, 30 of q, 20 of p, 10 foreign (the branch's first).
	whole := []SnapshotInfo{
		{SnapshotID: 40, ParentID: 30}, {SnapshotID: 30, ParentID: 20, Pipeline: "q"},
		{SnapshotID: 20, ParentID: 10, Pipeline: "p", Batch: 7}, {SnapshotID: 10},
	}
	cut := whole[:2] // 20 and 10 expired: 30's parent is missing
	for _, tc := range []struct {
		name     string
		history  []SnapshotInfo
		pipeline string
		want     int64 // 0: not found
		err      error
	}{
		{"empty table", nil, "p", 0, nil},
		{"behind a foreign commit and another pipeline", whole, "p", 20, nil},
		{"the other pipeline", whole, "q", 30, nil},
		{"never committed", whole, "r", 0, nil},
		{"found before the cut", cut, "q", 30, nil},
		{"history cut before the pipeline's snapshot", cut, "p", 0, engine.ErrHistoryTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, found, err := NewestOfPipeline(tc.history, tc.pipeline)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if found != (tc.want != 0) || s.SnapshotID != tc.want {
				t.Fatalf("NewestOfPipeline = %d (found %v), want %d", s.SnapshotID, found, tc.want)
			}
			if tc.want == 20 && s.Batch != 7 {
				t.Fatalf("batch %d, want the snapshot's own 7", s.Batch)
			}
		})
	}
}
