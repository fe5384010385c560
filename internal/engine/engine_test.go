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
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// The scenarios below script one tricky case each, in the manner of etcd raft's
// interaction tests: produce, assign, run batches, crash at a fault point, restart, and
// then check by reconciliation that every data record is in the table exactly once.

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
	// want is the fate of every data record produced, by "p/offset": "" for a ledger row,
	// else the reason code of its reject.
	want map[string]ledger.Reason
}

func newWorld(t *testing.T) *world {
	return &world{t: t, log: newLog(), clock: &fakeClock{now: time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)},
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
}

func (w *world) worker(cfg engine.Config) *worker {
	cfg.Pipeline = "p"
	cfg.Clock = w.clock
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Trigger == 0 {
		cfg.Trigger = time.Second
	}
	e := engine.New(cfg, engine.Sinks{Ledger: w.ledger, Rejects: w.rejects, Index: &fakeIndex{ledger: w.ledger}})
	return &worker{w: w, eng: e, src: newSource(w.log, w.clock, e.Resume)}
}

// crashAt returns a config whose fault hook kills the worker at the named point.
func crashAt(point string) engine.Config {
	return engine.Config{Fault: func(at string) {
		if at == point {
			panic(crash(at))
		}
	}}
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
	if _, err := k.eng.Step(context.Background(), k.src); err != nil {
		k.w.t.Fatalf("step: %v", err)
	}
	return ""
}

// reconcile checks the invariant: every data record is in exactly one of the two tables,
// once, the ledger for a new valid transaction and the rejects table, with the right
// reason, for anything else; no transaction id is twice in the ledger.
func (w *world) reconcile() {
	w.t.Helper()
	got := map[string]ledger.Reason{}
	ids := map[string]bool{}
	for _, r := range w.ledger.rows(0) {
		pos := fmt.Sprintf("%d/%d", r.SourcePartition, r.SourceOffset)
		if _, dup := got[pos]; dup {
			w.t.Fatalf("source position %s is in the tables twice", pos)
		}
		if ids[r.TransactionID] {
			w.t.Fatalf("transaction %s is in the ledger twice", r.TransactionID)
		}
		got[pos], ids[r.TransactionID] = "", true
	}
	for _, r := range w.rejects.rows(0) {
		pos := fmt.Sprintf("%d/%d", r.SourcePartition, r.SourceOffset)
		if _, dup := got[pos]; dup {
			w.t.Fatalf("source position %s is in the tables twice", pos)
		}
		got[pos] = r.Reason
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
		w.t.Fatalf("tables hold %d records, topic %d; missing %v; wrong %v", len(got), len(w.want), missing, wrong)
	}
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

// A crash at any point of a batch, then a restart: the new worker resumes from the table
// and redoes exactly what is missing.
func TestScenarioCrashAtEveryFaultPoint(t *testing.T) {
	for _, point := range []string{engine.FaultAfterFetch, engine.FaultAfterStage, engine.FaultAfterCommit, engine.FaultAfterAdvised} {
		t.Run(point, func(t *testing.T) {
			w := newWorld(t)
			k := w.worker(engine.Config{})
			k.src.assign(t, p0, p1)
			w.produce(p0, 3)
			w.produce(p1, 3)
			k.step() // one good batch first
			w.produce(p0, 4)
			w.produceBad(p0)
			w.produceAgain(p1, 2, true)
			w.produceAgain(p0, 3, false)
			w.produce(p1, 1)
			victim := w.worker(crashAt(point))
			victim.src.assign(t, p0, p1)
			if got := victim.step(); got != point {
				t.Fatalf("crashed at %q, want %q", got, point)
			}
			restarted := w.worker(engine.Config{})
			restarted.src.assign(t, p0, p1)
			restarted.step()
			w.wantOffsets(engine.Offsets{p0: 9, p1: 5})
			w.reconcile()
		})
	}
}

func TestScenarioCrashInRebalanceBeforeAnythingIsRead(t *testing.T) {
	w := newWorld(t)
	w.produce(p0, 2)
	k := w.worker(crashAt(engine.FaultInRebalance))
	func() {
		defer func() { _ = recover() }()
		k.src.assign(t, p0)
		t.Fatal("resume did not reach the fault point")
	}()
	k2 := w.worker(engine.Config{})
	k2.src.assign(t, p0)
	k2.step()
	w.reconcile()
}

// The catalog applied the commit but the acknowledgement was lost: reading the table
// back shows the batch's end offsets, so the batch is not written twice.
func TestScenarioLostAcknowledgementIsSettledAsLanded(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	w.produce(p0, 5)
	w.ledger.failNext(failLostAck)
	k.step()
	w.reconcile()
	if n := len(w.ledger.snaps); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
	if got := k.eng.Stats().Unknown.Load(); got != 1 {
		t.Fatalf("unknown outcomes %d, want 1", got)
	}
}

// The commit's acknowledgement was lost, and before the worker read the table back the
// partition's new owner committed on top of the landed snapshot. The batch is fenced, but
// its files are the landed snapshot's: deleting them would lose committed rows.
func TestScenarioLandedThenOvertakenKeepsItsFiles(t *testing.T) {
	w := newWorld(t)
	a := w.worker(engine.Config{})
	a.src.assign(t, p0)
	w.produce(p0, 3)
	w.ledger.failNext(failLostAck)
	w.clock.onSleep = func() { // A backs off after the unknown outcome
		w.produce(p0, 2)
		b := w.worker(engine.Config{})
		b.src.assign(t, p0) // resumes at 3: A's commit landed
		b.step()
	}
	a.step()
	if got := a.eng.Stats().Fenced.Load(); got != 1 {
		t.Fatalf("fenced %d, want 1", got)
	}
	if w.ledger.discarded != 0 {
		t.Fatalf("%d staged sets deleted; the landed batch's files must be kept", w.ledger.discarded)
	}
	w.wantOffsets(engine.Offsets{p0: 5})
	w.reconcile()
}

// The catalog failed before writing: reading back shows the start offsets, so retry.
func TestScenarioFailedWriteIsRetried(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	w.produce(p0, 5)
	w.ledger.failNext(failBeforeWrite, failConflict)
	k.step()
	w.reconcile()
	w.wantOffsets(engine.Offsets{p0: 5})
}

// A writer that is not ledgerstream commits to the table in the middle of a batch: the
// conflict is merged (our offsets map carried forward over its snapshot) and retried.
func TestScenarioForeignWriterConflictMergesAndRetries(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	w.produce(p0, 2)
	k.step()
	w.produce(p0, 2)
	w.ledger.foreignCommit()
	k.step()
	w.wantOffsets(engine.Offsets{p0: 4})
	if got := k.eng.Stats().Conflicts.Load(); got != 1 {
		t.Fatalf("conflicts %d, want 1", got)
	}
	w.reconcile()
}

// Two workers of one pipeline own different partitions: each commit conflicts with the
// other's, and each merge keeps the other's offsets.
func TestScenarioTwoWorkersShareTheMap(t *testing.T) {
	w := newWorld(t)
	a, b := w.worker(engine.Config{}), w.worker(engine.Config{})
	a.src.assign(t, p0)
	b.src.assign(t, p1)
	for range 3 {
		w.produce(p0, 2)
		w.produce(p1, 3)
		a.step()
		b.step()
	}
	w.wantOffsets(engine.Offsets{p0: 6, p1: 9})
	w.reconcile()
}

// A zombie: worker A lost partition 0 (its session expired unnoticed) and B took it over
// and committed. A's commit is fenced; A drops its batch and seeks to the table.
func TestScenarioZombieIsFenced(t *testing.T) {
	w := newWorld(t)
	a := w.worker(engine.Config{})
	a.src.assign(t, p0)
	w.produce(p0, 2)
	a.step()
	w.produce(p0, 3)
	b := w.worker(engine.Config{})
	b.src.assign(t, p0) // B resumes at 2, as A does
	b.step()            // B commits 2..5
	a.step()            // A read 2..5 too, but planned on the old snapshot
	if got := a.eng.Stats().Fenced.Load(); got != 1 {
		t.Fatalf("fenced %d, want 1", got)
	}
	if a.src.pos[p0] != 5 {
		t.Fatalf("zombie re-seeked to %d, want 5", a.src.pos[p0])
	}
	w.produce(p0, 1)
	a.step() // A continues from the table, nothing doubled
	w.wantOffsets(engine.Offsets{p0: 6})
	w.reconcile()
}

// A partition lost in the middle of a batch is not committed by this worker.
func TestScenarioPartitionLostMidBatch(t *testing.T) {
	w := newWorld(t)
	a := w.worker(engine.Config{})
	a.src.assign(t, p0, p1)
	w.produce(p0, 2)
	w.produce(p1, 2)
	a.src.lose(p1) // the engine only learns it at commit time
	a.step()
	w.wantOffsets(engine.Offsets{p0: 2})
	b := w.worker(engine.Config{})
	b.src.assign(t, p1)
	b.step()
	w.reconcile()
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
	if err := k.eng.Run(context.Background(), k.src); err != nil {
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
	if err := k.eng.Run(ctx, k.src); err != nil {
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

// Trap 1 of docs/design.md §4.8: batches without rejects do not commit to the rejects table, and
// yet a restart resumes at the ledger's offsets, not at the last reject.
func TestScenarioCleanBatchesKeepRestartsCheap(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	w.produceBad(p0)
	k.step()
	for range 5 {
		w.produce(p0, 10)
		k.step()
	}
	if n := len(w.rejects.snaps); n != 1 {
		t.Fatalf("%d rejects snapshots, want 1 (only the batch that had a reject)", n)
	}
	restarted := w.worker(engine.Config{})
	restarted.src.assign(t, p0)
	if got := restarted.src.pos[p0]; got != 51 {
		t.Fatalf("restart resumes at %d, want 51", got)
	}
	w.reconcile()
}

// Trap 2: the ledger commit must not claim the rejects table holds a batch's rejects
// before it does. A crash between the two commits re-reads the batch for the rejects
// table alone; the ledger's rows are replays, not duplicates.
func TestScenarioCrashBetweenLedgerAndRejects(t *testing.T) {
	w := newWorld(t)
	w.produce(p0, 2)
	w.produceBad(p0)
	w.produceAgain(p0, 1, true)
	w.produce(p0, 1)
	victim := w.worker(crashAt(engine.FaultAfterCommit))
	victim.src.assign(t, p0)
	if got := victim.step(); got != engine.FaultAfterCommit {
		t.Fatalf("crashed at %q", got)
	}
	if n := len(w.rejects.snaps); n != 0 {
		t.Fatalf("rejects committed before the crash: %d snapshots", n)
	}
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	if got := k.src.pos[p0]; got != 0 {
		t.Fatalf("restart resumes at %d, want 0 (the rejects table still lacks the batch)", got)
	}
	k.step()
	w.reconcile()
	if got := k.eng.Stats().Replayed.Load(); got != 3 {
		t.Fatalf("replayed %d, want 3 (the ledger's rows)", got)
	}
	if n := len(w.ledger.snaps); n != 1 {
		t.Fatalf("%d ledger snapshots, want 1: the replay must not commit the ledger", n)
	}
}

// Two workers accept the same transaction id from different partitions in concurrent
// batches. The second ledger commit conflicts; its worker brings the index up to date,
// classifies its batch again and rejects its copy as a duplicate.
func TestScenarioCrossPartitionDuplicateRace(t *testing.T) {
	w := newWorld(t)
	a := w.worker(engine.Config{})
	raced := false
	b := w.worker(engine.Config{Fault: func(at string) {
		if at == engine.FaultAfterFetch && !raced {
			raced = true
			a.step() // A commits while B holds its batch, classified against the old index
		}
	}})
	a.src.assign(t, p0)
	b.src.assign(t, p1)
	w.produce(p0, 1)            // TXN00000001 in p0
	w.produceAgain(p1, 1, true) // the same transaction in p1, at the same time
	w.produce(p1, 1)
	b.step()
	if got := b.eng.Stats().Conflicts.Load(); got != 1 {
		t.Fatalf("%d conflicts, want 1: the race was not exercised", got)
	}
	w.reconcile()
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

// Partitions assigned in the middle of a batch, after the index was synced for it: the
// previous owner committed the ledger, with an id and its retry, and died before the rejects
// commit. The new owner re-reads the batch for the rejects table alone; the retry must be
// classified against an index that knows the original, or it would pass for a replay and be
// lost from both tables (found by the chaos soak).
func TestScenarioAssignedMidBatchAfterAnotherWorkersCommit(t *testing.T) {
	w := newWorld(t)
	a := w.worker(engine.Config{})
	a.src.assign(t, p1)
	a.step()                    // A's index is synced to the empty ledger
	w.produce(p0, 3)            // TXN1..3 at p0/0..2
	w.produceAgain(p0, 2, true) // a retry of TXN2 at p0/3
	w.produce(p1, 1)
	a.src.onFetch = func() {
		b := w.worker(crashAt(engine.FaultAfterCommit))
		b.src.assign(t, p0)
		if got := b.step(); got != engine.FaultAfterCommit {
			t.Fatalf("B crashed at %q", got)
		}
		a.src.assign(t, p0) // B's session expired: p0 moves to A during A's batch
	}
	a.step()
	a.step()
	w.reconcile()
}

// A partition lost and assigned back within one batch: Resume moves its read position back
// to the tables' offset, so the batch would hold its records twice. The batch is dropped and
// read again.
func TestScenarioReassignedWithinOneBatch(t *testing.T) {
	w := newWorld(t)
	a := w.worker(engine.Config{})
	a.src.perFetch = 2
	a.src.assign(t, p0)
	w.produce(p0, 6)
	a.src.onFetch = func() {
		a.src.onFetch = func() { // on the batch's second fetch, after two records were read
			a.src.lose(p0)
			a.src.assign(t, p0) // back at the table's offset, 0
		}
	}
	a.step()
	a.step()
	w.reconcile()
}

// A batch larger than a part writes its first rows while it reads the rest: one commit
// still holds every row once, in order.
func TestScenarioStagedAheadWhileReading(t *testing.T) {
	defer engine.SetStageAheadMin(2)()
	w := newWorld(t)
	k := w.worker(engine.Config{})
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
// are classified again, and never committed twice.
func TestScenariosWithStagingAhead(t *testing.T) {
	defer engine.SetStageAheadMin(1)()
	for name, f := range map[string]func(*testing.T){
		"BatchesCarryTheWholeMapForward":            TestScenarioBatchesCarryTheWholeMapForward,
		"BadInputAndMarkersMoveTheOffsets":          TestScenarioBadInputAndMarkersMoveTheOffsets,
		"CrashAtEveryFaultPoint":                    TestScenarioCrashAtEveryFaultPoint,
		"LostAcknowledgementIsSettledAsLanded":      TestScenarioLostAcknowledgementIsSettledAsLanded,
		"FailedWriteIsRetried":                      TestScenarioFailedWriteIsRetried,
		"ForeignWriterConflictMergesAndRetries":     TestScenarioForeignWriterConflictMergesAndRetries,
		"TwoWorkersShareTheMap":                     TestScenarioTwoWorkersShareTheMap,
		"ZombieIsFenced":                            TestScenarioZombieIsFenced,
		"PartitionLostMidBatch":                     TestScenarioPartitionLostMidBatch,
		"AvailableNowStopsAtTheEnd":                 TestScenarioAvailableNowStopsAtTheEnd,
		"StopCommitsWhatWasRead":                    TestScenarioStopCommitsWhatWasRead,
		"DuplicatesAreRejected":                     TestScenarioDuplicatesAreRejected,
		"CrashBetweenLedgerAndRejects":              TestScenarioCrashBetweenLedgerAndRejects,
		"CrossPartitionDuplicateRace":               TestScenarioCrossPartitionDuplicateRace,
		"AssignedMidBatchAfterAnotherWorkersCommit": TestScenarioAssignedMidBatchAfterAnotherWorkersCommit,
		"ReassignedWithinOneBatch":                  TestScenarioReassignedWithinOneBatch,
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
