package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// outageFor makes ops of t fail with a refused connection for d of the world's clock,
// from the first call of one of them once armed (the fake source moves the clock on
// while a batch reads, so an outage is timed from its first failure).
func outageFor[R any](w *world, t *fakeTable[R], d time.Duration, ops ...string) (arm func()) {
	armed := false
	var until time.Time
	t.down = func(op string) error {
		hit := false
		for _, o := range ops {
			hit = hit || o == op
		}
		if !armed || !hit {
			return nil
		}
		if until.IsZero() {
			until = w.clock.Now().Add(d)
		}
		if !w.clock.Now().Before(until) {
			return nil
		}
		return fmt.Errorf("fake %s %s: %w", op, t.name, refused())
	}
	return func() { armed = true }
}

func (w *world) outageWorker(timeout time.Duration, logs *bytes.Buffer) *worker {
	k := w.worker(engine.Config{Retry: &retry.Policy{OutageTimeout: timeout, Clock: w.clock,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}})
	return k
}

// The catalog stops right after a commit went out (its acknowledgement lost): the
// read-back that settles the outcome fails for 40 s. The worker waits, reads the table back
// once the catalog is there again, finds its commit landed, and goes on: no error, no
// second snapshot. (The read-back used to be outside any retry: the run ended.)
func TestScenarioCatalogOutageDuringReadBackIsWaitedOut(t *testing.T) {
	w := newWorld(t)
	var logs bytes.Buffer
	k := w.outageWorker(time.Minute, &logs)
	k.src.assign(t, p0)
	w.produce(p0, 5)
	start := outageFor(w, w.ledger, 40*time.Second, "load", "commit")
	w.ledger.failNext(failLostAck)
	w.clock.onSleep = start // the outage begins as the worker backs off after the lost ack
	k.step()
	w.ledger.down = nil
	w.reconcile()
	if n := len(w.ledger.snaps); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
	if w.ledger.calls["load"] < 5 {
		t.Fatalf("%d loads: the read-back was not retried through the outage", w.ledger.calls["load"])
	}
	st := k.eng.Dependencies().State(retry.Catalog)
	if !st.Up || st.Outages != 1 || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("catalog state after the outage: %+v", st)
	}
	for _, want := range []string{"waiting for a dependency", "dependency=catalog", "dependency recovered", "outage="} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

// The catalog stops as the batch commits, for 30 s: the attempt's outcome is unknown, the
// read-back waits for the catalog, and the batch is committed once after.
func TestScenarioCatalogDownAtCommitIsWaitedOut(t *testing.T) {
	w := newWorld(t)
	var logs bytes.Buffer
	k := w.outageWorker(time.Minute, &logs)
	k.src.assign(t, p0)
	w.produce(p0, 5)
	arm := outageFor(w, w.ledger, 30*time.Second, "commit", "load")
	arm()
	k.step()
	w.ledger.down = nil
	w.reconcile()
	w.wantOffsets(engine.Offsets{p0: 5})
	if got := k.eng.Stats().Unknown.Load(); got < 1 || w.ledger.calls["load"] < 5 {
		t.Fatalf("%d unknown outcomes, %d loads: the outage was not met at commit", got, w.ledger.calls["load"])
	}
}

// An outage longer than the outage timeout ends the run, naming the dependency, the
// operation and the last error.
func TestScenarioOutageLongerThanTimeoutEndsTheRun(t *testing.T) {
	w := newWorld(t)
	var logs bytes.Buffer
	k := w.outageWorker(time.Minute, &logs)
	k.src.assign(t, p0)
	w.produce(p0, 5)
	arm := outageFor(w, w.ledger, time.Hour, "commit", "load")
	arm()
	_, err := k.eng.Step(context.Background(), k.feed)
	var out *retry.OutageError
	if !errors.As(err, &out) || out.Dependency != retry.Catalog {
		t.Fatalf("Step = %v, want an outage error of the catalog", err)
	}
	if out.For < time.Minute || out.For > 2*time.Minute || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("outage error %v (after %s)", err, out.For)
	}
	// A warning every 10 s of the wait: about 6 in the minute.
	if n := strings.Count(logs.String(), "waiting for a dependency"); n < 5 || n > 9 {
		t.Fatalf("%d waiting warnings in a minute:\n%s", n, logs.String())
	}
	w.ledger.down = nil
	k2 := w.worker(engine.Config{})
	k2.src.assign(t, p0)
	k2.step()
	w.reconcile() // the batch is redone by the next worker
}

// A full disk while writing the batch's files: the batch is kept and written again once
// there is room.
func TestScenarioDiskFullWhileStagingIsWaitedOut(t *testing.T) {
	w := newWorld(t)
	var logs bytes.Buffer
	k := w.outageWorker(time.Minute, &logs)
	k.src.assign(t, p0)
	w.produce(p0, 5)
	var until time.Time
	w.ledger.down = func(op string) error {
		if op == "stage" && until.IsZero() {
			until = w.clock.Now().Add(20 * time.Second)
		}
		if op == "stage" && w.clock.Now().Before(until) {
			return &fs.PathError{Op: "write", Path: "/warehouse/ledger/data/00001.parquet", Err: syscall.ENOSPC}
		}
		return nil
	}
	k.step()
	w.ledger.down = nil
	w.reconcile()
	if st := k.eng.Dependencies().State(retry.Storage); !st.Up || st.Outages != 1 || !strings.Contains(st.LastError, "no space left") {
		t.Fatalf("storage state: %+v", st)
	}
}

// What retrying cannot fix fails at once, and says what and why.
func TestScenarioPermissionDeniedFailsFast(t *testing.T) {
	w := newWorld(t)
	var logs bytes.Buffer
	k := w.outageWorker(time.Minute, &logs)
	k.src.assign(t, p0)
	w.produce(p0, 5)
	w.ledger.down = func(op string) error {
		if op == "stage" {
			return &fs.PathError{Op: "open", Path: "/warehouse/ledger/data/00001.parquet", Err: syscall.EACCES}
		}
		return nil
	}
	_, err := k.eng.Step(context.Background(), k.feed)
	var perm *retry.PermanentError
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "00001.parquet") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Step = %v, want a permanent error naming the file", err)
	}
	if w.ledger.calls["stage"] != 1 {
		t.Fatalf("%d stage attempts: a permanent error was retried", w.ledger.calls["stage"])
	}
}

// A worker cut off from the catalog for its session timeout gives its partitions up: Step
// ends with a hand-off (not the outage timeout), the batch is dropped and its partitions'
// positions go back to the table's. Another worker that reaches the catalog takes the
// partition over and commits it; the first, assigned it again once the catalog is back,
// goes on from the table: nothing lost, nothing twice.
func TestScenarioCutOffWorkerHandsItsPartitionsOff(t *testing.T) {
	w := newWorld(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	a := w.worker(engine.Config{Logger: logger, Retry: &retry.Policy{OutageTimeout: 10 * time.Minute, HandOffAfter: 30 * time.Second,
		Clock: w.clock, Logger: logger}})
	a.src.assign(t, p0)
	w.produce(p0, 5)
	a.step()
	w.produce(p0, 5)
	arm := outageFor(w, w.ledger, time.Hour, "commit", "load")
	arm()
	_, err := a.eng.Step(context.Background(), a.src)
	var h *retry.HandOffError
	if !errors.As(err, &h) || h.Dependency != retry.Catalog {
		t.Fatalf("Step = %v, want a hand-off for the catalog", err)
	}
	if h.For < 30*time.Second || h.For > 30*time.Second+retry.DefaultMax || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("hand-off after %s (%v), want at the 30 s session timeout", h.For, err)
	}
	if n := a.eng.Stats().HandOffs.Load(); n != 1 {
		t.Fatalf("%d hand-offs counted", n)
	}
	if !strings.Contains(logs.String(), "batch dropped: giving the partitions up") {
		t.Fatalf("the drop is not logged:\n%s", logs.String())
	}
	// The group moves p0 to b, which reaches the catalog (the outage was a's alone).
	a.src.lose(p0)
	w.ledger.down = nil
	b := w.worker(engine.Config{})
	b.src.assign(t, p0)
	w.produce(p0, 3)
	b.step()
	w.wantOffsets(engine.Offsets{p0: 13})
	// a joins again and is given p0 back: it resumes at the table's offset.
	b.src.lose(p0)
	a.src.assign(t, p0)
	w.produce(p0, 2)
	a.step()
	w.wantOffsets(engine.Offsets{p0: 15})
	w.reconcile()
}

// A worker whose storage is down for its session timeout while writing a batch gives the
// partitions up too, and leaves the batch's files to maintain (it cannot delete them).
func TestScenarioStorageCutOffHandsOff(t *testing.T) {
	w := newWorld(t)
	a := w.worker(engine.Config{Retry: &retry.Policy{OutageTimeout: 10 * time.Minute, HandOffAfter: 10 * time.Second, Clock: w.clock}})
	a.src.assign(t, p0)
	w.produce(p0, 5)
	w.ledger.down = func(op string) error {
		if op == "stage" {
			return &fs.PathError{Op: "write", Path: "/warehouse/ledger/data/00001.parquet", Err: syscall.ENOSPC}
		}
		return nil
	}
	_, err := a.eng.Step(context.Background(), a.src)
	var h *retry.HandOffError
	if !errors.As(err, &h) || h.Dependency != retry.Storage {
		t.Fatalf("Step = %v, want a hand-off for the storage", err)
	}
	w.ledger.down = nil
	a.src.lose(p0)
	a.src.assign(t, p0)
	a.step()
	w.wantOffsets(engine.Offsets{p0: 5})
	w.reconcile()
}
