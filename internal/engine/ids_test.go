package engine

import (
	"fmt"
	"testing"
)

// TestAcceptedIDs fills the set past the size it was made for and checks that it answers
// as a map does: every id added is found with its owner (the filter has no false negatives),
// no other id is, and reset empties it.
func TestAcceptedIDs(t *testing.T) {
	a := newAcceptedIDs(1000)
	const n = 5000 // five times its size: the filter only answers "maybe" more often
	owner := func(i int) Owner {
		return Owner{Partition: Partition{Topic: "t", Partition: int32(i % 3)}, Offset: int64(i), Hash: fmt.Sprint("h", i)}
	}
	for i := range n {
		id := fmt.Sprintf("TXN%08d", i)
		if _, ok, _ := a.lookup(id); ok {
			t.Fatalf("%s found before it was added", id)
		}
		_, _, h := a.lookup(id)
		a.add(id, h, owner(i))
	}
	for i := range n {
		id := fmt.Sprintf("TXN%08d", i)
		if o, ok, _ := a.lookup(id); !ok || o != owner(i) {
			t.Fatalf("%s: %+v %v, want %+v", id, o, ok, owner(i))
		}
	}
	for i := n; i < 2*n; i++ {
		if o, ok, _ := a.lookup(fmt.Sprintf("TXN%08d", i)); ok {
			t.Fatalf("TXN%08d was never added, found %+v", i, o)
		}
	}
	a.reset()
	for i := range n {
		if _, ok, _ := a.lookup(fmt.Sprintf("TXN%08d", i)); ok {
			t.Fatalf("TXN%08d found after reset", i)
		}
	}
	for _, w := range a.words {
		if w != 0 {
			t.Fatal("reset left bits of the filter set")
		}
	}
}
