package engine

import (
	"slices"
	"testing"
)

func TestSettle(t *testing.T) {
	p0 := Partition{"tx", 0}
	p1 := Partition{"tx", 1}
	claim := Claim{p0: {From: 10, HasFrom: true, To: 20}, p1: {To: 5}} // p1: first batch ever
	for _, tc := range []struct {
		name    string
		current Offsets
		want    Outcome
		moved   []Partition
	}{
		{"table where the batch began", Offsets{p0: 10}, Retry, nil},
		{"other partitions moved only", Offsets{p0: 10, {"tx", 2}: 99}, Retry, nil},
		{"batch already landed", Offsets{p0: 20, p1: 5}, Landed, nil},
		{"someone else went further", Offsets{p0: 25}, Fenced, []Partition{p0}},
		{"someone else started p1", Offsets{p0: 10, p1: 3}, Fenced, []Partition{p1}},
		{"half landed cannot be ours", Offsets{p0: 20}, Fenced, []Partition{p0}},
		{"table rolled back", Offsets{p0: 5}, Fenced, []Partition{p0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, moved := Settle(claim, tc.current)
			if got != tc.want || !slices.Equal(moved, tc.moved) {
				t.Fatalf("Settle = %v %v, want %v %v", got, moved, tc.want, tc.moved)
			}
		})
	}
}

func TestMergeKeepsOtherPartitions(t *testing.T) {
	p0, p1, q0 := Partition{"tx", 0}, Partition{"tx", 1}, Partition{"other", 0}
	cur := Offsets{p0: 10, p1: 7, q0: 3}
	got := Merge(cur, Claim{p0: {From: 10, HasFrom: true, To: 20}})
	want := Offsets{p0: 20, p1: 7, q0: 3}
	if MarshalOffsets(got) != MarshalOffsets(want) {
		t.Fatalf("Merge = %s, want %s", MarshalOffsets(got), MarshalOffsets(want))
	}
	if cur[p0] != 10 {
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

func TestStartOffsets(t *testing.T) {
	p0, p1 := Partition{"tx", 0}, Partition{"tx", 1}
	got := StartOffsets([]Partition{p0, p1}, Offsets{p0: 42}, OffsetLatest)
	if got[p0] != 42 || got[p1] != OffsetLatest {
		t.Fatalf("StartOffsets = %v", got)
	}
}
