package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// HashSeparator joins the hashed fields, as concat_ws("|", ...) does in the seed's Spark job.
const HashSeparator = '|'

// Hash returns the transaction hash: the lower-case hex SHA-256 of
// id|from|to|amount|currency, with amount exactly as the message spelled it. It is
// byte-for-byte what Spark's sha2(concat_ws("|", ...), 256) gives for the same strings, so
// ledger rows hash as the seed's job hashed them. (Like concat_ws it does not escape '|'
// inside fields; the fields are what they are.)
func Hash(id, from, to, amount, currency string) string {
	var stack [512]byte
	b := appendHashInput(stack[:0], id, from, to, amount, currency)
	var out [64]byte
	sum := sha256.Sum256(b)
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

func appendHashInput(b []byte, id, from, to, amount, currency string) []byte {
	b = append(b, id...)
	b = append(b, HashSeparator)
	b = append(b, from...)
	b = append(b, HashSeparator)
	b = append(b, to...)
	b = append(b, HashSeparator)
	b = append(b, amount...)
	b = append(b, HashSeparator)
	return append(b, currency...)
}

// NewRejectRow builds the rejects-table row of a refused message. Oversized values are cut to
// MaxRejectValueBytes; ValueSHA256 always covers the whole value.
func NewRejectRow(topic string, partition int32, offset int64, key, value []byte, headers []Header, ts time.Time, rej *Reject) RejectRow {
	r := RejectRow{SourceTopic: topic, SourcePartition: partition, SourceOffset: offset, Key: key,
		ValueSize: int64(len(value)), Headers: headers, KafkaTimestamp: ts.UTC(),
		Reason: rej.Reason, Message: rej.Message, TransactionID: rej.TransactionID}
	if value != nil {
		sum := sha256.Sum256(value)
		r.ValueSHA256 = hex.EncodeToString(sum[:])
		r.Value = value[:min(len(value), MaxRejectValueBytes)]
	}
	return r
}

// NewGapRow returns the rejects row that records offsets first to last (inclusive) of a
// partition as lost before processing: deleted from the topic before the pipeline read
// them. It has no key, value or timestamp, since there is no record left to take them from.
func NewGapRow(topic string, partition int32, first, last int64, message string) RejectRow {
	return RejectRow{SourceTopic: topic, SourcePartition: partition, SourceOffset: first, LastOffset: last,
		Reason: ReasonLostBeforeProcessing, Message: message}
}

// appendHashHex appends the 64 lower-case hex digits of a SHA-256 sum: encoding/hex's
// AppendEncode, two digits a table lookup (every row's hash is made here).
func appendHashHex(dst []byte, sum *[sha256.Size]byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, 2*sha256.Size)...) // no allocation when dst has room
	out := dst[n : n+2*sha256.Size]
	for i, c := range sum {
		out[2*i], out[2*i+1] = hexPair[c][0], hexPair[c][1]
	}
	return dst
}

// hexPair[b] is b's two lower-case hex digits.
var hexPair = func() (t [256][2]byte) {
	const digits = "0123456789abcdef"
	for i := range t {
		t[i] = [2]byte{digits[i>>4], digits[i&15]}
	}
	return t
}()

// DecodeHash decodes a hash in its canonical form, 64 lower-case hex digits (what Hash
// writes), to its 32 bytes. Anything else is reported as not ok rather than normalised.
// The index and the report pack every row's hash with it, hence the table.
func DecodeHash(s string) (k [32]byte, ok bool) {
	if len(s) != 64 {
		return k, false
	}
	var bad byte
	for i := range k {
		hi, lo := hexValue[s[2*i]], hexValue[s[2*i+1]]
		bad |= hi | lo // any 0xff sets the high bit; valid digits never do
		k[i] = hi<<4 | lo
	}
	return k, bad&0x80 == 0
}

// hexValue maps a lower-case hex digit to its value and every other byte to 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
	}
	return t
}()
