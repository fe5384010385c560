package ledger

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// baseFields is the seed message, as ordered key / raw JSON token pairs.
var baseFields = [][2]string{
	{"transaction_id", `"TXN00000042"`},
	{"account_from", `"ACC4242"`},
	{"account_to", `"ACC2424"`},
	{"amount", `"9999.99"`},
	{"currency", `"GBP"`},
	{"transaction_type", `"payment"`},
	{"timestamp", `"2025-01-16T10:00:00.123456"`},
}

// with returns the seed message with field key's raw token replaced by raw (appended if the
// seed has no such key), or left out if raw is "".
func with(kv ...string) []byte {
	fields := append([][2]string(nil), baseFields...)
	for i := 0; i < len(kv); i += 2 {
		found := false
		for j := range fields {
			if fields[j][0] == kv[i] {
				fields[j][1] = kv[i+1]
				found = true
			}
		}
		if !found {
			fields = append(fields, [2]string{kv[i], kv[i+1]})
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, f := range fields {
		if f[1] == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func TestDecodeSeedMessage(t *testing.T) {
	rules := DefaultRules()
	row, rej := rules.Decode(seedMessage)
	if rej != nil {
		t.Fatal(rej)
	}
	want := Row{
		TransactionID:   "TXN00000042",
		AccountFrom:     "ACC4242",
		AccountTo:       "ACC2424",
		Amount:          999999,
		Currency:        "GBP",
		TransactionType: "payment",
		// printf 'TXN00000042|ACC4242|ACC2424|9999.99|GBP' | sha256sum
		TransactionHash: "7a5e9ab7d7f23f95effcda41d8b841d2cd8040aef0dc23aac410cd1161453f64",
		EventTime:       time.Date(2025, 1, 16, 10, 0, 0, 123456000, time.UTC),
	}
	if row != want {
		t.Fatalf("got  %+v\nwant %+v", row, want)
	}
	if row.EventTime.Location() != time.UTC {
		t.Errorf("EventTime location %v, want UTC", row.EventTime.Location())
	}
}

func TestHashVectors(t *testing.T) {
	// Each want was computed outside Go, in the shell:
	//   printf '%s' 'id|from|to|amount|currency' | sha256sum
	// which is what Spark's sha2(concat_ws("|", ...), 256) yields for these strings.
	tests := []struct {
		id, from, to, amount, currency, want string
	}{
		{"TXN00000042", "ACC4242", "ACC2424", "9999.99", "GBP", "7a5e9ab7d7f23f95effcda41d8b841d2cd8040aef0dc23aac410cd1161453f64"},
		{"TXN00000000", "ACC1000", "ACC9999", "10.00", "USD", "b4fa5b4d07f4daa71d3101d722b22c483ad750704e2a95f67c7359c6d0061758"},
		// The original amount string is hashed: 10.5 and 10.50 are the same amount, not the same hash.
		{"TXN00000001", "ACC5555", "ACC6666", "10.5", "EUR", "f72a1f584234dbec1105118038b3826d46acf5deb5a525611e7ffff20c311246"},
		{"TXN00000001", "ACC5555", "ACC6666", "10.50", "EUR", "4f6494584a8a3250137ab693956f237a6a5ad4c14db44a8a8dfff9bd0f175124"},
		{"TXN00000002", "ACC1234", "ACC4321", "007.00", "USD", "9e00b5a1fcb4dae2db0af9fb994a83e40184140eb3289700479195c7db4a4ea3"},
		{"TXN00000003", "ACC1234", "ACC4321", "9999999999999999.99", "GBP", "d71baf79549a192ea43464614cef0266e0919542b9cf521a96a084a68f3fa845"},
		// UTF-8 is hashed as bytes (printf 'tx-ü€😀|A|B|1|USD' | sha256sum in a UTF-8 shell).
		{"tx-ü€😀", "A", "B", "1", "USD", "d41c97544177d1031f4a51ec01910812e38c8433e4b8596af5f6f442fa9a6edf"},
		// Like concat_ws, no escaping of '|' inside a field (printf 'TXN|a|b|c|1.00|USD').
		{"TXN", "a|b", "c", "1.00", "USD", "add461bd4e8d0a069d0720c66825d5c24f8e95e27ca4fab86a5bf7249bcb0e8c"},
		{"", "", "", "", "", "45ca31c3315a5978f40438aab46040d75e99c9b125c2fd01db6e10ac80bef906"}, // printf '||||'
	}
	for _, tt := range tests {
		if got := Hash(tt.id, tt.from, tt.to, tt.amount, tt.currency); got != tt.want {
			t.Errorf("Hash(%q, %q, %q, %q, %q) = %s, want %s", tt.id, tt.from, tt.to, tt.amount, tt.currency, got, tt.want)
		}
	}
	// Decode hashes the amount as sent, so "10.5" keeps its own hash.
	rules := DefaultRules()
	row, rej := rules.Decode(with("transaction_id", `"TXN00000001"`, "account_from", `"ACC5555"`, "account_to", `"ACC6666"`, "amount", `"10.5"`, "currency", `"EUR"`))
	if rej != nil {
		t.Fatal(rej)
	}
	if row.TransactionHash != tests[2].want || row.Amount != 1050 {
		t.Errorf("Decode of amount 10.5: hash %s amount %d", row.TransactionHash, row.Amount)
	}
	// A 256-byte identifier still hashes like Hash (the decoder's buffer holds the maximum).
	long := strings.Repeat("é", 128)
	row, rej = rules.Decode(with("transaction_id", `"`+long+`"`, "account_from", `"`+long+`"`, "account_to", `"`+long+`"`, "amount", `"9999999999999999.99"`))
	if rej != nil {
		t.Fatal(rej)
	}
	if want := Hash(long, long, long, "9999999999999999.99", "GBP"); row.TransactionHash != want {
		t.Errorf("long identifiers: hash %s, want %s", row.TransactionHash, want)
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		reason Reason
	}{
		{"10", 1000, ""},
		{"10.5", 1050, ""},
		{"10.50", 1050, ""},
		{"0.01", 1, ""},
		{"0.1", 10, ""},
		{"9999.99", 999999, ""},
		{"10000.00", 1000000, ""},
		{"007.00", 700, ""}, // leading zeros accepted, as Spark's decimal cast accepts them
		{"0000000000000001", 100, ""},
		{"9999999999999999.99", MaxAmount, ""},          // the largest decimal(18,2) with 16 integer digits
		{"9999999999999999", 999999999999999900, ""},    // 16 integer digits
		{"1234567890123456.78", 123456789012345678, ""}, // exact, no float anywhere
		{"10.005", 0, ReasonBadAmount},                  // never rounded to 10.01
		{"10.001", 0, ReasonBadAmount},
		{"10.000", 0, ReasonBadAmount},               // even trailing zeros: three fractional digits is not the format
		{"10000000000000000", 0, ReasonBadAmount},    // 17 integer digits
		{"10000000000000000.00", 0, ReasonBadAmount}, // overflow of decimal(18,2)
		{"00000000000000001.00", 0, ReasonBadAmount}, // 17 digits as written
		{"99999999999999999999999", 0, ReasonBadAmount},
		{"", 0, ReasonBadAmount},
		{".5", 0, ReasonBadAmount},
		{"5.", 0, ReasonBadAmount},
		{".", 0, ReasonBadAmount},
		{"+10.00", 0, ReasonBadAmount},
		{"1e3", 0, ReasonBadAmount},
		{"1E3", 0, ReasonBadAmount},
		{"1.5e2", 0, ReasonBadAmount},
		{" 10.00", 0, ReasonBadAmount},
		{"10.00 ", 0, ReasonBadAmount},
		{"10 .00", 0, ReasonBadAmount},
		{"10,00", 0, ReasonBadAmount},
		{"1_000.00", 0, ReasonBadAmount},
		{"0x10", 0, ReasonBadAmount},
		{"NaN", 0, ReasonBadAmount},
		{"Infinity", 0, ReasonBadAmount},
		{"--5", 0, ReasonBadAmount},
		{"-", 0, ReasonBadAmount},
		{"-.5", 0, ReasonBadAmount},
		{"-10.005", 0, ReasonBadAmount}, // unreadable before negative
		{"١٠", 0, ReasonBadAmount},      // Arabic-Indic digits are not ASCII digits
		{"10.5.5", 0, ReasonBadAmount},
		{"0", 0, ReasonNonPositiveAmount},
		{"0.00", 0, ReasonNonPositiveAmount},
		{"000.0", 0, ReasonNonPositiveAmount},
		{"-0", 0, ReasonNonPositiveAmount},
		{"-0.00", 0, ReasonNonPositiveAmount},
		{"-42.00", 0, ReasonNonPositiveAmount},
		{"-9999999999999999.99", 0, ReasonNonPositiveAmount},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in)
		var reason Reason
		if err != nil {
			var rej *Reject
			if !errors.As(err, &rej) {
				t.Fatalf("ParseAmount(%q): error %T is not a *Reject", tt.in, err)
			}
			reason = rej.Reason
			if !strings.Contains(rej.Message, "amount") {
				t.Errorf("ParseAmount(%q): message %q does not say what is wrong", tt.in, rej.Message)
			}
		}
		if got != tt.want || reason != tt.reason {
			t.Errorf("ParseAmount(%q) = %d, %q; want %d, %q", tt.in, got, reason, tt.want, tt.reason)
		}
		if tt.reason == "" {
			// And through Decode, in a message.
			rules := DefaultRules()
			row, rej := rules.Decode(with("amount", `"`+tt.in+`"`))
			if rej != nil || row.Amount != tt.want {
				t.Errorf("Decode amount %q = %d, %v; want %d", tt.in, row.Amount, rej, tt.want)
			}
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0.00", 1: "0.01", 10: "0.10", 1050: "10.50", 999999: "9999.99", MaxAmount: "9999999999999999.99",
		-1: "-0.01", -1050: "-10.50", -9223372036854775808: "-92233720368547758.08",
	} {
		if got := FormatAmount(in); got != want {
			t.Errorf("FormatAmount(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	ok := []struct {
		in   string
		want time.Time
	}{
		{"2025-01-16T10:00:00.123456", utc(2025, 1, 16, 10, 0, 0, 123456000)}, // Python isoformat: UTC
		{"2025-01-16T10:00:00", utc(2025, 1, 16, 10, 0, 0, 0)},
		{"2025-01-16 10:00:00", utc(2025, 1, 16, 10, 0, 0, 0)},
		{"2025-01-16t10:00:00z", utc(2025, 1, 16, 10, 0, 0, 0)}, // RFC 3339 §5.6 allows lower case
		{"2025-01-16T10:00:00Z", utc(2025, 1, 16, 10, 0, 0, 0)},
		{"2025-01-16T10:00:00.1Z", utc(2025, 1, 16, 10, 0, 0, 100000000)},
		{"2025-01-16T10:00:00.000001Z", utc(2025, 1, 16, 10, 0, 0, 1000)},
		{"2025-01-16T10:00:00.123456000Z", utc(2025, 1, 16, 10, 0, 0, 123456000)}, // nanosecond digits, all zero
		{"2025-01-16T10:00:00.1234560", utc(2025, 1, 16, 10, 0, 0, 123456000)},
		{"2025-01-16T10:00:00+02:00", utc(2025, 1, 16, 8, 0, 0, 0)},
		{"2025-01-16T10:00:00+0530", utc(2025, 1, 16, 4, 30, 0, 0)},
		{"2025-01-16T10:00:00-05", utc(2025, 1, 16, 15, 0, 0, 0)},
		{"2025-01-16T10:00:00-00:00", utc(2025, 1, 16, 10, 0, 0, 0)},
		{"2025-01-16T10:00:00.5+23:59", utc(2025, 1, 15, 10, 1, 0, 500000000)},
		{"2025-01-01T01:00:00+02:00", utc(2024, 12, 31, 23, 0, 0, 0)}, // offset crosses the year
		{"2024-12-31T23:00:00-01:30", utc(2025, 1, 1, 0, 30, 0, 0)},
		{"2024-02-29T12:00:00", utc(2024, 2, 29, 12, 0, 0, 0)}, // leap year
		{"2000-02-29T00:00:00", utc(2000, 2, 29, 0, 0, 0, 0)},  // divisible by 400: leap
		{"1970-01-01T00:00:00Z", time.Unix(0, 0).UTC()},
		{"1969-12-31T23:59:59.999999Z", utc(1969, 12, 31, 23, 59, 59, 999999000)},
		{"0001-01-01T00:00:00Z", utc(1, 1, 1, 0, 0, 0, 0)},
		{"9999-12-31T23:59:59.999999Z", utc(9999, 12, 31, 23, 59, 59, 999999000)},
		{"1600-03-01T00:00:00Z", utc(1600, 3, 1, 0, 0, 0, 0)},
		{"0001-01-01T01:00:00+01:00", utc(1, 1, 1, 0, 0, 0, 0)},
		{"9999-12-31T22:59:59-01:00", utc(9999, 12, 31, 23, 59, 59, 0)},
	}
	for _, tt := range ok {
		got, err := ParseTimestamp(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		// Cross-check with time.Parse where it understands the form.
		if ref, err := time.Parse(time.RFC3339Nano, strings.Replace(strings.ToUpper(tt.in), " ", "T", 1)); err == nil && !ref.Equal(got) {
			t.Errorf("ParseTimestamp(%q) = %v, time.Parse says %v", tt.in, got, ref)
		}
	}
	bad := []string{
		"", "2025-01-16", "2025-01-16T10:00", "2025-01-16T10:00:0", "yesterday",
		"2025-02-30T10:00:00", "2025-02-29T10:00:00", "1900-02-29T10:00:00", // not leap years
		"2025-04-31T10:00:00", "2025-13-01T10:00:00", "2025-00-01T10:00:00", "2025-01-00T10:00:00",
		"2025-01-32T10:00:00", "0000-01-01T00:00:00",
		"2025-01-16T24:00:00", "2025-01-16T23:60:00", "2025-01-16T23:59:60", // no leap seconds
		"2025-01-16T10:00:00.1234567", "2025-01-16T10:00:00.123456001Z", // finer than a microsecond
		"2025-01-16T10:00:00.1234567890", "2025-01-16T10:00:00.", "2025-01-16T10:00:00.Z",
		"2025-01-16T10:00:00,5", // ISO 8601 comma: not accepted
		"2025-01-16T10:00:00+24:00", "2025-01-16T10:00:00+02:60", "2025-01-16T10:00:00+2",
		"2025-01-16T10:00:00+02:0", "2025-01-16T10:00:00+020", "2025-01-16T10:00:00+02:00:00",
		"2025-01-16T10:00:00 +02:00", "2025-01-16T10:00:00ZZ", "2025-01-16T10:00:00UTC",
		"2025-01-16T10:00:00 ", " 2025-01-16T10:00:00", "2025-01-16  10:00:00", "2025-01-16_10:00:00",
		"2025/01/16T10:00:00", "25-01-16T10:00:00", "+2025-01-16T10:00:00", "2025-1-16T10:00:00",
		"２０２５-01-16T10:00:00",
		"0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", // out of range once in UTC "2025-01-16T1O:00:00", "-025-01-16T10:00:00",
	}
	for _, in := range bad {
		got, err := ParseTimestamp(in)
		var rej *Reject
		if !errors.As(err, &rej) || rej.Reason != ReasonBadTimestamp {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want bad_timestamp", in, got, err)
		}
	}
}

// TestDecodeReasons covers every reason code Decode gives.
func TestDecodeReasons(t *testing.T) {
	tests := []struct {
		name   string
		value  []byte
		reason Reason
		msg    string // a substring of the message
		txnID  string // Reject.TransactionID
	}{
		{"tombstone", nil, ReasonTombstone, "tombstone", ""},
		{"too large", append(with("pad", `"`+strings.Repeat("x", 1<<20)+`"`), ' '), ReasonTooLarge, "limit of 1048576", ""},
		{"empty", []byte{}, ReasonMalformedJSON, "empty", ""},
		{"white space", []byte(" \n\t "), ReasonMalformedJSON, "white space", ""},
		{"not json", []byte("hello"), ReasonMalformedJSON, "invalid character", ""},
		{"array", []byte(`[` + string(seedMessage) + `]`), ReasonMalformedJSON, "array", ""},
		{"string", []byte(`"TXN00000042"`), ReasonMalformedJSON, "not an object", ""},
		{"number", []byte(`42`), ReasonMalformedJSON, "not an object", ""},
		{"null", []byte(`null`), ReasonMalformedJSON, "not an object", ""},
		{"truncated", seedMessage[:len(seedMessage)-1], ReasonMalformedJSON, "end of message", "TXN00000042"},
		{"trailing garbage", append(with(), 'x'), ReasonMalformedJSON, "trailing", "TXN00000042"},
		{"two objects", append(with(), with()...), ReasonMalformedJSON, "trailing", "TXN00000042"},
		{"trailing comma", []byte(`{"transaction_id":"T",}`), ReasonMalformedJSON, "object key", "T"},
		{"single quotes", []byte(`{'transaction_id':'T'}`), ReasonMalformedJSON, "invalid character", ""},
		{"not utf-8", with("account_from", "\"ACC\xff\""), ReasonMalformedJSON, "UTF-8", ""},
		{"overlong utf-8", with("account_from", "\"\xc0\xaf\""), ReasonMalformedJSON, "UTF-8", ""},
		{"utf-16 surrogate bytes", with("account_from", "\"\xed\xa0\x80\""), ReasonMalformedJSON, "UTF-8", ""},
		{"lone high surrogate", with("account_to", `"\ud83d"`), ReasonMalformedJSON, "surrogate", "TXN00000042"},
		{"lone low surrogate", with("account_to", `"\ude00x"`), ReasonMalformedJSON, "surrogate", "TXN00000042"},
		{"reversed surrogates", with("account_to", `"\ude00\ud83d"`), ReasonMalformedJSON, "surrogate", "TXN00000042"},
		{"surrogate in unknown field", with("note", `["\ud83d"]`), ReasonMalformedJSON, "surrogate", "TXN00000042"},
		{"bad escape", with("account_to", `"\x41"`), ReasonMalformedJSON, "escape", "TXN00000042"},
		{"short unicode escape", with("account_to", `"\u41"`), ReasonMalformedJSON, "escape", "TXN00000042"},
		{"raw newline in string", with("account_to", "\"A\nB\""), ReasonMalformedJSON, "control character", "TXN00000042"},
		{"duplicate known key", with("currency", `"GBP","currency":"USD"`), ReasonMalformedJSON, `duplicate key "currency"`, "TXN00000042"},
		{"duplicate key via escape", with("currency", `"GBP","curr\u0065ncy":"USD"`), ReasonMalformedJSON, `duplicate key "currency"`, "TXN00000042"},
		{"duplicate unknown key", with("note", `1,"note":2`), ReasonMalformedJSON, `duplicate key "note"`, "TXN00000042"},
		{"bad number in unknown", with("note", `01`), ReasonMalformedJSON, "", "TXN00000042"},
		{"bad literal in unknown", with("note", `nul`), ReasonMalformedJSON, "", "TXN00000042"},
		{"unclosed nested", with("note", `{"a":[1,2}`), ReasonMalformedJSON, "", "TXN00000042"},
		{"too deep", with("note", strings.Repeat("[", 600)+strings.Repeat("]", 600)), ReasonMalformedJSON, "nesting", "TXN00000042"},
		{"missing id", with("transaction_id", ""), ReasonMissingField, `"transaction_id"`, ""},
		{"missing amount", with("amount", ""), ReasonMissingField, `missing required field "amount"`, "TXN00000042"},
		{"missing timestamp", with("timestamp", ""), ReasonMissingField, `"timestamp"`, "TXN00000042"},
		{"null currency", with("currency", "null"), ReasonMissingField, `"currency" is null`, "TXN00000042"},
		{"empty object", []byte(`{}`), ReasonMissingField, `"transaction_id"`, ""},
		{"amount number", with("amount", "9999.99"), ReasonBadField, `"amount" must be a JSON string, got number`, "TXN00000042"},
		{"id number", with("transaction_id", "42"), ReasonBadField, `"transaction_id" must be a JSON string`, ""},
		{"type bool", with("transaction_type", "true"), ReasonBadField, "boolean", "TXN00000042"},
		{"timestamp object", with("timestamp", `{"s":1}`), ReasonBadField, "object", "TXN00000042"},
		{"from array", with("account_from", `["ACC1"]`), ReasonBadField, "array", "TXN00000042"},
		{"empty id", with("transaction_id", `""`), ReasonBadField, "empty", ""},
		{"empty account", with("account_to", `""`), ReasonBadField, `"account_to" is empty`, "TXN00000042"},
		{"id too long", with("transaction_id", `"`+strings.Repeat("x", 257)+`"`), ReasonBadField, "longer than 256", ""},
		{"id too long escaped", with("transaction_id", `"`+strings.Repeat(`\u0078`, 257)+`"`), ReasonBadField, "longer than 256", ""},
		{"id control", with("transaction_id", `"TXN\n1"`), ReasonBadField, "U+000A", ""},
		{"account NUL", with("account_from", `"A\u0000"`), ReasonBadField, "U+0000", "TXN00000042"},
		{"account DEL", with("account_from", "\"A\x7f\""), ReasonBadField, "U+007F", "TXN00000042"},
		{"account C1", with("account_from", "\"A\u0085\""), ReasonBadField, "U+0085", "TXN00000042"},
		{"bad amount", with("amount", `"10.005"`), ReasonBadAmount, "more than 2 fractional digits", "TXN00000042"},
		{"exponent", with("amount", `"1e3"`), ReasonBadAmount, "not a plain decimal", "TXN00000042"},
		{"huge amount", with("amount", `"`+strings.Repeat("9", 1000)+`"`), ReasonBadAmount, "more than 16 integer digits", "TXN00000042"},
		{"negative", with("amount", `"-42.00"`), ReasonNonPositiveAmount, "greater than zero", "TXN00000042"},
		{"zero", with("amount", `"0.00"`), ReasonNonPositiveAmount, "greater than zero", "TXN00000042"},
		{"lower currency", with("currency", `"usd"`), ReasonBadCurrency, `"usd"`, "TXN00000042"},
		{"long currency", with("currency", `"EURO"`), ReasonBadCurrency, "three upper-case letters", "TXN00000042"},
		{"short currency", with("currency", `"EU"`), ReasonBadCurrency, "", "TXN00000042"},
		{"non-ascii currency", with("currency", `"ÉUR"`), ReasonBadCurrency, "", "TXN00000042"},
		{"unknown type", with("transaction_type", `"refund"`), ReasonBadType, `"refund" is not one of`, "TXN00000042"},
		{"type case", with("transaction_type", `"Payment"`), ReasonBadType, "", "TXN00000042"},
		{"type padded", with("transaction_type", `"payment "`), ReasonBadType, "", "TXN00000042"},
		{"bad date", with("timestamp", `"2025-02-30T10:00:00"`), ReasonBadTimestamp, "day out of range", "TXN00000042"},
		{"sub-microsecond", with("timestamp", `"2025-01-16T10:00:00.1234567"`), ReasonBadTimestamp, "microsecond", "TXN00000042"},
		{"epoch number as string", with("timestamp", `"1737021600"`), ReasonBadTimestamp, "", "TXN00000042"},
		// Field order decides which fault is reported: the first in schema order.
		{"first fault wins", with("amount", `"x"`, "currency", "1", "account_to", ""), ReasonMissingField, `"account_to"`, "TXN00000042"},
		{"kind before content", with("amount", `"x"`, "currency", "1"), ReasonBadField, `"currency"`, "TXN00000042"},
	}
	rules := DefaultRules()
	seen := map[Reason]bool{}
	for _, tt := range tests {
		seen[tt.reason] = true
		t.Run(tt.name, func(t *testing.T) {
			row, rej := rules.Decode(tt.value)
			if rej == nil {
				t.Fatalf("accepted %+v, want %s", row, tt.reason)
			}
			if rej.Reason != tt.reason || !strings.Contains(rej.Message, tt.msg) {
				t.Errorf("got %s: %s\nwant %s with %q", rej.Reason, rej.Message, tt.reason, tt.msg)
			}
			if rej.TransactionID != tt.txnID {
				t.Errorf("TransactionID %q, want %q", rej.TransactionID, tt.txnID)
			}
			if row != (Row{}) {
				t.Errorf("rejected with a non-zero row %+v", row)
			}
			if len(rej.Message) > 300 {
				t.Errorf("message of %d bytes: clip hostile input", len(rej.Message))
			}
		})
	}
	for _, r := range []Reason{ReasonMalformedJSON, ReasonMissingField, ReasonBadField, ReasonBadAmount, ReasonNonPositiveAmount,
		ReasonBadCurrency, ReasonBadType, ReasonBadTimestamp, ReasonTooLarge, ReasonTombstone} {
		if !seen[r] {
			t.Errorf("no test for reason %s", r)
		}
	}
}

func TestDecodeAccepts(t *testing.T) {
	rules := DefaultRules()
	tests := []struct {
		name  string
		value []byte
		check func(Row) bool
	}{
		{"compact", with(), nil},
		{"white space everywhere", []byte(" \r\n\t{ \"transaction_id\" :\t\"TXN00000042\" , \"account_from\":\"ACC4242\",\"account_to\":\"ACC2424\",\"amount\":\"9999.99\",\"currency\":\"GBP\",\"transaction_type\":\"payment\",\"timestamp\":\"2025-01-16T10:00:00.123456\" }\n "), nil},
		{"keys in any order", []byte(`{"timestamp":"2025-01-16T10:00:00.123456","currency":"GBP","amount":"9999.99","transaction_type":"payment","account_to":"ACC2424","account_from":"ACC4242","transaction_id":"TXN00000042"}`), nil},
		{"unknown scalar fields", with("note", `"hi"`, "n", "-1.5e+10", "t", "true", "f", "false", "z", "null"), nil},
		{"unknown nested fields", with("meta", `{"amount":"-1","transaction_id":{"x":[1,{"y":null}]},"amount":2,"":[[],{}]}`, "list", `[{"a":"\"}]"},"]",[]]`), nil},
		{"key that only looks known", with("Amount", `"x"`, "amount ", "1", "transaction_id_", "null"), nil},
		{"escaped key", []byte(strings.Replace(string(with()), `"amount"`, `"\u0061mount"`, 1)), nil},
		{"escapes in identifiers", with("transaction_id", `"T\"X\\N\/1 \u00e9\u20ac\ud83d\ude00"`), func(r Row) bool {
			return r.TransactionID == "T\"X\\N/1 é€😀" &&
				r.TransactionHash == Hash("T\"X\\N/1 é€😀", "ACC4242", "ACC2424", "9999.99", "GBP")
		}},
		{"raw UTF-8 identifiers", with("account_from", `"ÄCC-日本-😀"`), func(r Row) bool { return r.AccountFrom == "ÄCC-日本-😀" }},
		{"escaped amount hashes decoded", with("amount", `"\u0031\u0030.50"`), func(r Row) bool {
			return r.Amount == 1050 && r.TransactionHash == Hash("TXN00000042", "ACC4242", "ACC2424", "10.50", "GBP")
		}},
		{"escaped currency, type and timestamp", with("currency", `"\u0055SD"`, "transaction_type", `"dep\u006fsit"`, "timestamp", `"2025-01-16T10:00:00\u002B01:00"`), func(r Row) bool {
			return r.Currency == "USD" && r.TransactionType == "deposit" && r.EventTime.Equal(time.Date(2025, 1, 16, 9, 0, 0, 0, time.UTC))
		}},
		{"256-byte id", with("transaction_id", `"`+strings.Repeat("x", 256)+`"`), func(r Row) bool { return len(r.TransactionID) == 256 }},
		{"256-byte id from escapes", with("transaction_id", `"`+strings.Repeat(`\u00e9`, 128)+`"`), func(r Row) bool { return r.TransactionID == strings.Repeat("é", 128) }},
		{"BOM-free leading space", append([]byte("  "), seedMessage...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, rej := rules.Decode(tt.value)
			if rej != nil {
				t.Fatal(rej)
			}
			if tt.check != nil && !tt.check(row) {
				t.Errorf("unexpected row %+v", row)
			}
		})
	}
}

func TestRules(t *testing.T) {
	var zero Rules // behaves as DefaultRules
	if _, rej := zero.Decode(seedMessage); rej != nil {
		t.Fatal(rej)
	}
	small := Rules{MaxMessageBytes: len(seedMessage)}
	if _, rej := small.Decode(seedMessage); rej != nil {
		t.Fatalf("message of exactly MaxMessageBytes: %v", rej)
	}
	small.MaxMessageBytes--
	if _, rej := small.Decode(seedMessage); rej == nil || rej.Reason != ReasonTooLarge {
		t.Fatalf("message one byte over MaxMessageBytes: %v", rej)
	}
	// Too large is decided before parsing: garbage still says too_large.
	if _, rej := small.Decode(make([]byte, len(seedMessage)+1)); rej == nil || rej.Reason != ReasonTooLarge {
		t.Fatalf("garbage over MaxMessageBytes: %v", rej)
	}
	custom := Rules{TransactionTypes: []string{"refund"}}
	row, rej := custom.Decode(with("transaction_type", `"refund"`))
	if rej != nil || row.TransactionType != "refund" {
		t.Fatalf("custom type: %+v %v", row, rej)
	}
	if _, rej := custom.Decode(seedMessage); rej == nil || rej.Reason != ReasonBadType {
		t.Fatalf("payment with custom types: %v", rej)
	}
}

func TestRejectError(t *testing.T) {
	var err error = &Reject{Reason: ReasonBadAmount, Message: `amount "x" is not a plain decimal`}
	if got := err.Error(); got != `bad_amount: amount "x" is not a plain decimal` {
		t.Errorf("Error() = %q", got)
	}
}

// TestDecodeAllocs pins the cost: one allocation per valid record, shared by the row's strings.
func TestDecodeAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumented build")
	}
	rules := DefaultRules()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, rej := rules.Decode(seedMessage); rej != nil {
			t.Fatal(rej)
		}
	})
	if allocs != 1 {
		t.Errorf("Decode allocates %v times per valid record, want 1", allocs)
	}
}

func TestSpecialBytes(t *testing.T) {
	// The word scan must find the first special byte at every position, whatever follows it.
	for pos := range 8 {
		for _, special := range []byte{'"', '\\', 0x00, 0x01, 0x1f, 0x80, 0xc3, 0xff} {
			for _, filler := range []byte{'a', ' ', 0x20, 0x7f, '!', '#', '[', ']'} {
				var w [8]byte
				for i := range w {
					w[i] = filler
				}
				w[pos] = special
				for after := pos + 1; after < 8; after++ {
					w[after] = byte(after * 37) // anything at all after the hit
				}
				m := specialBytes(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
					uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56)
				if m == 0 || bitsTrailing(m)/8 != pos {
					t.Fatalf("specialBytes(%q) = %x, want first flag at byte %d", w, m, pos)
				}
			}
		}
	}
	// And nothing is flagged in a word of ordinary (ASCII) string bytes.
	for c := 0x20; c < 0x80; c++ {
		if c == '"' || c == '\\' {
			continue
		}
		w := uint64(c) * 0x0101010101010101
		if m := specialBytes(w); m != 0 {
			t.Fatalf("specialBytes flags plain byte %#x", c)
		}
	}
}

// TestControlChar: the word-at-a-time scan finds what a byte-at-a-time one finds, wherever
// the control character lies (in the first word, a later one, or the tail after the words).
func TestControlChar(t *testing.T) {
	slow := func(s []byte) (int, rune) {
		for i, c := range s {
			switch {
			case c < 0x20 || c == 0x7f:
				return i, rune(c)
			case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
				return i, rune(s[i+1])
			}
		}
		return -1, 0
	}
	for n := range 20 {
		base := []byte("ACC0123456789xyzABCDEFG"[:n])
		if at, _ := controlChar(base); at != -1 {
			t.Fatalf("controlChar(%q) = %d, want -1", base, at)
		}
		for pos := range n {
			for _, bad := range [][]byte{{0x00}, {0x1f}, {0x7f}, {0xc2, 0x85}, {0xc2, 0xa0}, {0xc3, 0xa9}, {0x20}, {0x7e}} {
				s := append(append(append([]byte{}, base[:pos]...), bad...), base[pos:]...)
				gotAt, gotR := controlChar(s)
				wantAt, wantR := slow(s)
				if gotAt != wantAt || gotR != wantR {
					t.Fatalf("controlChar(%q) = %d %U, want %d %U", s, gotAt, gotR, wantAt, wantR)
				}
			}
		}
	}
}

func bitsTrailing(m uint64) int {
	n := 0
	for m&1 == 0 {
		m >>= 1
		n++
	}
	return n
}

func TestDecodeHash(t *testing.T) {
	h := Hash("TXN00000001", "ACC1000", "ACC2000", "12.50", "EUR")
	raw, ok := DecodeHash(h)
	if !ok || hex.EncodeToString(raw[:]) != h {
		t.Fatalf("DecodeHash(%s) = %x, %v", h, raw, ok)
	}
	for _, bad := range []string{strings.ToUpper(h), h[:63], h + "0", strings.Replace(h, h[:1], "g", 1)} {
		if _, ok := DecodeHash(bad); ok {
			t.Errorf("DecodeHash(%q) ok, want not canonical", bad)
		}
	}
}

// TestDigits: digits2 accepts exactly two ASCII digits, whatever the bytes, and digits4 four.
func TestDigits(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			s := []byte{byte(a), byte(b)}
			n, ok := digits2(s)
			wantOK := isDigit(s[0]) && isDigit(s[1])
			if ok != wantOK || ok && n != int(a-'0')*10+int(b-'0') {
				t.Fatalf("digits2(%q) = %d %v", s, n, ok)
			}
		}
	}
	for _, tc := range []struct {
		s  string
		n  int
		ok bool
	}{{"2025", 2025, true}, {"0001", 1, true}, {"9999", 9999, true}, {"20a5", 0, false}, {"/999", 0, false}, {"999:", 0, false}} {
		if n, ok := digits4([]byte(tc.s)); ok != tc.ok || ok && n != tc.n {
			t.Errorf("digits4(%q) = %d %v, want %d %v", tc.s, n, ok, tc.n, tc.ok)
		}
	}
}
