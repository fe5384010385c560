package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/faults"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// deleteUnread moves p's log start to off; the records from from on were never read, so
// they are lost before processing, and a recorded gap must account for each.
func (w *world) deleteUnread(p engine.Partition, from, off int64) {
	for o := from; o < off; o++ {
		w.want[fmt.Sprintf("%d/%d", p.Partition, o)] = ledger.ReasonLostBeforeProcessing
	}
	w.log.deleteBefore(p, off)
}

// stepErr runs one batch and returns its error.
func (k *worker) stepErr() error {
	_, err := k.eng.Step(context.Background(), k.feed)
	return err
}

func (w *world) gapRows() []ledger.RejectRow {
	var gaps []ledger.RejectRow
	for _, r := range w.rejects.rows(0) {
		if r.IsGap() {
			gaps = append(gaps, r)
		}
	}
	return gaps
}

// Retention overtook the pipeline: by default it stops, naming the partition, the range and
// the count, and commits nothing past the gap.
func TestScenarioGapStopsThePipeline(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0, p1)
	w.produce(p0, 5)
	w.produce(p1, 2)
	k.step()
	w.produce(p0, 5)
	w.deleteUnread(p0, 5, 8) // offsets 5, 6, 7 never read

	k2 := w.worker(engine.Config{})
	k2.src.assign(t, p0, p1)
	err := k2.stepErr()
	var gap *engine.GapError
	if !errors.As(err, &gap) {
		t.Fatalf("step: %v, want a GapError", err)
	}
	if gap.Partition != p0 || gap.First != 5 || gap.Last != 7 || gap.LogStart != 8 {
		t.Fatalf("gap %+v", gap)
	}
	for _, want := range []string{"tx/0: offsets 5-7 (3 records) were deleted", "--on-gap record"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	w.wantOffsets(engine.Offsets{p0: 5, p1: 2})
	if n := len(w.rejects.rows(0)); n != 0 {
		t.Fatalf("%d rejects rows written by a refusal", n)
	}
	if k2.eng.Stats().GapsRefused.Load() != 1 {
		t.Fatal("the refusal is not counted")
	}
}

// Retention overtakes a batch under way: what it read before the gap is committed, then
// the pipeline stops.
func TestScenarioGapMidBatchCommitsWhatWasRead(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.perFetch = 2
	k.src.assign(t, p0)
	w.produce(p0, 6)
	k.src.onFetch = func() {
		k.src.onFetch = func() { w.deleteUnread(p0, 2, 5) } // after the first fetch (0, 1)
	}
	err := k.stepErr()
	var gap *engine.GapError
	if !errors.As(err, &gap) || gap.First != 2 || gap.Last != 4 {
		t.Fatalf("step: %v, want the gap 2-4", err)
	}
	w.wantOffsets(engine.Offsets{p0: 2})
}

// With --on-gap record the gap is one row of the rejects table, committed with the offsets
// that move past it, and reading goes on from the log start.
func TestScenarioGapRecorded(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0, p1)
	w.produce(p0, 5)
	w.produce(p1, 2)
	k.step()
	w.produce(p0, 5)
	w.produce(p1, 2)
	w.deleteUnread(p0, 5, 8)

	k2 := w.worker(engine.Config{OnGap: engine.GapRecord})
	k2.src.assign(t, p0, p1)
	k2.step()
	w.wantOffsets(engine.Offsets{p0: 10, p1: 4})
	gaps := w.gapRows()
	if len(gaps) != 1 || gaps[0].SourceOffset != 5 || gaps[0].LastOffset != 7 || !strings.Contains(gaps[0].Message, "offsets 5-7") {
		t.Fatalf("gap rows %+v", gaps)
	}
	if st := k2.eng.Stats(); st.Gaps.Load() != 1 || st.LostOffsets.Load() != 3 || st.Rejected.Load() != 0 {
		t.Fatalf("stats: gaps %d, lost %d, rejected %d", st.Gaps.Load(), st.LostOffsets.Load(), st.Rejected.Load())
	}
	w.reconcile()
	// Retention moves on, past what was processed: nothing more to record.
	w.log.deleteBefore(p0, 10)
	w.produce(p0, 1)
	k2.step()
	if n := len(w.gapRows()); n != 1 {
		t.Fatalf("%d gap rows after retention deleted processed records", n)
	}
	w.reconcile()
}

// A worker killed at every fault point of the batch that records a gap: the restarted one
// records it exactly once.
func TestScenarioGapCrashAtEveryFaultPoint(t *testing.T) {
	for _, point := range []string{faults.AfterFetch, faults.AfterStage, faults.AfterCommit, faults.AfterAdvised} {
		t.Run(point, func(t *testing.T) {
			w := newWorld(t)
			k := w.worker(engine.Config{})
			k.src.assign(t, p0, p1)
			w.produce(p0, 3)
			w.produce(p1, 3)
			k.step()
			w.produce(p0, 4)
			w.produceBad(p0)
			w.produce(p1, 2)
			w.deleteUnread(p0, 3, 5) // 3 and 4 lost; 5, 6 and the bad message (7) remain
			victim := w.workerDyingAt(engine.Config{OnGap: engine.GapRecord}, point)
			victim.src.assign(t, p0, p1)
			if got := victim.step(); got != point {
				t.Fatalf("crashed at %q, want %q", got, point)
			}
			w.log.deleteBefore(p0, 6)
			if point == faults.AfterFetch || point == faults.AfterStage {
				w.want["0/5"] = ledger.ReasonLostBeforeProcessing // read, never committed
			}
			// Retention moves on while the worker is down: the restart finds a larger gap
			// where the crash left the rejects table behind the ledger.
			restarted := w.worker(engine.Config{OnGap: engine.GapRecord})
			restarted.src.assign(t, p0, p1)
			restarted.step()
			w.wantOffsets(engine.Offsets{p0: 8, p1: 5})
			w.reconcile()
			if n := len(w.gapRows()); n != 1 {
				t.Fatalf("%d gap rows, want 1", n)
			}
		})
	}
}

// The topic is deleted and created again: the pipeline refuses, with what to do, and
// writes nothing; so it does for a topic with fewer partitions and for a log that ends
// below the tables' offsets when the cluster has no topic ids.
func TestScenarioTopicRecreatedIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		id    string
		count int32
		more  int
		want  string
	}{
		{"new id, more records than the tables' offsets", "id-2", 2, 20, "its id is id-2, and was id-1"},
		{"new id, empty", "id-2", 2, 0, "its id is id-2, and was id-1"},
		{"fewer partitions", "id-1", 1, 0, "it has 1 partitions, and the tables hold offsets of partition 1"},
		{"no ids, end went backwards", "", 2, 2, "ends at offset 2, below offset 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.id == "" {
				w.log.id = ""
			}
			k := w.worker(engine.Config{})
			k.src.assign(t, p0, p1)
			w.produce(p0, 5)
			w.produce(p1, 3)
			k.step()
			st, _ := w.ledger.Load(context.Background())
			if tc.id != "" && st.TopicIDs["tx"] != "id-1" {
				t.Fatalf("topic ids recorded %v", st.TopicIDs)
			}
			snaps := len(w.ledger.snaps)
			w.log.recreate(tc.id, tc.count)
			for range tc.more {
				w.log.append(p0, txn(1000, 1), false)
			}
			k2 := w.worker(engine.Config{AvailableNow: true})
			k2.src.assign(t, p0)
			err := k2.stepErr()
			var changed *engine.TopicChangedError
			if !errors.As(err, &changed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("step: %v, want a refusal with %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "new pipeline into a new table") {
				t.Errorf("the refusal does not say what to do: %v", err)
			}
			if len(w.ledger.snaps) != snaps || len(w.rejects.snaps) != 0 {
				t.Fatalf("something was committed after the topic changed")
			}
			if !k2.eng.Stats().TopicChanged.Load() {
				t.Fatal("TopicChanged not set")
			}
		})
	}
}

// The topic is re-created while a batch reads it: the batch is not committed.
func TestScenarioTopicRecreatedMidBatch(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	w.produce(p0, 3)
	k.step()
	w.produce(p0, 2)
	k.src.onFetch = func() {
		w.log.recreate("id-2", 2)
		for range 8 {
			w.log.append(p0, txn(2000, 1), false)
		}
	}
	err := k.stepErr()
	var changed *engine.TopicChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("step: %v, want a TopicChangedError", err)
	}
	w.wantOffsets(engine.Offsets{p0: 3})
}
