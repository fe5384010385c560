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
