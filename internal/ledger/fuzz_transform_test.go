package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzTransform covers what FuzzDecode does not: the whole transform of a Kafka record, key,
// value (or none: a tombstone), a header and a size limit, into a ledger row or a rejects-table
// row. Every record must become exactly one of them; a reject keeps the record recoverable
// (key and headers as they were, the value or, past MaxRejectValueBytes, its first part with
// the size and SHA-256 of the whole), its string columns are valid UTF-8 (Parquet strings,
// JSON output), and accepting or refusing does not depend on the key or headers.
func FuzzTransform(f *testing.F) {
	f.Add([]byte("TXN00000042"), seedMessage, false, "trace", []byte{0xff, 0}, 1<<20)
	f.Add([]byte(nil), []byte(nil), true, "", []byte(nil), 1<<20)
	f.Add([]byte{0xc3, 0x28}, []byte("{\"transaction_id\": \"\xc3\x28\"}"), false, "\xff\xfe", []byte("v"), 100)
	f.Add([]byte("k"), bytes.Repeat([]byte("x"), MaxRejectValueBytes+5), false, "h", []byte{}, 1<<20)
	f.Add([]byte("k"), seedMessage, false, "h", []byte("v"), 10)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool, hkey string, hval []byte, limit int) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{} // an empty value is not a tombstone
		}
		rules := Rules{MaxMessageBytes: limit, TransactionTypes: DefaultTransactionTypes()}
		headers := []Header{{Key: hkey, Value: hval}}
		ts := time.Unix(1700000000, 123456789)
		row, rej := rules.Decode(value)
		if rej == nil {
			if value == nil {
				t.Fatal("a tombstone was accepted")
			}
			checkRow(t, &rules, row)
			return
		}
		if value == nil && rej.Reason != ReasonTombstone {
			t.Fatalf("tombstone rejected as %s", rej.Reason)
		}
		if max := rules.MaxMessageBytes; max > 0 && len(value) > max && rej.Reason != ReasonTooLarge {
			t.Fatalf("%d bytes over a %d limit rejected as %s", len(value), max, rej.Reason)
		}
		r := NewRejectRow("t", 3, 77, key, value, headers, ts, rej)
		if r.SourceTopic != "t" || r.SourcePartition != 3 || r.SourceOffset != 77 || !r.KafkaTimestamp.Equal(ts) || r.KafkaTimestamp.Location() != time.UTC {
			t.Fatalf("position or time lost: %+v", r)
		}
		if !bytes.Equal(r.Key, key) || (r.Key == nil) != (key == nil) {
			t.Fatalf("key %q kept as %q", key, r.Key)
		}
		if !slices.EqualFunc(r.Headers, headers, func(a, b Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
			t.Fatalf("headers %v kept as %v", headers, r.Headers)
		}
		if r.ValueSize != int64(len(value)) || (r.Value == nil) != (value == nil) ||
			len(r.Value) > MaxRejectValueBytes || !bytes.HasPrefix(value, r.Value) ||
			len(r.Value) != min(len(value), MaxRejectValueBytes) {
			t.Fatalf("value of %d bytes kept as %d bytes (size %d)", len(value), len(r.Value), r.ValueSize)
		}
		if value == nil {
			if r.ValueSHA256 != "" {
				t.Fatalf("tombstone has a SHA-256 %s", r.ValueSHA256)
			}
		} else if sum := sha256.Sum256(value); r.ValueSHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("SHA-256 %s, want that of the whole value", r.ValueSHA256)
		}
		for name, s := range map[string]string{"reason": string(r.Reason), "message": r.Message, "transaction_id": r.TransactionID} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s %q is not valid UTF-8", name, s)
			}
		}
		if r.Reason == "" || r.Message == "" {
			t.Fatalf("reject without reason or message: %+v", rej)
		}
		// Refusing looks at the value alone: the same value with another key is refused alike.
		if _, rej2 := rules.Decode(bytes.Clone(value)); rej2 == nil || *rej2 != *rej {
			t.Fatalf("decoding the same value again gave %v, then %v", rej, rej2)
		}
	})
}
