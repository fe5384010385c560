package audit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
)

var t0 = time.Date(2026, 11, 27, 17, 0, 0, 0, time.UTC)

func p(part int32) engine.Partition { return engine.Partition{Topic: "tx", Partition: part} }

// testHistory is, newest first: a compaction (5), batch 3 (4), a foreign append (3),
// batch 2 (2), batch 1 (1), one second apart.
func testHistory() []iceberg.SnapshotInfo {
	snap := func(id int64, sec int, pipeline string, batch int64, op string, added, deleted string, offs engine.Offsets) iceberg.SnapshotInfo {
		s := iceberg.SnapshotInfo{SnapshotID: id, ParentID: id - 1, Time: t0.Add(time.Duration(sec) * time.Second),
			Operation: op, Pipeline: pipeline, Batch: batch, Offsets: offs,
			Summary: map[string]string{"added-records": added, "deleted-records": deleted, "added-data-files": "1"}}
		return s
	}
	h := []iceberg.SnapshotInfo{
		snap(5, 5, "", 0, "replace", "30", "30", nil),
		snap(4, 4, "pipe", 3, "append", "7", "", engine.Offsets{p(0): 10, p(1): 12}),
		snap(3, 3, "", 0, "append", "4", "", nil),
		snap(2, 2, "pipe", 2, "append", "9", "", engine.Offsets{p(0): 10, p(1): 5}),
		snap(1, 1, "pipe", 1, "append", "10", "", engine.Offsets{p(0): 6}),
	}
	h[4].ParentID = 0
	return h
}

func TestParseAsOf(t *testing.T) {
	for in, want := range map[string]AsOf{
		"":                               {},
		"12345":                          {SnapshotID: 12345},
		"2026-11-27T17:00:00Z":           {Time: t0},
		"2026-11-27T18:00:00+01:00":      {Time: t0},
		"2026-11-27T17:00:00.250000Z":    {Time: t0.Add(250 * time.Millisecond)},
		"  2026-11-27T17:00:00Z \t":      {Time: t0},
		"-4141961045736842492":           {SnapshotID: -4141961045736842492},
		"2026-11-27T17:00:00.000000001Z": {Time: t0.Add(time.Nanosecond)},
	} {
		got, err := ParseAsOf(in)
		if err != nil || got != want {
			t.Errorf("ParseAsOf(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "yesterday", "2026-11-27", "2026-11-27 17:00:00"} {
		if _, err := ParseAsOf(bad); err == nil {
			t.Errorf("ParseAsOf(%q) accepted", bad)
		}
	}
}

func TestResolve(t *testing.T) {
	h := testHistory()
	cases := []struct {
		a      AsOf
		idx    int
		moment time.Time
	}{
		{AsOf{Time: t0.Add(1 * time.Second)}, 4, t0.Add(time.Second)},
		{AsOf{Time: t0.Add(1500 * time.Millisecond)}, 4, t0.Add(1500 * time.Millisecond)},
		{AsOf{Time: t0.Add(2*time.Second + 999*time.Microsecond)}, 3, t0.Add(2*time.Second + 999*time.Microsecond)},
		{AsOf{Time: t0.Add(time.Hour)}, 0, t0.Add(time.Hour)},
		// A snapshot id stands for the time it was the head: until its successor.
		{AsOf{SnapshotID: 2}, 3, t0.Add(3*time.Second - time.Millisecond)},
		{AsOf{SnapshotID: 5}, 0, time.Time{}},
	}
	for _, c := range cases {
		idx, moment, err := resolve("ns.t", h, c.a)
		if err != nil || idx != c.idx || !moment.Equal(c.moment) {
			t.Errorf("resolve(%v) = %d, %v, %v; want %d, %v", c.a, idx, moment, err, c.idx, c.moment)
		}
	}

	_, _, err := resolve("ns.t", h, AsOf{Time: t0.Add(999 * time.Millisecond)})
	var he *HistoryError
	if !errors.As(err, &he) || !errors.Is(err, ErrNotInHistory) || he.Expired ||
		!strings.Contains(err.Error(), "the oldest moment available is 2026-11-27T17:00:01Z, the table's first snapshot (1)") {
		t.Errorf("before the first snapshot: %v", err)
	}
	// Expired: the oldest kept snapshot has a parent.
	expired := h[:3]
	_, _, err = resolve("ns.t", expired, AsOf{Time: t0.Add(2 * time.Second)})
	if !errors.As(err, &he) || !he.Expired || !strings.Contains(err.Error(),
		"ns.t has no snapshot at or before 2026-11-27T17:00:02Z: the oldest moment still available is 2026-11-27T17:00:03Z (snapshot 3); older snapshots were expired by maintenance") {
		t.Errorf("expired moment: %v", err)
	}
	_, _, err = resolve("ns.t", expired, AsOf{SnapshotID: 1})
	if err == nil || !strings.Contains(err.Error(), "has no snapshot 1 in its history") || !strings.Contains(err.Error(), "oldest moment still available") {
		t.Errorf("expired snapshot id: %v", err)
	}
}

func TestBuildHistory(t *testing.T) {
	h := testHistory()
	rejects := []iceberg.SnapshotInfo{
		{SnapshotID: 102, Time: t0.Add(4*time.Second + 10*time.Millisecond), Pipeline: "pipe", Summary: map[string]string{"added-records": "2"}},
		{SnapshotID: 101, Time: t0.Add(1*time.Second + 10*time.Millisecond), Pipeline: "pipe", Summary: map[string]string{"added-records": "3"}},
		{SnapshotID: 100, Time: t0.Add(1 * time.Second), Pipeline: "", Summary: map[string]string{"added-records": "50"}}, // foreign
	}
	got := buildHistory(h, rejects)
	if len(got) != 5 {
		t.Fatalf("%d entries, want 5: %+v", len(got), got)
	}
	want := []struct {
		id               int64
		kind             string
		batch, rows, rej int64
		moves            string
	}{
		{5, KindMaintenance, 0, 0, 0, ""},
		{4, KindPipeline, 3, 7, 2, "tx/1 5→12"},
		{3, KindForeign, 0, 4, 0, ""},
		{2, KindPipeline, 2, 9, 0, "tx/0 6→10 tx/1 new→5"},
		{1, KindPipeline, 1, 10, 3, "tx/0 new→6"},
	}
	for i, w := range want {
		e := got[i]
		var moves []string
		for _, m := range e.Offsets {
			moves = append(moves, m.String())
		}
		if e.SnapshotID != w.id || e.Kind != w.kind || e.Batch != w.batch || e.RowsAdded != w.rows || e.RejectsAdded != w.rej ||
			strings.Join(moves, " ") != w.moves {
			t.Errorf("entry %d: %+v (moves %q); want %+v", i, e, moves, w)
		}
	}
	// With batch 1 expired, batch 2's predecessor is unknown.
	got = buildHistory(h[:4], nil)
	if m := got[3].Offsets; len(m) != 2 || !m[0].FromUnknown || m[0].String() != "tx/0 ?→10" {
		t.Errorf("moves after expiry: %+v", m)
	}
}

func TestLocate(t *testing.T) {
	h := testHistory()
	for _, c := range []struct {
		pos        Position
		idx        int
		atOrBefore bool
		ok         bool
	}{
		{Position{"tx", 0, 0}, 4, false, true},
		{Position{"tx", 0, 5}, 4, false, true},
		{Position{"tx", 0, 6}, 3, false, true},
		{Position{"tx", 1, 4}, 3, false, true},
		{Position{"tx", 1, 5}, 1, false, true},
		{Position{"tx", 1, 12}, 0, false, false}, // not committed yet
		{Position{"other", 0, 0}, 0, false, false},
	} {
		idx, atOrBefore, ok := locate(h, c.pos)
		if ok != c.ok || ok && (idx != c.idx || atOrBefore != c.atOrBefore) {
			t.Errorf("locate(%v) = %d, %v, %v; want %d, %v, %v", c.pos, idx, atOrBefore, ok, c.idx, c.atOrBefore, c.ok)
		}
	}
	// Batch 1 expired: a record below batch 2's offsets came at batch 2 or before.
	if idx, atOrBefore, ok := locate(h[:4], Position{"tx", 0, 1}); !ok || idx != 3 || !atOrBefore {
		t.Errorf("locate after expiry = %d, %v, %v; want 3, true, true", idx, atOrBefore, ok)
	}
}

func TestParsePosition(t *testing.T) {
	if p, err := ParsePosition("financial_transactions/2/42"); err != nil || p != (Position{"financial_transactions", 2, 42}) {
		t.Errorf("ParsePosition = %v, %v", p, err)
	}
	for _, bad := range []string{"", "t/1", "t/x/1", "/1/2", "t/1/-2", "t/1/2/3"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) accepted", bad)
		}
	}
}
