package ledger

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecode checks that Decode never panics and that every row it accepts obeys every rule.
// encoding/json serves as an independent oracle: what it calls invalid must be rejected, and
// for what Decode accepts it must read the very same field values. The hostile seed corpus is
// in testdata/fuzz/FuzzDecode; plain `go test` runs it.
func FuzzDecode(f *testing.F) {
	f.Add(seedMessage)
	f.Add(with())
	rules := Rules{MaxMessageBytes: 1 << 16, TransactionTypes: DefaultTransactionTypes()}
	f.Fuzz(func(t *testing.T, data []byte) {
		row, rej := rules.Decode(data)
		// Not UTF-8 anywhere: that reject, whatever else is wrong after the size check (the
		// scan checks UTF-8 in strings only, and asks for the whole message on its errors).
		if !utf8.Valid(data) && len(data) <= rules.MaxMessageBytes {
			if want := notUTF8(data); rej == nil || *rej != *want {
				t.Fatalf("%q: reject %+v, want %+v", data, rej, want)
			}
		}
		if rej != nil {
			if rej.Reason == "" || rej.Message == "" {
				t.Fatalf("reject without reason or message: %+v", rej)
			}
			if row != (Row{}) {
				t.Fatalf("reject %v with a non-zero row %+v", rej, row)
			}
			if rej.TransactionID != "" && !utf8.ValidString(rej.TransactionID) {
				t.Fatalf("reject carries an invalid transaction id %q", rej.TransactionID)
			}
			if !json.Valid(data) && rej.Reason != ReasonMalformedJSON && rej.Reason != ReasonTooLarge && rej.Reason != ReasonTombstone {
				t.Fatalf("invalid JSON rejected as %s: %s", rej.Reason, rej.Message)
			}
			return
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		checkRow(t, &rules, row)

		// The oracle reads the same values.
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, data)
		}
		str := func(k string) string {
			s, ok := m[k].(string)
			if !ok {
				t.Fatalf("accepted %q, which encoding/json reads as %T", k, m[k])
			}
			return s
		}
		if str("transaction_id") != row.TransactionID || str("account_from") != row.AccountFrom ||
			str("account_to") != row.AccountTo || str("currency") != row.Currency || str("transaction_type") != row.TransactionType {
			t.Fatalf("row %+v differs from encoding/json's reading %v", row, m)
		}
		amount := str("amount")
		if v, err := ParseAmount(amount); err != nil || v != row.Amount {
			t.Fatalf("amount %q: row has %d, ParseAmount says %d, %v", amount, row.Amount, v, err)
		}
		if ts, err := ParseTimestamp(str("timestamp")); err != nil || !ts.Equal(row.EventTime) {
			t.Fatalf("timestamp %q: row has %v, ParseTimestamp says %v, %v", str("timestamp"), row.EventTime, ts, err)
		}
		if h := Hash(row.TransactionID, row.AccountFrom, row.AccountTo, amount, row.Currency); h != row.TransactionHash {
			t.Fatalf("hash %s does not recompute (%s)", row.TransactionHash, h)
		}

		// Re-encoding the row as JSON (by encoding/json, with the original amount string) and
		// decoding it again gives the same row.
		again, err := json.Marshal(map[string]string{
			"transaction_id":   row.TransactionID,
			"account_from":     row.AccountFrom,
			"account_to":       row.AccountTo,
			"amount":           amount,
			"currency":         row.Currency,
			"transaction_type": row.TransactionType,
			"timestamp":        row.EventTime.Format(time.RFC3339Nano),
		})
		if err != nil {
			t.Fatal(err)
		}
		row2, rej := rules.Decode(again)
		if rej != nil {
			t.Fatalf("re-encoded row %s rejected: %v", again, rej)
		}
		if row2 != row {
			t.Fatalf("re-encoded row decodes differently:\n%+v\n%+v", row, row2)
		}
	})
}

// checkRow asserts the rules of docs/design.md §3 on an accepted row.
func checkRow(t *testing.T, rules *Rules, row Row) {
	t.Helper()
	for _, id := range []string{row.TransactionID, row.AccountFrom, row.AccountTo} {
		if id == "" || len(id) > MaxIdentifierBytes || !utf8.ValidString(id) {
			t.Fatalf("bad identifier %q in accepted row", id)
		}
		for _, r := range id {
			if r < 0x20 || r >= 0x7f && r <= 0x9f {
				t.Fatalf("control character %U in identifier %q", r, id)
			}
		}
	}
	if row.Amount <= 0 || row.Amount > MaxAmount {
		t.Fatalf("amount %d out of range", row.Amount)
	}
	if !isCurrency([]byte(row.Currency)) {
		t.Fatalf("currency %q", row.Currency)
	}
	if !slices.Contains(rules.TransactionTypes, row.TransactionType) {
		t.Fatalf("transaction type %q", row.TransactionType)
	}
	if row.EventTime.Location() != time.UTC || row.EventTime.Nanosecond()%1000 != 0 ||
		row.EventTime.Year() < 1 || row.EventTime.Year() > 9999 {
		t.Fatalf("event time %v", row.EventTime)
	}
	if len(row.TransactionHash) != 64 {
		t.Fatalf("hash %q", row.TransactionHash)
	}
	for _, c := range row.TransactionHash {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			t.Fatalf("hash %q is not lower-case hex", row.TransactionHash)
		}
	}
	if row.SourceTopic != "" || row.SourcePartition != 0 || row.SourceOffset != 0 {
		t.Fatalf("Decode set source fields: %+v", row)
	}
}
