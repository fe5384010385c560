package engine

import (
	"hash/maphash"
	"math/bits"
)

// acceptedIDs are the transaction ids a batch has accepted so far, with their owners
// (dedup). Nearly every id a batch meets is new, and a miss in a map of 100,000 ids costs
// a cache miss or two: 5% of the pipeline's CPU (issue 16). A small filter in front of the
// map (3 bits of one 64-bit word per id, about 16 bits per id: it stays in the core's
// cache) answers most misses without the map. It has no false negatives: an id it says is
// absent was never added; a false positive only costs the map lookup it saves otherwise.
type acceptedIDs struct {
	owners map[string]Owner
	words  []uint64
	shift  uint // a hash's top bits pick its word
	seed   maphash.Seed
}

// newAcceptedIDs returns an empty set sized for about capacity ids (more only raise the
// filter's false positives).
func newAcceptedIDs(capacity int) *acceptedIDs {
	n := max(capacity/4, 64) // words: about 16 bits per id
	logN := bits.Len(uint(n - 1))
	return &acceptedIDs{owners: map[string]Owner{}, words: make([]uint64, 1<<logN), shift: uint(64 - logN), seed: maphash.MakeSeed()}
}

// lookup returns id's owner if the batch accepted id, and id's hash for add.
func (a *acceptedIDs) lookup(id string) (Owner, bool, uint64) {
	h := maphash.String(a.seed, id)
	m := idMask(h)
	if a.words[h>>a.shift]&m != m {
		return Owner{}, false, h
	}
	o, ok := a.owners[id]
	return o, ok, h
}

// add records that the batch accepted id (whose hash lookup returned) for owner o.
func (a *acceptedIDs) add(id string, h uint64, o Owner) {
	a.owners[id] = o
	a.words[h>>a.shift] |= idMask(h)
}

// reset empties the set, keeping its memory.
func (a *acceptedIDs) reset() {
	clear(a.owners) // keeps its buckets: growing a map of 100,000 ids afresh costs
	clear(a.words)
}

// idMask is the 3 bits of a word that stand for hash h (from its low bits; the top bits
// chose the word).
func idMask(h uint64) uint64 {
	return 1<<(h&63) | 1<<(h>>6&63) | 1<<(h>>12&63)
}
