package iceberg

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

func TestClassifyCommitError(t *testing.T) {
	for _, tc := range []struct {
		err      error
		conflict bool
	}{
		{fmt.Errorf("%w: table x metadata-location moved underneath us", table.ErrCommitFailed), true},
		{fmt.Errorf("wrapped: %w", rest.ErrCommitFailed), true}, // HTTP 409
		{errors.New(`requirement failed: branch "main" has changed: expected id 1, found 2`), true},
		{errors.New(`requirement failed: branch "main" was created concurrently`), true},
		{errors.New(`requirement failed: branch or tag "main" is missing, expected 5`), true},
		{errors.New("Requirement failed: current schema id has changed: expected 0, found 1"), true}, // a schema update
		{errors.New("Requirement failed: last assigned field id has changed: expected 16, found 17"), true},
		{errors.New("Requirement failed: UUID mismatch: a != b"), false}, // another table, not a moved one
		{rest.ErrCommitStateUnknown, false},                              // HTTP 5xx
		{context.DeadlineExceeded, false},
		{errors.New("database is locked"), false},
	} {
		err := classifyCommitError("t", tc.err)
		if errors.Is(err, engine.ErrConflict) != tc.conflict {
			t.Errorf("%v: conflict = %v, want %v", tc.err, !tc.conflict, tc.conflict)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: cause lost in %v", tc.err, err)
		}
	}
}

// TestConcurrentWriters races several writers, each with its own catalog handle on the same
// SQLite file (as separate processes would), committing on whatever they loaded. Every
// commit must either land or fail with ErrConflict, and the table must hold exactly the rows
// of the commits that landed.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{CatalogURI: "sqlite:" + filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "wh")}
	const writers, rounds, rowsPer = 4, 8, 20
	var (
		mu       sync.Mutex
		landed   int
		conflict int
		wg       sync.WaitGroup
	)
	first, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.NewSink(ctx, testIdent(), testPipeline); err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			s, err := c.NewSink(ctx, testIdent(), testPipeline)
			if err != nil {
				t.Error(err)
				return
			}
			for r := 0; r < rounds; r++ {
				base, err := s.Load(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				st, err := s.Stage(ctx, testRows("tx", int32(w), r*rowsPer, rowsPer), time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				_, err = s.Commit(ctx, base, st, engine.Commit{Pipeline: testPipeline, Batch: int64(r),
					Offsets: engine.Offsets{{Topic: "tx", Partition: int32(w)}: int64(r)}})
				mu.Lock()
				switch {
				case err == nil:
					landed++
				case errors.Is(err, engine.ErrConflict):
					conflict++
					if derr := s.Discard(ctx, st); derr != nil {
						t.Error(derr)
					}
				default:
					t.Errorf("writer %d round %d: %v", w, r, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	read, _ := scanAll(t, first)
	snaps, err := first.Snapshots(ctx, testIdent())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d commits landed, %d conflicts", landed, conflict)
	if len(read) != landed*rowsPer || len(snaps) != landed {
		t.Fatalf("%d rows and %d snapshots for %d landed commits", len(read), len(snaps), landed)
	}
}
