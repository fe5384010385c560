package iceberg

import (
	"io"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// arrow-go compresses each Parquet page with a zstd encoder taken from a sync.Pool, which
// every garbage collection empties: under the soft memory limit the collector runs several
// times a second, and each new encoder allocated and cleared its history and tables again
// (240 MB allocated per million rows, issue 16). keptZstd keeps a few encoders per level
// for good. Its output is the same: the same options as arrow-go's (zero frames, one
// goroutine, entropy coding of every literal), and EncodeAll carries nothing from one call
// to the next. Everything else (decoding, streams) is arrow-go's codec. Registered once,
// at init, as arrow-go's RegisterCodec documents.
func init() {
	orig, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		panic("iceberg: arrow-go has no zstd codec: " + err.Error())
	}
	compress.RegisterCodec(compress.Codecs.Zstd, &keptZstd{Codec: orig, free: map[zstd.EncoderLevel]chan *zstd.Encoder{}})
}

// keptZstd is arrow-go's zstd codec with encoders kept across garbage collections.
type keptZstd struct {
	compress.Codec // decoding and CompressBound: arrow-go's

	mu   sync.Mutex
	free map[zstd.EncoderLevel]chan *zstd.Encoder
}

var (
	_ compress.ErrorCodec     = (*keptZstd)(nil)
	_ compress.StreamingCodec = (*keptZstd)(nil)
)

// Encode compresses src at zstd's default level, as arrow-go's codec does.
func (z *keptZstd) Encode(dst, src []byte) []byte {
	return z.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

// EncodeLevel compresses src at level (arrow-go's mapping of levels) with a kept encoder.
func (z *keptZstd) EncodeLevel(dst, src []byte, level int) []byte {
	lvl := zstd.EncoderLevelFromZstd(level)
	if level == compress.DefaultCompressionLevel {
		lvl = zstd.SpeedDefault
	}
	free := z.pool(lvl)
	var enc *zstd.Encoder
	select {
	case enc = <-free:
	default:
		// The options are arrow-go's (parquet/compress/zstd.go); they cannot fail.
		enc, _ = zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(lvl),
			zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true))
	}
	out := enc.EncodeAll(src, dst[:0])
	select {
	case free <- enc:
	default: // enough kept: this one goes to the collector
	}
	return out
}

// pool is the free list of level's encoders: one per core and a few more, since pages are
// written by the stager's parts and the file writers side by side.
func (z *keptZstd) pool(lvl zstd.EncoderLevel) chan *zstd.Encoder {
	z.mu.Lock()
	defer z.mu.Unlock()
	free, ok := z.free[lvl]
	if !ok {
		free = make(chan *zstd.Encoder, 2*runtime.GOMAXPROCS(0)+2)
		z.free[lvl] = free
	}
	return free
}

// DecodeWithError is arrow-go's.
func (z *keptZstd) DecodeWithError(dst, src []byte) ([]byte, error) {
	return compress.Decode(z.Codec, dst, src)
}

// NewReader is arrow-go's.
func (z *keptZstd) NewReader(r io.Reader) io.ReadCloser {
	return z.Codec.(compress.StreamingCodec).NewReader(r)
}

// NewWriter is arrow-go's.
func (z *keptZstd) NewWriter(w io.Writer) io.WriteCloser {
	return z.Codec.(compress.StreamingCodec).NewWriter(w)
}

// NewWriterLevel is arrow-go's.
func (z *keptZstd) NewWriterLevel(w io.Writer, level int) (io.WriteCloser, error) {
	return z.Codec.(compress.StreamingCodec).NewWriterLevel(w, level)
}
