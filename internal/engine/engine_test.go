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
)

// The scenarios below script one tricky case each, in the manner of etcd raft's
// interaction tests: produce, assign, run batches, crash at a fault point, restart, and
// then check by reconciliation that every data record is in the table exactly once.

var (
	p0 = engine.Partition{Topic: "tx", Partition: 0}
	p1 = engine.Partition{Topic: "tx", Partition: 1}
)

// world is one topic and one table shared by any number of workers.
type world struct {
	t     *testing.T
	log   *fakeLog
	clock *fakeClock
	table *fakeTable
	seq   int
	valid map[string]bool // "p/offset" of every valid data record produced
}

func newWorld(t *testing.T) *world {
	return &world{t: t, log: newLog(), clock: &fakeClock{now: time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)},
		table: &fakeTable{}, valid: map[string]bool{}}
}

// produce appends n valid transactions to partition p.
func (w *world) produce(p engine.Partition, n int) {
	for range n {
		w.seq++
		v := fmt.Sprintf(`{"transaction_id":"TXN%08d","account_from":"ACC1000","account_to":"ACC2000",`+
			`"amount":"%d.25","currency":"EUR","transaction_type":"payment","timestamp":"2025-01-16T10:00:00.123456"}`, w.seq, w.seq)
		off := w.log.append(p, []byte(v), false)
		w.valid[fmt.Sprintf("%d/%d", p.Partition, off)] = true
	}
}

// produceBad appends a message that the transform refuses.
func (w *world) produceBad(p engine.Partition) { w.log.append(p, []byte(`{"transaction_id":`), false) }

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
	e := engine.New(cfg, w.table)
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

// reconcile checks the invariant: every valid data record in the table once, nothing else.
func (w *world) reconcile() {
	w.t.Helper()
	got := w.table.positions()
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			w.t.Fatalf("duplicate row at source position %s", got[i])
		}
	}
	var want []string
	for pos := range w.valid {
		want = append(want, pos)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		w.t.Fatalf("table holds %d rows, topic %d valid records\n got %v\nwant %v", len(got), len(want), got, want)
	}
}

func (w *world) wantOffsets(want engine.Offsets) {
	w.t.Helper()
	st, _ := w.table.Load(context.Background())
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
	w.reconcile()
}

func TestScenarioNothingReadNothingCommitted(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	k.step()
	if n := len(w.table.snaps); n != 0 {
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
			w.produce(p1, 1)
			victim := w.worker(crashAt(point))
			victim.src.assign(t, p0, p1)
			if got := victim.step(); got != point {
				t.Fatalf("crashed at %q, want %q", got, point)
			}
			restarted := w.worker(engine.Config{})
			restarted.src.assign(t, p0, p1)
			restarted.step()
			w.wantOffsets(engine.Offsets{p0: 7, p1: 4})
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
	w.table.failNext(failLostAck)
	k.step()
	w.reconcile()
	if n := len(w.table.snaps); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
	if got := k.eng.Stats().Unknown.Load(); got != 1 {
		t.Fatalf("unknown outcomes %d, want 1", got)
	}
}

// The catalog failed before writing: reading back shows the start offsets, so retry.
func TestScenarioFailedWriteIsRetried(t *testing.T) {
	w := newWorld(t)
	k := w.worker(engine.Config{})
	k.src.assign(t, p0)
	w.produce(p0, 5)
	w.table.failNext(failBeforeWrite, failConflict)
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
	w.table.foreignCommit()
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
