package iceberg

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// TestKeptZstd: the registered zstd codec is ours, writes the very bytes arrow-go's own
// encoder options write (so files are the same), round-trips, and is safe side by side.
func TestKeptZstd(t *testing.T) {
	codec, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := codec.(*keptZstd); !ok {
		t.Fatalf("the registered zstd codec is %T, want *keptZstd", codec)
	}
	var page bytes.Buffer
	for i := range 20_000 {
		fmt.Fprintf(&page, "TXN%08d|ACC%04d|%x", i, i%9000, i*7919)
	}
	src := page.Bytes()
	for _, level := range []int{1, 3, compress.DefaultCompressionLevel} {
		lvl := zstd.EncoderLevelFromZstd(level)
		if level == compress.DefaultCompressionLevel {
			lvl = zstd.SpeedDefault
		}
		ref, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(lvl),
			zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true))
		if err != nil {
			t.Fatal(err)
		}
		want := ref.EncodeAll(src, nil)
		var wg sync.WaitGroup
		for range 8 { // more than the free list keeps, side by side, twice each
			wg.Go(func() {
				for range 2 {
					got := codec.EncodeLevel(nil, src, level)
					if !bytes.Equal(got, want) {
						t.Errorf("level %d: %d bytes, arrow-go's options give %d different ones", level, len(got), len(want))
						return
					}
					back, err := compress.Decode(codec, make([]byte, len(src)), got)
					if err != nil || !bytes.Equal(back, src) {
						t.Errorf("level %d: round trip: %v", level, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}
