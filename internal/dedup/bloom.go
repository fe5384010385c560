package dedup

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
)

// bloom is a blocked Bloom filter: each key sets bloomK bits within one 512-bit block (a
// cache line), so a lookup costs one cache miss whatever k is. At bloomBitsPerKey bits per
// key it answers "maybe" for about 1-2% of absent keys when full; it is sized for twice the
// keys it holds when built, so it usually does better. A clean Close saves it beside the
// index (see save); otherwise Open rebuilds it from the keys on disk.
type bloom struct {
	seed   uint64
	blocks [][8]uint64
	keys   int // keys added
	cap    int // keys it was sized for
}

const (
	bloomBitsPerKey = 10
	bloomK          = 7
	bloomMinKeys    = 1 << 16
)

func newBloom(capacity int) *bloom {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // never fails (crypto/rand panics rather)
	return newBloomSeeded(capacity, binary.LittleEndian.Uint64(seed[:]))
}

// newBloomSeeded is newBloom with the hash's seed given: a filter that hashes as another.
func newBloomSeeded(capacity int, seed uint64) *bloom {
	capacity = max(capacity, bloomMinKeys)
	nblocks := (capacity*bloomBitsPerKey + 511) / 512
	return &bloom{seed: seed, blocks: make([][8]uint64, nblocks), cap: capacity}
}

// full reports whether the filter holds more keys than it was sized for; its false
// positive rate then climbs and it should be rebuilt larger.
func (b *bloom) full() bool { return b.keys > b.cap }

// hash is FNV-1a over the key, seeded and finished with mix. Not maphash: its seed cannot
// be saved, and a saved filter must hash as it did when it was filled.
func (b *bloom) hash(key []byte) uint64 {
	h := 0xcbf29ce484222325 ^ b.seed
	for _, c := range key {
		h = (h ^ uint64(c)) * 0x100000001b3
	}
	return mix(h)
}

func (b *bloom) hashString(key string) uint64 {
	h := 0xcbf29ce484222325 ^ b.seed
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * 0x100000001b3
	}
	return mix(h)
}

// add records a key by its hash.
func (b *bloom) add(h uint64) {
	blk := &b.blocks[b.block(h)]
	m := mix(h)
	for range bloomK {
		bit := m & 511
		blk[bit>>6] |= 1 << (bit & 63)
		m >>= 9
	}
	b.keys++
}

// mayContain reports whether a key with hash h may have been added.
func (b *bloom) mayContain(h uint64) bool {
	blk := &b.blocks[b.block(h)]
	m := mix(h)
	for range bloomK {
		bit := m & 511
		if blk[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		m >>= 9
	}
	return true
}

// block maps h to a block with a multiply-shift (Lemire's reduction: the high bits of h
// decide).
func (b *bloom) block(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(b.blocks)))
	return int(hi)
}

// mix is SplitMix64's finaliser: the bit positions within a block come from it, seven
// 9-bit slices, so that they do not depend on the bits that chose the block.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// bytes is the filter's memory.
func (b *bloom) bytes() int { return len(b.blocks) * 64 }

// The saved filter: a header (magic, the index's id count and synced snapshot it matches,
// seed, keys, capacity, block count), the blocks, and a CRC-32C of everything before it.
const bloomMagic = "LSBLOOM1"

// save writes the filter to path atomically (a temporary file renamed over it), stamped
// with the index state it matches.
func (b *bloom) save(path string, count, synced int64) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	hdr := []byte(bloomMagic)
	for _, v := range []uint64{uint64(count), uint64(synced), b.seed, uint64(b.keys), uint64(b.cap), uint64(len(b.blocks))} {
		hdr = binary.LittleEndian.AppendUint64(hdr, v)
	}
	w.Write(hdr)
	var blk [64]byte
	for i := range b.blocks {
		for j, v := range b.blocks[i] {
			binary.LittleEndian.PutUint64(blk[8*j:], v)
		}
		w.Write(blk[:])
	}
	err = w.Flush()
	if err == nil {
		_, err = f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// errStaleBloom reports a saved filter that does not match the index.
var errStaleBloom = errors.New("saved Bloom filter does not match the index")

// loadBloom reads a filter save wrote, if it matches an index of count ids synced to synced.
func loadBloom(path string, count, synced int64) (*bloom, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	const hdrLen = len(bloomMagic) + 6*8
	if len(data) < hdrLen+4 || string(data[:len(bloomMagic)]) != bloomMagic {
		return nil, fmt.Errorf("%w: not a filter file", errStaleBloom)
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errStaleBloom)
	}
	var h [6]uint64
	for i := range h {
		h[i] = binary.LittleEndian.Uint64(data[len(bloomMagic)+8*i:])
	}
	if int64(h[0]) != count || int64(h[1]) != synced || uint64(len(body)-hdrLen) != h[5]*64 || h[5] == 0 {
		return nil, errStaleBloom
	}
	b := &bloom{seed: h[2], keys: int(h[3]), cap: int(h[4]), blocks: make([][8]uint64, h[5])}
	p := body[hdrLen:]
	for i := range b.blocks {
		for j := range b.blocks[i] {
			b.blocks[i][j] = binary.LittleEndian.Uint64(p[64*i+8*j:])
		}
	}
	return b, nil
}
