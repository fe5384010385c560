package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// scopedIndex is a partition-scoped transaction id index over the fake ledger: it knows
// the ids of the partitions it covers only, each up to its own watermark, as
// dedup.Scoped does. An engine that classified a record of a partition it did not cover
// would miss its duplicates.
type scopedIndex struct {
	ledger *fakeTable[ledger.Row]
	head   int64
	parts  map[engine.Partition]int64 // covered partition -> watermark
	owners map[string]engine.Owner
	covers int // Cover calls that back-filled a partition
}

var _ engine.ScopedIndex = (*scopedIndex)(nil)

// load reads p's rows of the ledger up to snapshot upTo.
func (x *scopedIndex) load(p engine.Partition, upTo int64) {
	if x.owners == nil {
		x.owners = map[string]engine.Owner{}
	}
	for _, r := range x.ledger.rows(upTo) {
		if r.SourceTopic == p.Topic && r.SourcePartition == p.Partition {
			x.put(r)
		}
	}
	x.parts[p] = upTo
}

func (x *scopedIndex) put(r ledger.Row) {
	if _, ok := x.owners[r.TransactionID]; ok {
		return
	}
	x.owners[r.TransactionID] = engine.Owner{Partition: engine.Partition{Topic: r.SourceTopic, Partition: r.SourcePartition},
		Offset: r.SourceOffset, Hash: r.TransactionHash}
}

func (x *scopedIndex) Sync(_ context.Context, st engine.TableState) error {
	for p := range x.parts {
		x.load(p, st.SnapshotID)
	}
	x.head = st.SnapshotID
	return nil
}

func (x *scopedIndex) Cover(_ context.Context, p engine.Partition) error {
	if _, ok := x.parts[p]; !ok {
		x.covers++
		x.load(p, x.head)
	}
	return nil
}

func (x *scopedIndex) Keep(owned []engine.Partition) error {
	for p := range x.parts {
		if !slices.Contains(owned, p) {
			delete(x.parts, p)
			// Forget its ids too: a stale entry would hide a missing back-fill.
			for id, o := range x.owners {
				if o.Partition == p {
					delete(x.owners, id)
				}
			}
		}
	}
	return nil
}

func (x *scopedIndex) Lookup(id string) (engine.Owner, bool, error) {
	o, ok := x.owners[id]
	return o, ok, nil
}

func (x *scopedIndex) Add(rows []ledger.Row, st engine.TableState) error {
	for _, r := range rows {
		if _, ok := x.parts[engine.Partition{Topic: r.SourceTopic, Partition: r.SourcePartition}]; ok {
			x.put(r)
		}
	}
	for p := range x.parts {
		x.parts[p] = st.SnapshotID
	}
	x.head = st.SnapshotID
	return nil
}

// putKeyed appends a record keyed by key (a producer keying by the transaction id gives
// the id).
func (w *world) putKeyed(p engine.Partition, key string, value []byte, fate ledger.Reason) {
	w.put(p, value, fate)
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	recs := w.log.parts[p]
	recs[len(recs)-1].Key = []byte(key)
}

func id(n int) string { return fmt.Sprintf("TXN%08d", n) }

// In partition scope a worker that gains a partition another worker wrote meanwhile
// back-fills it before classifying its records: a duplicate re-sent on the same key after
// the rebalance is refused, whatever the order of the group's callbacks.
func TestScenarioPartitionScopeRebalance(t *testing.T) {
	for _, c := range []struct {
		name string
		// keepFirst drops p0 from B's scope right after it is assigned (Keep running on
		// a stale view of the assignment): the first lookup must cover it again.
		keepFirst bool
	}{{"assigned", false}, {"dropped by a stale keep", true}} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.scoped = true
			a := w.worker(engine.Config{})
			ax := w.lastScoped
			b := w.worker(engine.Config{})
			bx := w.lastScoped
			a.src.assign(t, p0, p1)
			for n := 1; n <= 4; n++ {
				w.putKeyed(p0, id(n), txn(n, n), "")
			}
			w.putKeyed(p1, id(5), txn(5, 5), "")
			a.step()
			// p0 moves to b; a keeps p1 and b has never seen p0.
			a.src.lose(p0)
			b.src.assign(t, p0)
			if c.keepFirst {
				b.src.lose(p0)
				b.step() // nothing assigned: Keep drops p0 from the scope
				b.src.assign(t, p0)
			}
			w.putKeyed(p0, id(2), txn(2, 2), ledger.ReasonDuplicate)            // a producer retry
			w.putKeyed(p0, id(3), txn(3, 4), ledger.ReasonConflictingDuplicate) // same id, other content
			w.putKeyed(p0, id(6), txn(6, 6), "")
			w.putKeyed(p1, id(5), txn(5, 5), ledger.ReasonDuplicate)
			b.step()
			a.step()
			w.reconcile()
			if by := b.eng.Stats().RejectedBy(); by[ledger.ReasonDuplicate] != 1 || by[ledger.ReasonConflictingDuplicate] != 1 {
				t.Fatalf("b rejected %v", by)
			}
			if x := a.eng.Stats().RejectedBy(); x[ledger.ReasonDuplicate] != 1 {
				t.Fatalf("a rejected %v", x)
			}
			// Each worker holds only the ids of the partitions it owns.
			if _, ok := ax.owners[id(6)]; ok {
				t.Error("a's index holds an id of p0, which it lost")
			}
			if _, ok := bx.owners[id(5)]; ok {
				t.Error("b's index holds an id of p1, which it never owned")
			}
		})
	}
}

// In partition scope a record whose Kafka key is not its transaction id stops the worker
// before anything of its batch is committed.
func TestScenarioPartitionScopeRefusesAnotherKey(t *testing.T) {
	for _, key := range []string{"", "customer-42", id(99)} {
		t.Run(fmt.Sprintf("key %q", key), func(t *testing.T) {
			w := newWorld(t)
			w.scoped = true
			k := w.worker(engine.Config{})
			k.src.assign(t, p0)
			w.putKeyed(p0, id(1), txn(1, 1), "")
			w.putKeyed(p0, key, txn(2, 2), "")
			_, err := k.eng.Step(context.Background(), k.feed)
			if !errors.Is(err, engine.ErrKeyNotID) {
				t.Fatalf("step: %v, want ErrKeyNotID", err)
			}
			if rows := w.ledger.rows(0); len(rows) != 0 {
				t.Fatalf("%d rows committed by a batch with a record keyed otherwise", len(rows))
			}
		})
	}
}
