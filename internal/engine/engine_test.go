package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/faults"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// The tricky cases of the protocol (crashes at every fault point, zombies, unknown commit
// outcomes, foreign writers, rebalances, rejects completeness) are told as transcripts in
// testdata/, run by scenario_test.go. The scenarios below are the loop's other behaviours
// (scheduling, available-now, stop, staging, decoding), each checked by reconciliation:
// every data record is in the tables exactly once.

var (
	p0 = engine.Partition{Topic: "tx", Partition: 0}
	p1 = engine.Partition{Topic: "tx", Partition: 1}
)

// world is one topic and one ledger with its rejects table, shared by any number of workers.
type world struct {
	t       *testing.T
	log     *fakeLog
	clock   *fakeClock
	ledger  *fakeTable[ledger.Row]
	rejects *fakeTable[ledger.RejectRow]
	seq     int
	// stageAhead, when set, is every worker's StageAheadRows (unless its config says).
	stageAhead int
	// noIndex makes workers without a transaction id index.
	noIndex bool
	// scoped gives each new worker a partition-scoped index (scoped_test.go); lastScoped
	// is the last one given.
	scoped     bool
	lastScoped *scopedIndex
	// want is the fate of every data record produced, by "p/offset": "" for a ledger row,
	// else the reason code of its reject.
	want map[string]ledger.Reason
}

// worldStageAhead is the stageAhead of new worlds: TestScenariosWithStagingAhead runs the
// scenarios again with it set.
var worldStageAhead int

func newWorld(t *testing.T) *world {
	return &world{t: t, stageAhead: worldStageAhead, log: newLog(), clock: &fakeClock{now: time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)},
		ledger: &fakeTable[ledger.Row]{name: "ledger"}, rejects: &fakeTable[ledger.RejectRow]{name: "ledger_rejects"},
		want: map[string]ledger.Reason{}}
}

func txn(id, amount int) []byte {
	return fmt.Appendf(nil, `{"transaction_id":"TXN%08d","account_from":"ACC1000","account_to":"ACC2000",`+
		`"amount":"%d.25","currency":"EUR","transaction_type":"payment","timestamp":"2025-01-16T10:00:00.123456"}`, id, amount)
}

func (w *world) put(p engine.Partition, value []byte, fate ledger.Reason) {
	off := w.log.append(p, value, false)
	w.want[fmt.Sprintf("%d/%d", p.Partition, off)] = fate
}

// produce appends n new valid transactions to partition p.
func (w *world) produce(p engine.Partition, n int) {
	for range n {
		w.seq++
		w.put(p, txn(w.seq, w.seq), "")
	}
}

// produceBad appends a message that the transform refuses.
func (w *world) produceBad(p engine.Partition) {
	w.put(p, []byte(`{"transaction_id":`), ledger.ReasonMalformedJSON)
}

// produceAgain re-sends transaction id to p: the same content (a producer retry), or,
// with another amount, different content under the same id.
func (w *world) produceAgain(p engine.Partition, id int, sameContent bool) {
	if sameContent {
		w.put(p, txn(id, id), ledger.ReasonDuplicate)
	} else {
		w.put(p, txn(id, id+1), ledger.ReasonConflictingDuplicate)
	}
}

// produceMarker appends a transaction marker (a control record).
func (w *world) produceMarker(p engine.Partition) { w.log.append(p, nil, true) }

// crash is what a fault point panics with to simulate kill -9.
type crash string

type worker struct {
	w   *world
	eng *engine.Engine
	src *fakeSource
	// feed is src as the engine reads it: decorated by the fault injector of a worker that
	// dies at a fault point.
	feed engine.Source
}

func (w *world) worker(cfg engine.Config) *worker { return w.workerDyingAt(cfg, "") }

// workerDyingAt is a worker killed (a panic of crash) the first time it reaches the fault
// point (internal/faults); "" never.
func (w *world) workerDyingAt(cfg engine.Config, point string) *worker {
	cfg.Pipeline = "p"
	cfg.Clock = w.clock
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Trigger == 0 {
		cfg.Trigger = time.Second
	}
	if cfg.StageAheadRows == 0 {
		cfg.StageAheadRows = w.stageAhead
	}
	if cfg.Retry == nil {
		// The production policy, without randomness: transcripts print every pause.
		cfg.Retry = &retry.Policy{OutageTimeout: retry.DefaultOutageTimeout, Clock: w.clock, Logger: cfg.Logger,
			Jitter: func() float64 { return 0.5 }}
	}
	sinks := engine.Sinks{Ledger: w.ledger, Rejects: w.rejects, Index: &fakeIndex{ledger: w.ledger}}
	if w.noIndex {
		sinks.Index = nil
	}
	if w.scoped {
		w.lastScoped = &scopedIndex{ledger: w.ledger, parts: map[engine.Partition]int64{}}
		sinks.Index = w.lastScoped
	}
	if point == "" {
		e := engine.New(cfg, sinks)
		src := newSource(w.log, w.clock, e.Resume)
		return &worker{w: w, eng: e, src: src, feed: src}
	}
	in, err := faults.New(point, 1, func(at string) { panic(crash(at)) })
	if err != nil {
		w.t.Fatal(err)
	}
	e := engine.New(cfg, in.Sinks(sinks))
	src := newSource(w.log, w.clock, in.Resume(e.Resume))
	return &worker{w: w, eng: e, src: src, feed: in.Source(src)}
}

// runToEnd steps until the run is over, as internal/pipeline's loop does.
func runToEnd(ctx context.Context, e *engine.Engine, src engine.Source) error {
	for {
		done, err := e.Step(ctx, src)
		if err != nil || done {
			return err
		}
	}
}

// step runs one batch and reports whether the worker crashed.
func (k *worker) step() (crashed string) {
	k.w.t.Helper()
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(crash)
			if !ok {
				panic(r)
			}
			crashed = string(c)
		}
	}()
	if _, err := k.eng.Step(context.Background(), k.feed); err != nil {
		k.w.t.Fatalf("step: %v", err)
	}
	return ""
}

// reconcile checks the invariant: every data record is in exactly one of the two tables,
// once, the ledger for a new valid transaction and the rejects table, with the right
// reason, for anything else; no transaction id is twice in the ledger.
func (w *world) reconcile() {
	w.t.Helper()
	if err := w.check(); err != nil {
		w.t.Fatal(err)
	}
}

// check is reconcile's verdict: nil when the invariant holds.
func (w *world) check() error {
	got := map[string]ledger.Reason{}
	ids := map[string]bool{}
	for _, r := range w.ledger.rows(0) {
		pos := fmt.Sprintf("%d/%d", r.SourcePartition, r.SourceOffset)
		if _, dup := got[pos]; dup {
			return fmt.Errorf("source position %s is in the tables twice", pos)
		}
		if ids[r.TransactionID] {
			return fmt.Errorf("transaction %s is in the ledger twice", r.TransactionID)
		}
		got[pos], ids[r.TransactionID] = "", true
	}
	var gaps []ledger.RejectRow
	for _, r := range w.rejects.rows(0) {
		if r.IsGap() {
			gaps = append(gaps, r)
			continue
		}
		pos := fmt.Sprintf("%d/%d", r.SourcePartition, r.SourceOffset)
		if _, dup := got[pos]; dup {
			return fmt.Errorf("source position %s is in the tables twice", pos)
		}
		got[pos] = r.Reason
	}
	// A gap accounts for every offset of its range that the ledger does not hold: after a
	// crash between the two commits, retention may delete records the ledger had taken
	// before the rejects table knew them, and the rejects table records its loss of them.
	gapped := map[string]bool{}
	for _, r := range gaps {
		for off := r.SourceOffset; off <= r.LastOffset; off++ {
			pos := fmt.Sprintf("%d/%d", r.SourcePartition, off)
			if gapped[pos] {
				w.t.Fatalf("source position %s is in two gaps", pos)
			}
			gapped[pos] = true
			if g, ok := got[pos]; ok && g != "" {
				w.t.Fatalf("source position %s is in a gap and rejected as %s", pos, g)
			} else if !ok {
				got[pos] = r.Reason
			}
		}
	}
	var missing, wrong []string
	for pos, fate := range w.want {
		if g, ok := got[pos]; !ok {
			missing = append(missing, pos)
		} else if g != fate {
			wrong = append(wrong, fmt.Sprintf("%s: %q, want %q", pos, g, fate))
		}
	}
	slices.Sort(missing)
	slices.Sort(wrong)
	if len(missing) > 0 || len(wrong) > 0 || len(got) != len(w.want) {
		return fmt.Errorf("tables hold %d records, topic %d; missing %v; wrong %v", len(got), len(w.want), missing, wrong)
	}
	return nil
}

func (w *world) wantOffsets(want engine.Offsets) {
	w.t.Helper()
	st, _ := w.ledger.Load(context.Background())
	if engine.MarshalOffsets(st.Offsets) != engine.MarshalOffsets(want) {
		w.t.Fatalf("table offsets %s, want %s", engine.MarshalOffsets(st.Offsets), engine.MarshalOffsets(want))
	}
}

func TestScenarioBatchesCarryTheWholeMapForward(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0, p1)
	w.produce(p0, 3)
	w.produce(p1, 2)
	k.step()
	w.wantOffsets(engine.Offsets{p0: 3, p1: 2})
	w.produce(p0, 2) // only p0 moves; p1 must still be in the map
	k.step()
	w.wantOffsets(engine.Offsets{p0: 5, p1: 2})
	if got := k.src.advisory[p0]; got != 5 {
		t.Fatalf("advisory offset %d, want 5", got)
	}
	w.reconcile()
}

func TestScenarioBadInputAndMarkersMoveTheOffsets(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	w.produce(p0, 1)
	w.produceBad(p0)
	w.produceMarker(p0)
	w.produce(p0, 1)
	k.step()
	w.wantOffsets(engine.Offsets{p0: 4})
	if got := k.eng.Stats().Rejected.Load(); got != 1 {
		t.Fatalf("rejected %d, want 1", got)
	}
	if n := len(w.rejects.snaps); n != 1 {
		t.Fatalf("%d rejects snapshots, want 1", n)
	}
	w.reconcile()
}

func TestScenarioNothingReadNothingCommitted(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	k.step()
	if n := len(w.ledger.snaps); n != 0 {
		t.Fatalf("%d snapshots after an empty batch, want 0", n)
	}
}

// Available-now stops once the targets taken at the start are reached, in several
// batches when the backlog is larger than one.
func TestScenarioAvailableNowStopsAtTheEnd(t *testing.T) {
	w := newWorld(t)
	w.produce(p0, 25)
	w.produceMarker(p0)
	w.produce(p1, 7)
	k := w.worker(engine.Config{AvailableNow: true, MaxBatchRecords: 10})
	k.src.perFetch = 4
	k.src.assign(t, p0, p1)
	if err := runToEnd(context.Background(), k.eng, k.feed); err != nil {
		t.Fatal(err)
	}
	w.wantOffsets(engine.Offsets{p0: 26, p1: 7})
	if got := k.eng.Stats().Batches.Load(); got < 3 {
		t.Fatalf("%d batches, want at least 3 with 10 records each", got)
	}
	for _, s := range w.ledger.snaps {
		if len(s.rows) > 10 {
			t.Fatalf("a batch of %d rows; MaxBatchRecords is 10", len(s.rows))
		}
	}
	w.reconcile()
}

// A stop signal in the middle of a batch still commits what was read.
func TestScenarioStopCommitsWhatWasRead(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{Trigger: time.Hour})
	k.src.assign(t, p0)
	w.produce(p0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	k.src.perFetch = 3
	cancel()
	if err := runToEnd(ctx, k.eng, k.feed); err != nil {
		t.Fatal(err)
	}
	w.reconcile()
}

// Duplicates: a producer retry (same content) and a conflicting re-use of an id, within a
// batch and across batches, go to the rejects table with their reasons.
func TestScenarioDuplicatesAreRejected(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0, p1)
	w.produce(p0, 3)             // ids 1..3
	w.produceAgain(p0, 2, true)  // retry in the same batch
	w.produceAgain(p1, 1, false) // conflicting, another partition
	k.step()
	w.produceAgain(p1, 3, true) // retry in a later batch
	w.produce(p1, 1)
	k.step()
	w.reconcile()
	by := k.eng.Stats().RejectedBy()
	if by[ledger.ReasonDuplicate] != 2 || by[ledger.ReasonConflictingDuplicate] != 1 {
		t.Fatalf("rejected by reason %v", by)
	}
}

// A large fetch is decoded on every core; classification must still see the records in
// order (the duplicate of a record fetched together with it is refused).
func TestScenarioLargeFetchDecodedInParallel(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{MaxBatchRecords: 50_000})
	k.src.perFetch = 20_000
	k.src.assign(t, p0, p1)
	w.produce(p0, 6000)
	w.produceBad(p0)
	w.produceAgain(p0, 17, true)
	w.produce(p1, 6000)
	w.produceAgain(p1, 5000, false)
	k.step()
	w.reconcile()
}

// A batch larger than a part writes its first rows while it reads the rest: one commit
// still holds every row once, in order.
func TestScenarioStagedAheadWhileReading(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{StageAheadRows: 2})
	k.src.perFetch = 2
	k.src.assign(t, p0)
	w.produce(p0, 7)
	w.produceAgain(p0, 3, true)
	k.step()
	if w.ledger.stagedCount() < 2 {
		t.Fatalf("staged %d times, want the batch in parts", w.ledger.stagedCount())
	}
	if n := len(w.ledger.snaps); n != 1 {
		t.Fatalf("%d ledger snapshots, want one commit", n)
	}
	w.reconcile()
}

// Every scenario again, with each batch writing its rows as soon as two are gathered: parts
// staged ahead must be discarded by a dropped or fenced batch, written again when the rows
// are classified again, and never committed twice. (The transcripts run staged ahead too.)
func TestScenariosWithStagingAhead(t *testing.T) {
	worldStageAhead = 1
	defer func() { worldStageAhead = 0 }()
	for name, f := range map[string]func(*testing.T){
		"BatchesCarryTheWholeMapForward":   TestScenarioBatchesCarryTheWholeMapForward,
		"BadInputAndMarkersMoveTheOffsets": TestScenarioBadInputAndMarkersMoveTheOffsets,
		"AvailableNowStopsAtTheEnd":        TestScenarioAvailableNowStopsAtTheEnd,
		"StopCommitsWhatWasRead":           TestScenarioStopCommitsWhatWasRead,
		"DuplicatesAreRejected":            TestScenarioDuplicatesAreRejected,
	} {
		t.Run(name, f)
	}
}

// A batch that fills up before its trigger closes early; the next batch then gathers for
// a whole trigger, not for the short window of a late batch (a catch-up used to alternate
// full batches with small ones).
func TestScenarioFullBatchRestartsTheSchedule(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{Trigger: time.Second, MaxBatchRecords: 4})
	k.src.perFetch = 1
	k.src.assign(t, p0)
	w.produce(p0, 5)
	k.step() // full after four fetches, at once
	k.src.onFetch = func() {
		w.clock.Advance(100 * time.Millisecond) // well within the trigger, past the late window
		w.produce(p0, 1)
	}
	k.step() // the fifth record and the sixth, which arrives 100ms in
	if n := len(w.ledger.snaps); n != 2 {
		t.Fatalf("%d ledger commits, want 2 (the second batch waits for its trigger)", n)
	}
	w.reconcile()
}

// Maintenance between batches (a commit without this pipeline's keys) makes the next commit
// conflict once on its stale base; Refresh, called after it, avoids the conflict, and the
// offsets carry on unchanged.
func TestScenarioRefreshAfterMaintenance(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		w := newWorld(t)
		k := w.worker(engine.Config{})
		k.src.assign(t, p0)
		w.produce(p0, 3)
		k.step()
		w.ledger.foreignCommit() // what a maintenance commit looks like to the engine
		if refresh {
			if err := k.eng.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		w.produce(p0, 2)
		k.step()
		want := int64(1)
		if refresh {
			want = 0
		}
		if got := k.eng.Stats().Conflicts.Load(); got != want {
			t.Fatalf("refresh %v: %d conflicts, want %d", refresh, got, want)
		}
		w.wantOffsets(engine.Offsets{p0: 5})
		w.reconcile()
	}
}

// A partition assigned while a batch's files are being written makes the worker reload the
// tables (Resume). The batch's verdict was taken on the states before; a commit conditional
// on the reloaded ones must wait for a new verdict. Here another worker committed the same
// partition meanwhile: the ledger commit is fenced instead of doubled (with or without an
// index), and the rejects commit finds nothing missing instead of writing a reject twice.
func TestScenarioReloadWhileStagingPlansAgain(t *testing.T) {
	for _, noIndex := range []bool{true, false} {
		t.Run(fmt.Sprintf("ledger, no index %v", noIndex), func(t *testing.T) {
			w := newWorld(t)
			w.noIndex = noIndex
			a := w.worker(engine.Config{})
			a.src.assign(t, p0)
			w.produce(p0, 3)
			w.ledger.onStage = func() {
				b := w.worker(engine.Config{})
				b.src.assign(t, p0)
				b.step()
				a.src.assign(t, p1) // a reloads the ledger: b's commit
			}
			a.step()
			if got := a.eng.Stats().Fenced.Load(); got != 1 {
				t.Errorf("fenced %d, want 1", got)
			}
			w.reconcile()
		})
	}
	t.Run("rejects", func(t *testing.T) {
		w := newWorld(t)
		a := w.worker(engine.Config{})
		a.src.assign(t, p0)
		w.produce(p0, 1)
		w.produceBad(p0)
		w.rejects.onStage = func() {
			b := w.worker(engine.Config{})
			b.src.assign(t, p0) // resumes below a's ledger commit, for the rejects table
			b.step()
			a.src.assign(t, p1) // a reloads the tables: b's rejects commit
		}
		a.step()
		if n := len(w.rejects.snaps); n != 1 {
			t.Errorf("%d rejects snapshots, want 1 (b's)", n)
		}
		w.reconcile()
	})
}
