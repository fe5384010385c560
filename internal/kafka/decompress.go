package kafka

import (
	"bytes"
	"io"
	"slices"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxDecompressedBatch bounds what one fetched batch may decompress to: franz-go's own
// default (MaxDecompressBatchBytes), which a custom decompressor must apply itself.
const maxDecompressedBatch = 1 << 30

// decompressor is franz-go's decompressor with the lz4 scratch kept for good. franz-go
// streams an lz4 batch into a bytes.Buffer from a sync.Pool, which every garbage
// collection empties, so that under the soft memory limit the buffer grew again from
// nothing after each collection (175 MB allocated per million records of the bench's
// lz4 topic, issue 16). The output is a copy of exactly the batch's bytes, as franz-go's:
// the records point into it. Every other codec is franz-go's.
type decompressor struct {
	other kgo.Decompressor
	max   int // maxDecompressedBatch (tests lower it)

	mu   sync.Mutex
	free []*lz4Scratch
}

// lz4Scratch is what decompressing one lz4 batch needs besides its output.
type lz4Scratch struct {
	r   *lz4.Reader
	src bytes.Reader
	lim io.LimitedReader
	out bytes.Buffer
}

// keptLZ4Scratch bounds the scratch kept (batches are decompressed by one goroutine per
// broker), and keptLZ4Buffer the buffer a kept one may hold.
const (
	keptLZ4Scratch = 8
	keptLZ4Buffer  = 16 << 20
)

func newDecompressor() *decompressor {
	return &decompressor{other: kgo.DefaultDecompressor(), max: maxDecompressedBatch}
}

var _ kgo.Decompressor = (*decompressor)(nil)

// Decompress decompresses one fetched batch.
func (d *decompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	if codec != kgo.CodecLz4 {
		out, err := d.other.Decompress(src, codec)
		if err == nil && len(out) > d.max {
			return nil, kgo.ErrMaxDecompress
		}
		return out, err
	}
	s := d.get()
	defer d.put(s)
	s.src.Reset(src)
	s.r.Reset(&s.src)
	s.lim = io.LimitedReader{R: s.r, N: int64(d.max) + 1}
	s.out.Reset()
	n, err := s.out.ReadFrom(&s.lim)
	if err != nil {
		return nil, err
	}
	if n > int64(d.max) {
		return nil, kgo.ErrMaxDecompress
	}
	return slices.Clone(s.out.Bytes()), nil
}

func (d *decompressor) get() *lz4Scratch {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.free); n > 0 {
		s := d.free[n-1]
		d.free[n-1], d.free = nil, d.free[:n-1]
		return s
	}
	return &lz4Scratch{r: lz4.NewReader(nil)}
}

func (d *decompressor) put(s *lz4Scratch) {
	s.src.Reset(nil)
	s.r.Reset(nil) // returns its block buffer to lz4's pool
	if s.out.Cap() > keptLZ4Buffer {
		s.out = bytes.Buffer{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.free) < keptLZ4Scratch {
		d.free = append(d.free, s)
	}
}
