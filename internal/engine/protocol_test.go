package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

var (
	tp0 = Partition{"tx", 0}
	tp1 = Partition{"tx", 1}
	tp2 = Partition{"tx", 2}
)

func TestNewestOfPipeline(t *testing.T) {
	// History of branch main, by id: parent and pipeline ("" is another writer's commit).
	// 1 <- 2(p) <- 3 <- 4(q) <- 5 ; 7's parent 6 was expired ; 8 <- 9 loops back to 8.
	links := map[int64]SnapshotLink{
		1: {Parent: 0}, 2: {Parent: 1, Pipeline: "p"}, 3: {Parent: 2}, 4: {Parent: 3, Pipeline: "q"},
		5: {Parent: 4}, 7: {Parent: 6, Pipeline: "q"}, 8: {Parent: 9}, 9: {Parent: 8},
	}
	lookup := func(id int64) (SnapshotLink, bool) { l, ok := links[id]; return l, ok }
	for _, tc := range []struct {
		name     string
		head     int64
		pipeline string
		want     int64
		err      error
	}{
		{"empty table", 0, "p", 0, nil},
		{"head is the pipeline's", 2, "p", 2, nil},
		{"foreign commits and other pipelines skipped", 5, "p", 2, nil},
		{"another pipeline", 5, "q", 4, nil},
		{"never committed, whole history", 5, "r", 0, nil},
		{"never committed, history cut", 7, "p", 0, ErrHistoryTruncated},
		{"head itself missing", 6, "p", 0, ErrHistoryTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewestOfPipeline(tc.head, tc.pipeline, lookup)
			if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("NewestOfPipeline(%d, %q) = %d, %v; want %d, %v", tc.head, tc.pipeline, got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := NewestOfPipeline(8, "p", lookup); err == nil || errors.Is(err, ErrHistoryTruncated) {
		t.Fatalf("a cycle: %v, want a cycle error", err)
	}
}

func TestRejectsCompleteAndResume(t *testing.T) {
	for _, tc := range []struct {
		name           string
		pr             Progress
		rejects        int64 // RejectsFrom; -1: none
		resume         int64 // ResumeAt; -1: none
		rejectsOnlyMap int64 // RejectsComplete; -1: none
	}{
		{"nothing anywhere", Progress{HasRejects: true}, -1, -1, -1},
		{"both tables agree", Progress{Ledger: Offsets{tp0: 10}, Rejects: Offsets{tp0: 10}, HasRejects: true}, 10, 10, 10},
		{"clean batches moved the ledger's Clean past the last reject",
			Progress{Ledger: Offsets{tp0: 50}, Clean: Offsets{tp0: 50}, Rejects: Offsets{tp0: 3}, HasRejects: true}, 50, 50, 50},
		{"the rejects commit of the last batch is missing (crash between the commits)",
			Progress{Ledger: Offsets{tp0: 9}, Clean: Offsets{tp0: 4}, Rejects: Offsets{tp0: 2}, HasRejects: true}, 4, 4, 4},
		{"first batch crashed before its rejects commit: Clean holds its first offset",
			Progress{Ledger: Offsets{tp0: 9}, Clean: Offsets{tp0: 7}, HasRejects: true}, 7, 7, 7},
		{"a ledger from before the Clean map: the ledger's offset",
			Progress{Ledger: Offsets{tp0: 9}, HasRejects: true}, 9, 9, -1},
		{"no rejects table: the ledger alone",
			Progress{Ledger: Offsets{tp0: 9}, Rejects: Offsets{tp0: 3}}, 9, 9, 3},
		{"rejects table ahead of the ledger: resume at the smaller",
			Progress{Ledger: Offsets{tp0: 5}, Rejects: Offsets{tp0: 8}, HasRejects: true}, 8, 5, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := func(v int64, ok bool) int64 {
				if !ok {
					return -1
				}
				return v
			}
			if got := opt(tc.pr.RejectsFrom(tp0)); got != tc.rejects {
				t.Errorf("RejectsFrom = %d, want %d", got, tc.rejects)
			}
			if got := opt(ResumeAt(tp0, tc.pr)); got != tc.resume {
				t.Errorf("ResumeAt = %d, want %d", got, tc.resume)
			}
			if got := opt(RejectsComplete(tp0, tc.pr.Rejects, tc.pr.Clean)); got != tc.rejectsOnlyMap {
				t.Errorf("RejectsComplete = %d, want %d", got, tc.rejectsOnlyMap)
			}
		})
	}
}

func TestStartOffsets(t *testing.T) {
	pr := Progress{Ledger: Offsets{tp0: 42, tp1: 7}, Clean: Offsets{tp1: 5}, HasRejects: true}
	for _, starting := range []int64{OffsetEarliest, OffsetLatest} {
		// tp2 is new to a topic the tables read: from offset 0 when reading from the
		// earliest (a deleted start is then a gap, not a skip), from its earliest offset
		// when the pipeline started at the latest. A topic the tables never read starts at
		// the setting.
		other := Partition{Topic: "other", Partition: 0}
		got := StartOffsets([]Partition{tp0, tp1, tp2, other}, pr, starting)
		want := Offsets{tp0: 42, tp1: 5, tp2: 0, other: starting}
		if starting == OffsetLatest {
			want[tp2] = OffsetEarliest
		}
		if MarshalOffsets(got) != MarshalOffsets(want) {
			t.Fatalf("StartOffsets(%d) = %s, want %s", starting, MarshalOffsets(got), MarshalOffsets(want))
		}
	}
}

func TestCleanAfter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current Offsets
		read    CleanRead
		want    Offsets
	}{
		{"no reject: complete to the end", Offsets{tp0: 10, tp2: 4},
			CleanRead{First: 10, End: 20, RejectsKnown: true}, Offsets{tp0: 20, tp2: 4}},
		{"no reject, no table has seen it: to the end", Offsets{tp2: 4},
			CleanRead{First: 0, End: 5}, Offsets{tp0: 5, tp2: 4}},
		{"a reject: stays until the rejects table has it", Offsets{tp0: 10, tp2: 4},
			CleanRead{First: 10, End: 20, Rejects: true, RejectsKnown: true}, Offsets{tp0: 10, tp2: 4}},
		{"a reject, known from the rejects table only: not added", Offsets{tp2: 4},
			CleanRead{First: 10, End: 20, Rejects: true, RejectsKnown: true}, Offsets{tp2: 4}},
		{"a reject, no table has seen it: the first offset read", Offsets{tp2: 4},
			CleanRead{First: 3, End: 9, Rejects: true}, Offsets{tp0: 3, tp2: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := MarshalOffsets(tc.current)
			got := CleanAfter(tc.current, map[Partition]CleanRead{tp0: tc.read})
			if MarshalOffsets(got) != MarshalOffsets(tc.want) {
				t.Fatalf("CleanAfter = %s, want %s", MarshalOffsets(got), MarshalOffsets(tc.want))
			}
			if MarshalOffsets(tc.current) != before {
				t.Fatal("CleanAfter changed its input")
			}
		})
	}
}

func TestClaimOf(t *testing.T) {
	read := map[Partition]Span{
		tp0: {From: 10, HasFrom: true, To: 20}, // new records: claimed
		tp1: {From: 10, HasFrom: true, To: 10}, // read only below the table's offset: a replay
		tp2: {To: 3},                           // no table has seen it: claimed from nowhere
	}
	got := ClaimOf(read)
	want := Claim{tp0: read[tp0], tp2: read[tp2]}
	if len(got) != len(want) || got[tp0] != want[tp0] || got[tp2] != want[tp2] {
		t.Fatalf("ClaimOf = %v, want %v", got, want)
	}
}

func TestSettle(t *testing.T) {
	claim := Claim{tp0: {From: 10, HasFrom: true, To: 20}, tp1: {To: 5}} // p1: first batch ever
	for _, tc := range []struct {
		name          string
		current       Offsets
		mayHaveLanded bool
		want          Outcome
		moved         []Partition
	}{
		{"table where the batch began", Offsets{tp0: 10}, false, Retry, nil},
		{"where it began after an unknown outcome: it did not land", Offsets{tp0: 10}, true, Retry, nil},
		{"other partitions moved only", Offsets{tp0: 10, tp2: 99}, false, Retry, nil},
		{"an attempt of unknown outcome landed", Offsets{tp0: 20, tp1: 5}, true, Landed, nil},
		{"our ends, but no attempt may have landed: someone else did the work", Offsets{tp0: 20, tp1: 5}, false, Fenced, []Partition{tp0, tp1}},
		{"someone else went further", Offsets{tp0: 25}, false, Fenced, []Partition{tp0}},
		{"someone else went further after our landing", Offsets{tp0: 25, tp1: 5}, true, Fenced, []Partition{tp0, tp1}},
		{"someone else started p1", Offsets{tp0: 10, tp1: 3}, false, Fenced, []Partition{tp1}},
		{"half landed cannot be ours", Offsets{tp0: 20}, true, Fenced, []Partition{tp0}},
		{"table rolled back", Offsets{tp0: 5}, false, Fenced, []Partition{tp0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, moved := Settle(claim, tc.current, tc.mayHaveLanded)
			if got != tc.want || !slices.Equal(moved, tc.moved) {
				t.Fatalf("Settle = %v %v, want %v %v", got, moved, tc.want, tc.moved)
			}
		})
	}
}

func TestMergeKeepsOtherPartitions(t *testing.T) {
	q0 := Partition{"other", 0}
	cur := Offsets{tp0: 10, tp1: 7, q0: 3}
	got := Merge(cur, Claim{tp0: {From: 10, HasFrom: true, To: 20}, tp2: {To: 4}})
	want := Offsets{tp0: 20, tp1: 7, tp2: 4, q0: 3}
	if MarshalOffsets(got) != MarshalOffsets(want) {
		t.Fatalf("Merge = %s, want %s", MarshalOffsets(got), MarshalOffsets(want))
	}
	if cur[tp0] != 10 || len(cur) != 3 {
		t.Fatal("Merge changed its input")
	}
}

func TestOffsetsJSON(t *testing.T) {
	o := Offsets{{"tx", 10}: 5, {"tx", 2}: 7, {"a\"x", 0}: 0}
	s := MarshalOffsets(o)
	if want := `{"a\"x":{"0":0},"tx":{"2":7,"10":5}}`; s != want {
		t.Fatalf("MarshalOffsets = %s, want %s", s, want)
	}
	back, err := UnmarshalOffsets(s)
	if err != nil || MarshalOffsets(back) != s {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if MarshalOffsets(nil) != "{}" {
		t.Fatalf("empty map encodes as %s", MarshalOffsets(nil))
	}
	for _, bad := range []string{``, `[]`, `{"tx":{"x":1}}`, `{"tx":{"0":-1}}`, `{"tx":{"-1":1}}`, `nope`} {
		if _, err := UnmarshalOffsets(bad); err == nil {
			t.Errorf("UnmarshalOffsets(%s) accepted", bad)
		}
	}
}

func TestCheckPosition(t *testing.T) {
	for _, tc := range []struct {
		name            string
		pos, start, end int64
		onGap           OnGap
		want            Position
		gap             Gap
	}{
		{"within the log", 10, 0, 20, GapFail, ReadOn, Gap{}},
		{"at the log start", 10, 10, 20, GapFail, ReadOn, Gap{}},
		{"at the end", 20, 0, 20, GapFail, ReadOn, Gap{}},
		{"below the log start, fail", 4, 10, 20, GapFail, GapStop, Gap{tp0, 4, 9}},
		{"below the log start, record", 4, 10, 20, GapRecord, GapSkip, Gap{tp0, 4, 9}},
		{"everything deleted", 4, 20, 20, GapRecord, GapSkip, Gap{tp0, 4, 19}},
		{"past the end", 30, 0, 20, GapRecord, Truncated, Gap{}},
		{"past the end of an emptied log", 30, 20, 20, GapFail, Truncated, Gap{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gap := CheckPosition(tp0, tc.pos, tc.start, tc.end, tc.onGap)
			if got != tc.want || gap != tc.gap {
				t.Fatalf("CheckPosition = %v %+v, want %v %+v", got, gap, tc.want, tc.gap)
			}
		})
	}
	if g := (Gap{tp0, 4, 9}); g.Len() != 6 {
		t.Fatalf("Len %d", g.Len())
	}
}

func TestCheckTopic(t *testing.T) {
	now := TopicState{Topic: "tx", ID: "B", Partitions: 2,
		Start: Offsets{tp0: 0, tp1: 0}, End: Offsets{tp0: 100, tp1: 50}}
	for _, tc := range []struct {
		name     string
		recorded string
		offsets  Offsets
		want     string // "" for no error
	}{
		{"same topic", "B", Offsets{tp0: 100, tp1: 10}, ""},
		{"no id recorded yet", "", Offsets{tp0: 10}, ""},
		{"another topic's offsets only", "B", Offsets{{Topic: "other", Partition: 7}: 1000}, ""},
		{"id changed", "A", Offsets{tp0: 10}, "its id is B, and was A"},
		{"fewer partitions", "", Offsets{tp0: 10, tp2: 3}, "it has 2 partitions, and the tables hold offsets of partition 2"},
		{"end below the table's offset", "", Offsets{tp0: 10, tp1: 51}, "partition 1 ends at offset 50, below offset 51"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTopic(tc.recorded, tc.offsets, now)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckTopic: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckTopic = %v, want an error with %q", err, tc.want)
			}
		})
	}
	// Without ids (an old cluster) the id is not compared.
	if err := CheckTopic("A", Offsets{tp0: 10}, TopicState{Topic: "tx", Partitions: 2, End: Offsets{tp0: 10}}); err != nil {
		t.Fatalf("no id now: %v", err)
	}
}

func TestTopicIDsRoundTrip(t *testing.T) {
	ids := map[string]string{"tx": "x1Ks0f4vQ1uJn5Yt2mOnEw", "b": "AAAA"}
	s := MarshalTopicIDs(ids)
	if s != `{"b":"AAAA","tx":"x1Ks0f4vQ1uJn5Yt2mOnEw"}` {
		t.Fatalf("MarshalTopicIDs = %s", s)
	}
	got, err := UnmarshalTopicIDs(s)
	if err != nil || len(got) != 2 || got["tx"] != ids["tx"] {
		t.Fatalf("UnmarshalTopicIDs = %v, %v", got, err)
	}
	if _, err := UnmarshalTopicIDs(`{"tx":`); err == nil {
		t.Fatal("bad JSON accepted")
	}
}
