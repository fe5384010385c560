package dedup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
)

// A run is an immutable file of (id, owner) entries sorted by id, with no id twice; the
// index is a set of runs (see store). The file is blocks of entries (each entry a uvarint
// key length, the key, a uvarint value length, the value; a block ends once it passes
// runBlockSize), then the block index (for each block its first key, offset, length and
// CRC-32C), the last key, and a fixed footer. Open reads only the block index, which is kept
// in memory (about one key per 4 KiB of entries): a lookup reads one block.
const (
	runMagic     = "LSRUN001"
	runEndMagic  = "LSRUNEND"
	runBlockSize = 4096
	runFooterLen = 8 + 8 + 8 + 4 + len(runEndMagic) // index offset, index length, entries, index CRC, magic
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorruptRun reports a run file that is not what its writer wrote.
var errCorruptRun = errors.New("corrupt run file")

// run is an open run file.
type run struct {
	seq     uint64 // file number, from the store's sequence
	path    string
	f       *os.File
	entries int64
	size    int64
	blocks  []blockRef
	last    string // the largest key
}

type blockRef struct {
	first string // the block's first key
	off   int64
	len   int32
	crc   uint32
}

// tier is the run's size class for merging: runs of one tier are merged together once
// there are mergeFanIn of them, so that an entry is rewritten about once per tier.
func (r *run) tier() int { return tierOf(r.entries) }

func tierOf(entries int64) int {
	t := 0
	for n := entries; n >= mergeFanIn; n /= mergeFanIn {
		t++
	}
	return t
}

// runWriter writes a run file from entries given in key order.
type runWriter struct {
	f       *os.File
	w       *bufio.Writer
	off     int64
	block   []byte
	first   []byte
	last    []byte
	blocks  []blockRef
	entries int64
}

func createRun(path string) (*runWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	w := &runWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), block: make([]byte, 0, 2*runBlockSize)}
	if _, err := w.w.WriteString(runMagic); err != nil {
		f.Close()
		return nil, err
	}
	w.off = int64(len(runMagic))
	return w, nil
}

// add appends an entry; keys must come in strictly increasing order.
func (w *runWriter) add(key, val []byte) error {
	if w.entries > 0 && bytes.Compare(key, w.last) <= 0 {
		return fmt.Errorf("run writer: key %q after %q", key, w.last)
	}
	if len(w.block) == 0 {
		w.first = append(w.first[:0], key...)
	}
	w.block = binary.AppendUvarint(w.block, uint64(len(key)))
	w.block = append(w.block, key...)
	w.block = binary.AppendUvarint(w.block, uint64(len(val)))
	w.block = append(w.block, val...)
	w.last = append(w.last[:0], key...)
	w.entries++
	if len(w.block) >= runBlockSize {
		return w.flushBlock()
	}
	return nil
}

func (w *runWriter) flushBlock() error {
	if len(w.block) == 0 {
		return nil
	}
	if _, err := w.w.Write(w.block); err != nil {
		return err
	}
	w.blocks = append(w.blocks, blockRef{first: string(w.first), off: w.off, len: int32(len(w.block)), crc: crc32.Checksum(w.block, crcTable)})
	w.off += int64(len(w.block))
	w.block = w.block[:0]
	return nil
}

// finish writes the block index and the footer, syncs the file and returns it opened for
// reading as a run.
func (w *runWriter) finish(seq uint64, path string) (*run, error) {
	r, err := w.finishErr(seq, path)
	if err != nil {
		w.f.Close()
		os.Remove(path)
		return nil, err
	}
	return r, nil
}

func (w *runWriter) finishErr(seq uint64, path string) (*run, error) {
	if err := w.flushBlock(); err != nil {
		return nil, err
	}
	var idx []byte
	idx = binary.AppendUvarint(idx, uint64(len(w.blocks)))
	for _, b := range w.blocks {
		idx = binary.AppendUvarint(idx, uint64(len(b.first)))
		idx = append(idx, b.first...)
		idx = binary.AppendUvarint(idx, uint64(b.off))
		idx = binary.AppendUvarint(idx, uint64(b.len))
		idx = binary.LittleEndian.AppendUint32(idx, b.crc)
	}
	idx = binary.AppendUvarint(idx, uint64(len(w.last)))
	idx = append(idx, w.last...)
	foot := binary.LittleEndian.AppendUint64(nil, uint64(w.off))
	foot = binary.LittleEndian.AppendUint64(foot, uint64(len(idx)))
	foot = binary.LittleEndian.AppendUint64(foot, uint64(w.entries))
	foot = binary.LittleEndian.AppendUint32(foot, crc32.Checksum(idx, crcTable))
	foot = append(foot, runEndMagic...)
	if _, err := w.w.Write(idx); err != nil {
		return nil, err
	}
	if _, err := w.w.Write(foot); err != nil {
		return nil, err
	}
	if err := w.w.Flush(); err != nil {
		return nil, err
	}
	if err := w.f.Sync(); err != nil {
		return nil, err
	}
	if err := w.f.Close(); err != nil {
		return nil, err
	}
	return openRun(seq, path)
}

// abort removes a run being written.
func (w *runWriter) abort(path string) {
	w.f.Close()
	os.Remove(path)
}

// openRun opens a run file and reads its block index.
func openRun(seq uint64, path string) (*run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := readRunIndex(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.seq, r.path, r.f = seq, path, f
	return r, nil
}

func readRunIndex(f *os.File) (*run, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := info.Size()
	if size < int64(len(runMagic)+runFooterLen) {
		return nil, fmt.Errorf("%w: %d bytes", errCorruptRun, size)
	}
	foot := make([]byte, runFooterLen)
	if _, err := f.ReadAt(foot, size-int64(runFooterLen)); err != nil {
		return nil, err
	}
	if string(foot[28:]) != runEndMagic {
		return nil, fmt.Errorf("%w: no footer", errCorruptRun)
	}
	idxOff, idxLen := int64(binary.LittleEndian.Uint64(foot)), int64(binary.LittleEndian.Uint64(foot[8:]))
	entries := int64(binary.LittleEndian.Uint64(foot[16:]))
	if idxOff < int64(len(runMagic)) || idxLen < 0 || idxOff+idxLen != size-int64(runFooterLen) {
		return nil, fmt.Errorf("%w: bad footer", errCorruptRun)
	}
	idx := make([]byte, idxLen)
	if _, err := f.ReadAt(idx, idxOff); err != nil {
		return nil, err
	}
	if crc32.Checksum(idx, crcTable) != binary.LittleEndian.Uint32(foot[24:]) {
		return nil, fmt.Errorf("%w: block index checksum mismatch", errCorruptRun)
	}
	r := &run{entries: entries, size: size}
	p := idx
	bad := fmt.Errorf("%w: bad block index", errCorruptRun)
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	bytesOf := func() (string, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(p)) {
			return "", false
		}
		s := string(p[:n])
		p = p[n:]
		return s, true
	}
	nb, ok := uv()
	if !ok || nb > uint64(len(idx)) {
		return nil, bad
	}
	r.blocks = make([]blockRef, nb)
	for i := range r.blocks {
		first, ok1 := bytesOf()
		off, ok2 := uv()
		ln, ok3 := uv()
		if !ok1 || !ok2 || !ok3 || len(p) < 4 || int64(off)+int64(ln) > idxOff || ln > 1<<30 {
			return nil, bad
		}
		r.blocks[i] = blockRef{first: first, off: int64(off), len: int32(ln), crc: binary.LittleEndian.Uint32(p)}
		p = p[4:]
	}
	if r.last, ok = bytesOf(); !ok || len(p) != 0 {
		return nil, bad
	}
	return r, nil
}

// readBlock reads block i into buf (grown as needed) and checks its CRC.
func (r *run) readBlock(i int, buf []byte) ([]byte, error) {
	b := r.blocks[i]
	if cap(buf) < int(b.len) {
		buf = make([]byte, b.len)
	}
	buf = buf[:b.len]
	if _, err := r.f.ReadAt(buf, b.off); err != nil {
		return buf, fmt.Errorf("%s: read block at %d: %w", r.path, b.off, err)
	}
	if crc32.Checksum(buf, crcTable) != b.crc {
		return buf, fmt.Errorf("%s: block at %d: %w: checksum mismatch", r.path, b.off, errCorruptRun)
	}
	return buf, nil
}

// get returns the value of key, if the run holds it; val aliases buf.
func (r *run) get(key []byte, buf []byte) (val []byte, found bool, _ []byte, _ error) {
	if len(r.blocks) == 0 || string(key) < r.blocks[0].first || string(key) > r.last {
		return nil, false, buf, nil
	}
	// The last block whose first key is <= key.
	i := sort.Search(len(r.blocks), func(i int) bool { return r.blocks[i].first > string(key) }) - 1
	buf, err := r.readBlock(i, buf)
	if err != nil {
		return nil, false, buf, err
	}
	for p := buf; len(p) > 0; {
		k, v, rest, err := nextEntry(p)
		if err != nil {
			return nil, false, buf, fmt.Errorf("%s: %w", r.path, err)
		}
		switch c := bytes.Compare(k, key); {
		case c == 0:
			return v, true, buf, nil
		case c > 0:
			return nil, false, buf, nil
		}
		p = rest
	}
	return nil, false, buf, nil
}

// nextEntry decodes the entry at the start of p.
func nextEntry(p []byte) (key, val, rest []byte, err error) {
	kl, n := binary.Uvarint(p)
	if n <= 0 || kl > uint64(len(p)-n) {
		return nil, nil, nil, fmt.Errorf("%w: bad entry", errCorruptRun)
	}
	key, p = p[n:n+int(kl)], p[n+int(kl):]
	vl, n := binary.Uvarint(p)
	if n <= 0 || vl > uint64(len(p)-n) {
		return nil, nil, nil, fmt.Errorf("%w: bad entry", errCorruptRun)
	}
	return key, p[n : n+int(vl)], p[n+int(vl):], nil
}

// runIter reads a run's entries in order through a file of its own (so that a merge can
// read a run the store closes meanwhile).
type runIter struct {
	r      *run
	f      *os.File
	block  int
	buf, p []byte
	key    []byte
	val    []byte
	err    error
}

func (r *run) iter() (*runIter, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	return &runIter{r: r, f: f}, nil
}

// next moves to the next entry; false at the end or on an error (see err).
func (it *runIter) next() bool {
	for len(it.p) == 0 {
		if it.err != nil || it.block >= len(it.r.blocks) {
			return false
		}
		b := it.r.blocks[it.block]
		if cap(it.buf) < int(b.len) {
			it.buf = make([]byte, b.len)
		}
		it.buf = it.buf[:b.len]
		if _, err := it.f.ReadAt(it.buf, b.off); err != nil && !errors.Is(err, io.EOF) {
			it.err = fmt.Errorf("%s: %w", it.r.path, err)
			return false
		}
		if crc32.Checksum(it.buf, crcTable) != b.crc {
			it.err = fmt.Errorf("%s: block at %d: %w: checksum mismatch", it.r.path, b.off, errCorruptRun)
			return false
		}
		it.p = it.buf
		it.block++
	}
	var err error
	it.key, it.val, it.p, err = nextEntry(it.p)
	if err != nil {
		it.err = fmt.Errorf("%s: %w", it.r.path, err)
		return false
	}
	return true
}

func (it *runIter) close() { it.f.Close() }
