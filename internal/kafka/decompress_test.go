package kafka

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lz4Frame compresses data as franz-go's producer does: one lz4 frame.
func lz4Frame(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecompressor decompresses lz4 batches with the kept scratch, one after the other (the
// scratch is reused; each output is its own copy), bounds their size, and hands the other
// codecs to franz-go's.
func TestDecompressor(t *testing.T) {
	d := newDecompressor()
	var outs [][]byte
	var wants [][]byte
	for i := range 5 {
		want := bytes.Repeat([]byte(fmt.Sprintf(`{"transaction_id":"TXN%08d"}`, i)), 1000*(i+1))
		out, err := d.Decompress(lz4Frame(t, want), kgo.CodecLz4)
		if err != nil {
			t.Fatal(err)
		}
		outs, wants = append(outs, out), append(wants, want)
	}
	for i := range outs {
		if !bytes.Equal(outs[i], wants[i]) {
			t.Fatalf("batch %d: %d bytes out, want %d: a later batch overwrote it, or it decompressed wrong", i, len(outs[i]), len(wants[i]))
		}
	}
	if _, err := d.Decompress([]byte("not lz4 at all"), kgo.CodecLz4); err == nil {
		t.Fatal("garbage decompressed without an error")
	}

	small := &decompressor{other: kgo.DefaultDecompressor(), max: 1000}
	if _, err := small.Decompress(lz4Frame(t, make([]byte, 1001)), kgo.CodecLz4); !errors.Is(err, kgo.ErrMaxDecompress) {
		t.Fatalf("lz4 batch over the bound: %v, want ErrMaxDecompress", err)
	}
	if out, err := small.Decompress(lz4Frame(t, make([]byte, 1000)), kgo.CodecLz4); err != nil || len(out) != 1000 {
		t.Fatalf("lz4 batch at the bound: %d bytes, %v", len(out), err)
	}

	raw := []byte("uncompressed")
	if out, err := d.Decompress(raw, kgo.CodecNone); err != nil || !bytes.Equal(out, raw) {
		t.Fatalf("no codec: %q %v", out, err)
	}
}

// TestRecordSlices checks the pool franz-go decodes fetched records into: a slice put back
// is cleared (it must not keep a fetched batch alive) and handed out again for a batch it
// can hold.
func TestRecordSlices(t *testing.T) {
	p := &recordSlices{}
	s := p.GetRecords(10)
	if len(s) != 0 || cap(s) < 10 {
		t.Fatalf("got len %d cap %d, want an empty slice with room for 10", len(s), cap(s))
	}
	s = s[:10]
	for i := range s {
		s[i] = kgo.Record{Value: []byte("value"), Offset: int64(i)}
	}
	p.PutRecords(s)
	again := p.GetRecords(8)
	if cap(again) != cap(s) || &again[:1][0] != &s[0] {
		t.Fatal("the slice put back was not handed out again")
	}
	for i, r := range again[:cap(again)] {
		if r.Value != nil || r.Offset != 0 {
			t.Fatalf("record %d of a slice put back still holds %q at %d", i, r.Value, r.Offset)
		}
	}
	if big := p.GetRecords(100); cap(big) < 100 {
		t.Fatalf("room for %d records, want 100", cap(big))
	}
	for range keptRecordSlices + 5 {
		p.PutRecords(make([]kgo.Record, 1))
	}
	if len(p.free) != keptRecordSlices {
		t.Fatalf("%d slices kept, want at most %d", len(p.free), keptRecordSlices)
	}
}
