package main

// The hand-off (issue 12), two scenarios of TestOutages: a worker cut off from the catalog
// for longer than its session timeout leaves the consumer group, so that the other worker
// takes its partitions and the pipeline keeps committing; it stays up, and rejoins once
// the catalog answers again. With both cut off, both leave, nobody commits, both rejoin.

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

// runHandOff black-holes worker w1's catalog proxy (and w2's too, with both) for 30 s,
// with a 3 s session timeout, while a producer sends 2,400 transactions at 120/s (20 s).
func runHandOff(t *testing.T, both bool) {
	const (
		session = 3 * time.Second
		outage  = 30 * time.Second
	)
	name := "handoff-one"
	if both {
		name = "handoff-both"
	}
	e := &outageEnv{t: t, total: 2400, outage: outage}
	e.setUp(outageScenario{name: name})
	// A catalog proxy per worker: one can be cut off alone.
	for range 2 {
		u, err := url.Parse(e.pgDirect)
		if err != nil {
			t.Fatal(err)
		}
		p := testinfra.StartFaultProxy(t, u.Host)
		u.Host = p.Addr
		e.catalogs = append(e.catalogs, p)
		args := append([]string(nil), e.args...)
		args[1] = u.String() // --catalog
		e.workerArgs = append(e.workerArgs, args)
	}
	e.startWorkers(session)
	a, b := e.workers[0], e.workers[1]
	e.producer = e.st.start(t, "produce", "--count", fmt.Sprint(e.total), "--rate", "120", "--seed", "13")
	e.waitCommitted(1, 60*time.Second)
	// Both workers own partitions before the fault: w2 joined after w1, and w1 gives
	// some up only between its batches (cooperative rebalancing).
	b.waitForLine(&b.stderr, `msg="partitions assigned"`, 60*time.Second)
	time.Sleep(time.Second)

	cut := e.catalogs[:1]
	if both {
		cut = e.catalogs
	}
	for _, p := range cut {
		p.Set(testinfra.BlackHole)
	}
	faultAt := time.Now()
	atFault, err := e.committedOffsetsNow()
	if err != nil {
		t.Fatal(err)
	}
	var leftAt, tookOverAt, drainedAt time.Time
	var maxLag, committedAtLeave int64
	for time.Since(faultAt) < outage {
		e.requireWorkersUp("during the outage")
		if leftAt.IsZero() && strings.Contains(a.stderr.String(), "leaving the consumer group") {
			leftAt = time.Now()
			committedAtLeave, _ = e.committedNow()
		}
		// Every partition committed beyond where it stood at the fault: w1's too, which
		// only w2 can have committed (w1's commits cannot reach the catalog).
		if now, err := e.committedOffsetsNow(); err == nil && tookOverAt.IsZero() && len(now) == 3 {
			all := true
			for p, off := range now {
				all = all && off > atFault[p]
			}
			if all {
				tookOverAt = time.Now()
			}
		}
		if lag, ok := e.lagNow(); ok {
			maxLag = max(maxLag, lag)
			if !leftAt.IsZero() && lag == 0 && drainedAt.IsZero() && e.producer.exited() {
				drainedAt = time.Now()
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	committedAtHeal, _ := e.committedNow()
	for _, p := range cut {
		p.Heal()
	}
	e.healAt = time.Now()
	if leftAt.IsZero() {
		t.Fatalf("w1 did not leave its group during a %s catalog outage (session timeout %s):\n%s", outage, session, tail(a.stderr.String(), 3000))
	}
	for _, w := range e.workers[:len(cut)] {
		if line := w.stderr.String(); !strings.Contains(line, "dependency=catalog") || !strings.Contains(line, "batch dropped: giving the partitions up") && !strings.Contains(line, "leaving the consumer group") {
			t.Errorf("%s does not say it gave its partitions up for the catalog:\n%s", w.name, tail(line, 3000))
		}
	}
	if both {
		// Nobody can commit: once both are out, the table does not move until the heal.
		if committedAtHeal != committedAtLeave {
			t.Errorf("committed %d records when w1 left and %d at the heal, with both workers cut off from the catalog", committedAtLeave, committedAtHeal)
		}
	} else {
		// w2 took w1's partitions and the pipeline drained the backlog during the outage.
		if drainedAt.IsZero() || committedAtHeal != e.total {
			t.Fatalf("w2 did not take over: %d of %d records committed at the heal (w1 left %s after the fault)\nw2:\n%s",
				committedAtHeal, e.total, leftAt.Sub(faultAt).Round(100*time.Millisecond), tail(b.stderr.String(), 3000))
		}
	}
	// Every worker that left rejoins once its catalog answers, and the pipeline catches up.
	for _, w := range e.workers[:len(cut)] {
		w.waitForLine(&w.stderr, "rejoining the consumer group", 60*time.Second)
	}
	e.producer.mustSucceed(2 * time.Minute)
	e.waitCommitted(e.total, 60*time.Second)
	e.caughtAt = time.Now()
	if !both && tookOverAt.IsZero() {
		t.Errorf("not every partition was committed during the outage: w2 did not take over w1's")
	}
	if both && !tookOverAt.IsZero() {
		t.Errorf("every partition moved during an outage of both workers' catalog")
	}
	// More records after the heal: w1 works again (it commits a batch after rejoining). They
	// are produced once w1 owns partitions again: produced earlier, w2 could commit them all
	// before the group gave w1 any (CI saw "w1 committed nothing after it rejoined").
	waitStartsAfterRejoin(t, a, 60*time.Second)
	more := int64(600)
	p2 := e.st.start(t, "produce", "--count", fmt.Sprint(more), "--rate", "300", "--seed", "14")
	p2.mustSucceed(time.Minute)
	e.total += more
	e.waitCommitted(e.total, 60*time.Second)
	rejoined := strings.LastIndex(a.stderr.String(), "rejoining the consumer group")
	if !strings.Contains(a.stderr.String()[rejoined:], "batch committed") {
		t.Errorf("w1 committed nothing after it rejoined:\n%s", tail(a.stderr.String(), 3000))
	}
	e.requireWorkersUp("after the heal")
	for _, w := range e.workers {
		w.signal(syscall.SIGTERM)
	}
	for _, w := range e.workers {
		if err := w.wait(time.Minute); err != nil {
			t.Errorf("%s did not stop cleanly: %v", w.name, err)
		}
	}
	missing, duplicated, rows := e.verify()
	since := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return at.Sub(faultAt).Round(100 * time.Millisecond).String()
	}
	t.Logf("hand-off (%s cut off): catalog outage %s, session timeout %s; w1 left the group %s after the fault; every partition committed again %s after the fault; lag max %d records during the outage, drained %s after the fault; committed %d at w1's leave, %d at the heal; heal to caught up: %s; verify: %d rows, %d missing, %d duplicated",
		map[bool]string{false: "w1", true: "both"}[both], outage, session, since(leftAt), since(tookOverAt),
		maxLag, since(drainedAt), committedAtLeave, committedAtHeal, e.caughtAt.Sub(e.healAt).Round(100*time.Millisecond), rows, missing, duplicated)
}

// committedOffsetsNow is committedOffsets with a short bound.
func (e *outageEnv) committedOffsetsNow() (engine.Offsets, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.committedOffsets(ctx)
}

// committedNow is committed with a short bound.
func (e *outageEnv) committedNow() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.committed(ctx)
}

// lagNow is how many records the topic holds beyond what the pipeline committed.
func (e *outageEnv) lagNow() (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := kafka.DescribeTopic(ctx, kafka.ClientConfig{Brokers: []string{e.st.brokers}}, e.st.topic)
	if err != nil {
		return 0, false
	}
	committed, err := e.committed(ctx)
	if err != nil {
		return 0, false
	}
	return sumOffsets(st.End) - committed, true
}

// waitStartsAfterRejoin waits until w, after its last "rejoining the consumer group" line,
// has resumed a partition ("kafka partition starts"): it is in the group and owns one.
func waitStartsAfterRejoin(t *testing.T, w *proc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := w.stderr.String()
		if i := strings.LastIndex(out, "rejoining the consumer group"); i >= 0 && strings.Contains(out[i:], "kafka partition starts") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s owns no partition %s after rejoining its group:\n%s", w.name, timeout, tail(out, 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
