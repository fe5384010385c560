package engine_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// This file holds in-memory fakes of the engine's interfaces: a topic log with a
// consumer per worker, a table with snapshots and injectable commit failures, a clock.

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration // every Sleep, in order
	// onSleep, when set, runs at the start of the next Sleep: what happens elsewhere while
	// a worker backs off.
	onSleep func()
	// observe, when set, is told of every Sleep (the transcripts print them).
	observe func(event string)
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep moves the clock by d at once: backoff costs no real time, and is recorded.
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	f, observe := c.onSleep, c.observe
	c.onSleep = nil
	c.mu.Unlock()
	if observe != nil {
		observe(fmt.Sprintf("sleep %v", d))
	}
	if f != nil {
		f()
	}
	c.Advance(d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeLog is a topic: per partition, its records in offset order.
type fakeLog struct {
	mu    sync.Mutex
	parts map[engine.Partition][]engine.Record
	// start is each partition's log start: records below it were deleted.
	start map[engine.Partition]int64
	// id is the topic's id, count its partition count.
	id    string
	count int32
}

func newLog() *fakeLog {
	return &fakeLog{parts: map[engine.Partition][]engine.Record{}, start: map[engine.Partition]int64{}, id: "id-1", count: 2}
}

// deleteBefore moves p's log start to off, as retention or DeleteRecords does.
func (l *fakeLog) deleteBefore(p engine.Partition, off int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start[p] = off
}

// recreate deletes the topic and creates it again, empty, with count partitions and a new id.
func (l *fakeLog) recreate(id string, count int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parts, l.start, l.id, l.count = map[engine.Partition][]engine.Record{}, map[engine.Partition]int64{}, id, count
}

// outOfRange is the fake's OFFSET_OUT_OF_RANGE.
type outOfRange struct{ p engine.Partition }

func (e outOfRange) Error() string    { return fmt.Sprintf("fake: fetch %s: offset out of range", e.p) }
func (e outOfRange) OutOfRange() bool { return true }

func (l *fakeLog) append(p engine.Partition, value []byte, control bool) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	off := int64(len(l.parts[p]))
	l.parts[p] = append(l.parts[p], engine.Record{Partition: p, Offset: off, Value: value, Control: control})
	return off
}

func (l *fakeLog) end(p engine.Partition) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.parts[p]))
}

// fakeSource is one worker's consumer of the log. Assignment changes are scripted by the
// test: assign calls the engine's resume function, as the Kafka adapter does.
type fakeSource struct {
	log    *fakeLog
	clock  *fakeClock
	resume engine.ResumeFunc
	// perFetch caps the records one Fetch returns, so that batches span several fetches.
	perFetch int
	// onFetch, when set, runs once at the start of the next Fetch: what happens elsewhere
	// while this worker's batch is under way (another worker's commit, a rebalance).
	onFetch func()
	// observe, when set, is told of every Seek (the transcripts print them).
	observe func(event string)

	mu       sync.Mutex
	assigned map[engine.Partition]bool
	pos      engine.Offsets
	advisory engine.Offsets
	released int
}

func newSource(log *fakeLog, clock *fakeClock, resume engine.ResumeFunc) *fakeSource {
	return &fakeSource{log: log, clock: clock, resume: resume, perFetch: 1000,
		assigned: map[engine.Partition]bool{}, pos: engine.Offsets{}, advisory: engine.Offsets{}}
}

func (s *fakeSource) assign(t *testing.T, parts ...engine.Partition) {
	t.Helper()
	if err := s.assignErr(parts...); err != nil {
		t.Fatalf("resume: %v", err)
	}
}

// assignErr is assign for callers without a *testing.T at hand.
func (s *fakeSource) assignErr(parts ...engine.Partition) error {
	start, err := s.resume(context.Background(), parts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		s.assigned[p] = true
		switch off := start[p]; off {
		case engine.OffsetEarliest:
			s.pos[p] = 0
		case engine.OffsetLatest:
			s.pos[p] = s.log.end(p)
		default:
			s.pos[p] = off
		}
	}
	return nil
}

// lose takes partitions away without warning, as a session expiry does.
func (s *fakeSource) lose(parts ...engine.Partition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		delete(s.assigned, p)
	}
}

func (s *fakeSource) Fetch(ctx context.Context, max int) ([]engine.Record, error) {
	if f := s.onFetch; f != nil {
		s.onFetch = nil
		f()
	}
	s.mu.Lock()
	limit := s.perFetch
	if max > 0 {
		limit = min(limit, max)
	}
	// Like the Kafka source, an error comes alone: positions out of range first.
	for _, p := range s.sortedAssigned() {
		s.log.mu.Lock()
		pos, n := s.pos[p], int64(len(s.log.parts[p]))
		oor := pos < s.log.start[p] || pos > n
		s.log.mu.Unlock()
		if oor {
			s.mu.Unlock()
			return nil, outOfRange{p}
		}
	}
	var out []engine.Record
	for _, p := range s.sortedAssigned() {
		s.log.mu.Lock()
		recs := s.log.parts[p]
		for s.pos[p] < int64(len(recs)) && len(out) < limit {
			out = append(out, recs[s.pos[p]])
			s.pos[p]++
		}
		s.log.mu.Unlock()
	}
	s.mu.Unlock()
	if len(out) == 0 {
		// Nothing to read: let the trigger interval pass at once.
		s.clock.Advance(time.Hour)
	}
	return out, nil
}

func (s *fakeSource) sortedAssigned() []engine.Partition {
	ps := make([]engine.Partition, 0, len(s.assigned))
	for p := range s.assigned {
		ps = append(ps, p)
	}
	engine.SortPartitions(ps)
	return ps
}

func (s *fakeSource) Seek(offsets engine.Offsets) {
	if s.observe != nil {
		s.observe("seek " + engine.MarshalOffsets(offsets))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, off := range offsets {
		s.pos[p] = off
	}
}

func (s *fakeSource) Assigned() []engine.Partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedAssigned()
}

func (s *fakeSource) Release() {
	s.mu.Lock()
	s.released++
	s.mu.Unlock()
}

func (s *fakeSource) CommitAdvisory(_ context.Context, offsets engine.Offsets) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, off := range offsets {
		s.advisory[p] = off
	}
	return nil
}

func (s *fakeSource) Ends(context.Context) (engine.Offsets, engine.Offsets, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start, end := engine.Offsets{}, engine.Offsets{}
	for p := range s.assigned {
		start[p], end[p] = 0, s.log.end(p)
	}
	return start, end, nil
}

// Topic makes the fake a TopicDescriber.
func (s *fakeSource) Topic(context.Context) (engine.TopicState, error) {
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	st := engine.TopicState{Topic: "tx", ID: l.id, Partitions: l.count, Start: engine.Offsets{}, End: engine.Offsets{}}
	for i := range l.count {
		p := engine.Partition{Topic: "tx", Partition: i}
		st.Start[p], st.End[p] = l.start[p], int64(len(l.parts[p]))
	}
	return st, nil
}

// fakeSnapshot is one commit of a fake table.
type fakeSnapshot[R any] struct {
	id      int64
	commit  *engine.Commit // nil for a foreign writer's commit
	rows    []R
	foreign int // rows a foreign writer added
}

// failure is what the next Commit call of a fake table does instead of succeeding.
type failure int

const (
	failConflict      failure = iota + 1 // refuse: someone else got in first (nothing written)
	failLostAck                          // write the snapshot, then report an error (timeout)
	failBeforeWrite                      // report an error, write nothing
	failAfterConflict                    // a foreign writer commits first, then the commit is tried
)

// fakeTable is a table of snapshots. Commits are conditional on the current snapshot.
type fakeTable[R any] struct {
	name      string
	mu        sync.Mutex
	snaps     []fakeSnapshot[R]
	nextID    int64
	failures  []failure
	staged    int
	discarded int
	// observe, when set, is told of every commit, refused or not, and every foreign commit
	// (the transcripts print them). Called with mu held.
	observe func(event string)
	// onStage, when set, runs once at the start of the next Stage: what happens elsewhere
	// while a worker writes its files.
	onStage func()
	// down, when set, is asked before every Load, Stage and Commit ("load", "stage",
	// "commit"); an error it returns is the operation's (an outage of the dependency).
	down  func(op string) error
	calls map[string]int // operations tried, by name
}

func (t *fakeTable[R]) tellLocked(format string, args ...any) {
	if t.observe != nil {
		t.observe(t.name + ": " + fmt.Sprintf(format, args...))
	}
}

// tryLocked counts op and returns the outage's error for it, if any.
func (t *fakeTable[R]) tryLocked(op string) error {
	if t.calls == nil {
		t.calls = map[string]int{}
	}
	t.calls[op]++
	if t.down != nil {
		return t.down(op)
	}
	return nil
}

type fakeStaged[R any] struct {
	rows []R
	id   int
}

func (s *fakeStaged[R]) Rows() int64 { return int64(len(s.rows)) }

func (t *fakeTable[R]) Name() string { return t.name }

func (t *fakeTable[R]) failNext(f ...failure) {
	t.mu.Lock()
	t.failures = append(t.failures, f...)
	t.mu.Unlock()
}

func (t *fakeTable[R]) Load(context.Context) (engine.TableState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.tryLocked("load"); err != nil {
		return engine.TableState{}, err
	}
	return t.stateLocked("p"), nil
}

// stateLocked finds the pipeline's newest snapshot by the protocol's rule, as the Iceberg
// sink does.
func (t *fakeTable[R]) stateLocked(pipeline string) engine.TableState {
	st := engine.TableState{Offsets: engine.Offsets{}}
	if n := len(t.snaps); n > 0 {
		st.SnapshotID = t.snaps[n-1].id
	}
	id, err := engine.NewestOfPipeline(st.SnapshotID, pipeline, func(id int64) (engine.SnapshotLink, bool) {
		i := int(id/100) - 1 // ids are 100, 200, ... in commit order
		if i < 0 || i >= len(t.snaps) {
			return engine.SnapshotLink{}, false
		}
		var l engine.SnapshotLink
		if i > 0 {
			l.Parent = t.snaps[i-1].id
		}
		if c := t.snaps[i].commit; c != nil {
			l.Pipeline = c.Pipeline
		}
		return l, true
	})
	if err != nil {
		panic(err) // the fake never expires snapshots
	}
	if id != 0 {
		c := t.snaps[id/100-1].commit
		st.Offsets, st.Batch, st.Clean, st.TopicIDs = c.Offsets.Clone(), c.Batch, c.Clean.Clone(), c.TopicIDs
	}
	return st
}

func (t *fakeTable[R]) Stage(_ context.Context, rows []R, _ time.Time) (engine.Staged, error) {
	t.mu.Lock()
	f := t.onStage
	t.onStage = nil
	t.mu.Unlock()
	if f != nil {
		f()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.tryLocked("stage"); err != nil {
		return nil, err
	}
	t.staged++
	return &fakeStaged[R]{rows: append([]R(nil), rows...), id: t.staged}, nil
}

func (t *fakeTable[R]) Commit(_ context.Context, base engine.TableState, staged engine.Staged, c engine.Commit) (engine.TableState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.tryLocked("commit"); err != nil {
		return engine.TableState{}, err
	}
	var f failure
	if len(t.failures) > 0 {
		f, t.failures = t.failures[0], t.failures[1:]
	}
	switch f {
	case failConflict:
		t.tellLocked("batch %d refused: conflict (injected)", c.Batch)
		return engine.TableState{}, fmt.Errorf("fake: %w", engine.ErrConflict)
	case failBeforeWrite:
		t.tellLocked("batch %d not written: the catalog timed out before the write", c.Batch)
		return engine.TableState{}, errors.New("fake: catalog timed out before the write")
	case failAfterConflict:
		t.appendLocked(fakeSnapshot[R]{foreign: 1})
		t.tellLocked("snapshot %d by a foreign writer", t.nextID*100)
	}
	if cur := t.stateLocked(c.Pipeline).SnapshotID; cur != base.SnapshotID {
		t.tellLocked("batch %d refused: planned on snapshot %d, the head is %d", c.Batch, base.SnapshotID, cur)
		return engine.TableState{}, fmt.Errorf("fake: base %d, current %d: %w", base.SnapshotID, cur, engine.ErrConflict)
	}
	cc := c
	cc.Offsets, cc.Clean = c.Offsets.Clone(), c.Clean.Clone()
	rows := staged.(*fakeStaged[R]).rows
	t.appendLocked(fakeSnapshot[R]{commit: &cc, rows: rows})
	if t.observe != nil {
		ev := fmt.Sprintf("snapshot %d = batch %d, offsets %s", t.nextID*100, c.Batch, engine.MarshalOffsets(c.Offsets))
		if c.Clean != nil {
			ev += ", clean " + engine.MarshalOffsets(c.Clean)
		}
		t.tellLocked("%s, %s", ev, describeRows(rows))
	}
	if f == failLostAck {
		t.tellLocked("batch %d: the acknowledgement is lost (the worker sees a timeout)", c.Batch)
		return engine.TableState{}, errors.New("fake: catalog timed out after the write")
	}
	return t.stateLocked(c.Pipeline), nil
}

func (t *fakeTable[R]) appendLocked(s fakeSnapshot[R]) {
	t.nextID++
	s.id = t.nextID * 100
	t.snaps = append(t.snaps, s)
}

// foreignCommit is another writer (not ledgerstream) appending to the table.
func (t *fakeTable[R]) foreignCommit() {
	t.mu.Lock()
	t.appendLocked(fakeSnapshot[R]{foreign: 1})
	t.tellLocked("snapshot %d by a foreign writer", t.nextID*100)
	t.mu.Unlock()
}

func (t *fakeTable[R]) Join(parts []engine.Staged) engine.Staged {
	j := &fakeStaged[R]{}
	for _, p := range parts {
		j.rows = append(j.rows, p.(*fakeStaged[R]).rows...)
	}
	return j
}

func (t *fakeTable[R]) stagedCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.staged
}

func (t *fakeTable[R]) Discard(context.Context, engine.Staged) error {
	t.mu.Lock()
	t.discarded++
	t.mu.Unlock()
	return nil
}

// rows returns every committed row up to snapshot id upTo (0: all), in commit order.
func (t *fakeTable[R]) rows(upTo int64) []R {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []R
	for _, s := range t.snaps {
		if upTo != 0 && s.id > upTo {
			break
		}
		out = append(out, s.rows...)
	}
	return out
}

// fakeIndex is the transaction id index, derived from the fake ledger like the real one.
type fakeIndex struct {
	ledger *fakeTable[ledger.Row]
	synced int64
	owners map[string]engine.Owner
}

func (x *fakeIndex) Sync(_ context.Context, st engine.TableState) error {
	if st.SnapshotID == x.synced {
		return nil
	}
	x.owners = map[string]engine.Owner{}
	for _, r := range x.ledger.rows(st.SnapshotID) {
		x.put(r)
	}
	x.synced = st.SnapshotID
	return nil
}

func (x *fakeIndex) put(r ledger.Row) {
	if x.owners == nil {
		x.owners = map[string]engine.Owner{}
	}
	x.owners[r.TransactionID] = engine.Owner{Partition: engine.Partition{Topic: r.SourceTopic, Partition: r.SourcePartition},
		Offset: r.SourceOffset, Hash: r.TransactionHash}
}

func (x *fakeIndex) Lookup(id string) (engine.Owner, bool, error) {
	o, ok := x.owners[id]
	return o, ok, nil
}

func (x *fakeIndex) Add(rows []ledger.Row, st engine.TableState) error {
	for _, r := range rows {
		x.put(r)
	}
	x.synced = st.SnapshotID
	return nil
}

// describeRows says which records a commit holds, by source position: ledger rows as
// runs of offsets, rejects with their reasons. Positions are sorted: the order of rows
// across a commit's files means nothing (parts staged ahead finish in any order).
func describeRows(rows any) string {
	switch rs := rows.(type) {
	case []ledger.Row:
		if len(rs) == 0 {
			return "no rows"
		}
		rs = slices.Clone(rs)
		slices.SortFunc(rs, func(a, b ledger.Row) int {
			return comparePositions(a.SourceTopic, a.SourcePartition, a.SourceOffset, b.SourceTopic, b.SourcePartition, b.SourceOffset)
		})
		var runs []string
		for i := 0; i < len(rs); {
			j := i + 1
			for j < len(rs) && rs[j].SourcePartition == rs[i].SourcePartition && rs[j].SourceOffset == rs[j-1].SourceOffset+1 {
				j++
			}
			run := fmt.Sprintf("%s/%d@%d", rs[i].SourceTopic, rs[i].SourcePartition, rs[i].SourceOffset)
			if j-i > 1 {
				run += fmt.Sprintf("-%d", rs[j-1].SourceOffset)
			}
			runs = append(runs, run)
			i = j
		}
		return fmt.Sprintf("%d rows %s", len(rs), strings.Join(runs, " "))
	case []ledger.RejectRow:
		if len(rs) == 0 {
			return "no rejects"
		}
		rs = slices.Clone(rs)
		slices.SortFunc(rs, func(a, b ledger.RejectRow) int {
			return comparePositions(a.SourceTopic, a.SourcePartition, a.SourceOffset, b.SourceTopic, b.SourcePartition, b.SourceOffset)
		})
		var each []string
		for _, r := range rs {
			each = append(each, fmt.Sprintf("%s/%d@%d %s", r.SourceTopic, r.SourcePartition, r.SourceOffset, r.Reason))
		}
		return fmt.Sprintf("%d rejects %s", len(rs), strings.Join(each, ", "))
	}
	return fmt.Sprintf("%T", rows)
}

// comparePositions orders source positions: topic, partition, offset.
func comparePositions(at string, ap int32, ao int64, bt string, bp int32, bo int64) int {
	return cmp.Or(strings.Compare(at, bt), cmp.Compare(ap, bp), cmp.Compare(ao, bo))
}
