package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"
)

// exampleContract is issue 15's example, a payments team's own message shape, as the README
// shows it.
var exampleContract = func() string {
	b, err := os.ReadFile("../../examples/payments-contract.yaml")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

const exampleMessage = `{"id":"P1","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},` +
	`"amount":{"value":"10.5","currency":"USD"},"merchant":{"id":42},"captured":true,"created_at":"2025-01-16T10:00:00.123456Z"}`

func mustContract(t testing.TB, y string) *Contract {
	t.Helper()
	c, err := ParseContract([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefaultContract(t *testing.T) {
	c := DefaultContract()
	if !c.IsDefault() || c.HashAt() != 6 || c.Key != "transaction_id" || len(c.Fields) != 7 {
		t.Fatalf("default contract: default %v, hash at %d, key %q, %d fields", c.IsDefault(), c.HashAt(), c.Key, len(c.Fields))
	}
	// The same text, written by a user, is the default contract (same schema, same decoder).
	again, err := ParseContract([]byte(DefaultContractYAML()))
	if err != nil || again != c {
		t.Fatalf("parsing the default contract's YAML: %v, %p != %p", err, again, c)
	}
	// A contract that differs in anything is not.
	changed := strings.Replace(DefaultContractYAML(), "max_length: 256}", "max_length: 255}", 1)
	if mustContract(t, changed).IsDefault() {
		t.Fatal("a changed default contract is still the default")
	}
	// Its hash is the notebook's (golden: printf 'TXN00000042|ACC4242|ACC2424|9999.99|GBP' | sha256sum).
	rules := Rules{Contract: c}
	row, rej := rules.Decode(seedMessage)
	if rej != nil || row.TransactionHash != "7a5e9ab7d7f23f95effcda41d8b841d2cd8040aef0dc23aac410cd1161453f64" || row.Custom != nil {
		t.Fatalf("default contract: %+v %v", row, rej)
	}
}

func TestContractYAMLRoundTrip(t *testing.T) {
	c := mustContract(t, exampleContract)
	again := mustContract(t, string(c.YAML()))
	if string(again.YAML()) != string(c.YAML()) {
		t.Fatalf("round trip changed the contract:\n%s\n---\n%s", c.YAML(), again.YAML())
	}
	if again.Field("amount").MinExclusive.String() != "0" || again.Field("payer").Pattern.String() != "^ACC[0-9]{4,}$" ||
		again.Field("payer").PathString() != "payer.account" || len(again.Partition) != 2 || again.UnknownFields != UnknownKeep {
		t.Fatalf("round trip lost something:\n%s", again.YAML())
	}
}

// TestContractErrors checks every validation error: each contract below has one fault,
// and the error must name it.
func TestContractErrors(t *testing.T) {
	const okFields = `
  - {name: id, type: string, required: true, min_length: 1, max_length: 64}
  - {name: amt, type: 'decimal(10,2)', required: true}
  - {name: at, type: timestamptz, required: true}`
	const tail = `
report: {group_by: [id], amount: amt, time: at}`
	doc := func(fields string) string { return "key: id\nhash: [id, amt]\nfields:" + okFields + fields + tail }
	top := func(key, hash, extra string) string {
		return "key: " + key + "\nhash: " + hash + "\nfields:" + okFields + "\n" + extra + tail
	}
	cases := []struct{ name, yaml, want string }{
		{"not yaml", "key: [", "not a valid contract document"},
		{"misspelt key", doc("\n  - {name: x, type: string, requried: true}"), "field requried not found"},
		{"unknown top key", top("id", "[id]", "partitions: []"), "field partitions not found"},
		{"no fields", "key: id\nhash: [id]\nfields: []" + tail, "at least one field"},
		{"no name", doc("\n  - {type: string}"), "name is missing"},
		{"bad name", doc("\n  - {name: Amount2, type: string}"), "must be lower-case"},
		{"reserved name", doc("\n  - {name: transaction_hash, type: string}"), "is a column every ledger table has"},
		{"duplicate name", doc("\n  - {name: id, path: other, type: string}"), `name "id" is used twice`},
		{"duplicate path", doc("\n  - {name: x, path: id, type: string}"), `path "id" is also the path of "id"`},
		{"overlapping paths", doc("\n  - {name: x, path: id.value, type: string}"), "overlap"},
		{"empty segment", doc("\n  - {name: x, path: a..b, type: string}"), "empty segment"},
		{"too deep", doc("\n  - {name: x, path: a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q, type: string}"), "deeper than 16"},
		{"unknown type", doc("\n  - {name: x, type: float}"), `unknown type "float"`},
		{"precision 0", doc("\n  - {name: x, type: 'decimal(0,0)'}"), "precision must be 1 to 38"},
		{"precision 39", doc("\n  - {name: x, type: 'decimal(39,2)'}"), "precision must be 1 to 38"},
		{"scale above precision", doc("\n  - {name: x, type: 'decimal(4,5)'}"), "scale must be at most the precision"},
		{"pattern on a long", doc("\n  - {name: x, type: long, pattern: '^1'}"), "pattern applies to strings only"},
		{"bad pattern", doc("\n  - {name: x, type: string, pattern: '(['}"), "error parsing regexp"},
		{"enum on a long", doc("\n  - {name: x, type: long, enum: ['1']}"), "enum applies to strings only"},
		{"empty enum", doc("\n  - {name: x, type: string, enum: []}"), "enum is empty"},
		{"enum twice", doc("\n  - {name: x, type: string, enum: [a, a]}"), `enum lists "a" twice`},
		{"length on a long", doc("\n  - {name: x, type: long, max_length: 3}"), "apply to strings only"},
		{"length inverted", doc("\n  - {name: x, type: string, min_length: 5, max_length: 3}"), "want 0 <= min_length <= max_length"},
		{"hash_as on a string", doc("\n  - {name: x, type: string, hash_as: sent}"), "hash_as: sent applies to decimals only"},
		{"hash_as unknown", doc("\n  - {name: x, type: 'decimal(5,2)', hash_as: raw}"), "hash_as must be canonical or sent"},
		{"min on a string", doc("\n  - {name: x, type: string, min: 1}"), "min applies to long, int and decimal"},
		{"bound not a number", doc("\n  - {name: x, type: long, max: ten}"), "not a plain decimal number"},
		{"bound as a list", doc("\n  - {name: x, type: long, max: [1]}"), "want a number"},
		{"bound finer than scale", doc("\n  - {name: x, type: 'decimal(10,2)', min: 0.005}"), "more than 2 fractional digits"},
		{"bound beyond precision", doc("\n  - {name: x, type: 'decimal(4,2)', max: 100}"), "does not fit in decimal(4,2)"},
		{"bound beyond int", doc("\n  - {name: x, type: int, max: 2147483648}"), "does not fit in an int"},
		{"bound beyond long", doc("\n  - {name: x, type: long, max: 9223372036854775808}"), "does not fit in a long"},
		{"fraction on a long", doc("\n  - {name: x, type: long, min: 0.5}"), "more than 0 fractional digits"},
		{"min and min_exclusive", doc("\n  - {name: x, type: long, min: 1, min_exclusive: 0}"), "not both"},
		{"key missing", top("''", "[id]", ""), "key is missing"},
		{"key not a field", top("nope", "[id]", ""), `key "nope" is not a field`},
		{"key optional", "key: k\nhash: [k]\nfields:" + okFields + "\n  - {name: k, type: long}" + tail, `key "k" must be required`},
		{"key boolean", "key: k\nhash: [k]\nfields:" + okFields + "\n  - {name: k, type: boolean, required: true}" + tail, "must be a string, long or int"},
		{"key too long", "key: k\nhash: [k]\nfields:" + okFields + "\n  - {name: k, type: string, required: true, max_length: 257}" + tail, "max_length of at most 256 bytes"},
		{"hash empty", top("id", "[]", ""), "hash: at least one column"},
		{"hash not a field", top("id", "[id, nope]", ""), `hash column "nope" is not a field`},
		{"hash optional", "key: id\nhash: [id, o]\nfields:" + okFields + "\n  - {name: o, type: string}" + tail, `hash column "o" must be required`},
		{"hash twice", top("id", "[id, amt, id]", ""), `hash column "id" is listed twice`},
		{"hash without key", top("id", "[amt]", ""), `hash must include the key "id"`},
		{"unknown_fields", top("id", "[id]", "unknown_fields: drop"), "unknown_fields must be ignore, keep or reject"},
		{"partition syntax", top("id", "[id]", "partition: ['day of at']"), "want transform(column)"},
		{"partition column", top("id", "[id]", "partition: ['day(nope)']"), `"nope" is not a field`},
		{"partition transform", top("id", "[id]", "partition: ['month(amt)']"), "month applies to dates and timestamps"},
		{"partition hour of date", "key: id\nhash: [id]\nfields:" + okFields + "\n  - {name: d, type: date}\npartition: ['hour(d)']" + tail, "hour applies to timestamps"},
		{"partition unknown", top("id", "[id]", "partition: ['week(at)']"), `unknown transform "week"`},
		{"partition bucket width", top("id", "[id]", "partition: ['bucket(id)']"), "bucket needs a positive width"},
		{"partition bucket zero", top("id", "[id]", "partition: ['bucket(0, id)']"), "bucket needs a positive width"},
		{"partition day width", top("id", "[id]", "partition: ['day(3, at)']"), "day takes no number"},
		{"partition twice", top("id", "[id]", "partition: ['day(at)', 'day(at)']"), "listed twice"},
		{"partition truncate timestamp", top("id", "[id]", "partition: ['truncate(3, at)']"), "truncate applies to strings"},
		{"report missing", "key: id\nhash: [id]\nfields:" + okFields, "report is missing"},
		{"report group_by", "key: id\nhash: [id]\nfields:" + okFields + "\nreport: {group_by: [nope], amount: amt, time: at}", `report group_by "nope" is not a field`},
		{"report amount type", "key: id\nhash: [id]\nfields:" + okFields + "\nreport: {group_by: [id], amount: id, time: at}", `report amount "id" must be a long, int or decimal`},
		{"report time type", "key: id\nhash: [id]\nfields:" + okFields + "\nreport: {group_by: [id], amount: amt, time: amt}", `report time "amt" must be a date or timestamp`},
		{"report time missing", "key: id\nhash: [id]\nfields:" + okFields + "\nreport: {group_by: [id], amount: amt}", "report time is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseContract([]byte(tc.yaml))
			var ce *ContractError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *ContractError containing %q, got %v\n%s", tc.want, err, tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not say %q:\n%v", tc.want, err)
			}
		})
	}
	// Several faults are all reported at once.
	_, err := ParseContract([]byte("key: nope\nhash: [nope]\nfields:" + okFields + "\n  - {name: x, type: float}" + tail))
	if err == nil || !strings.Contains(err.Error(), "3 problems") {
		t.Fatalf("want all three problems at once, got %v", err)
	}
}

// TestContractGoldenHashes checks the row hash against sha256sum of the canonical strings,
// computed outside Go:
//
//	printf 'P1|ACC1234|ACC5678|10.50|USD' | sha256sum
//	printf 'P2|ACC99999|ACC5678|1234567890123456.00|JPY' | sha256sum
//	printf 'X1|2025-01-16 10:00:00.1|2025-01-16|-42|true|0.050|2025-01-16 08:30:00' | sha256sum
func TestContractGoldenHashes(t *testing.T) {
	example := Rules{Contract: mustContract(t, exampleContract)}
	all := Rules{Contract: mustContract(t, `key: x
hash: [x, at, day, n, ok, amt, local]
fields:
  - {name: x, type: string, required: true, min_length: 1, max_length: 8}
  - {name: at, type: timestamptz, required: true}
  - {name: day, type: date, required: true}
  - {name: n, type: long, required: true}
  - {name: ok, type: boolean, required: true}
  - {name: amt, type: 'decimal(10,3)', required: true}
  - {name: local, type: timestamp, required: true}
report: {group_by: [ok], amount: amt, time: at}
`)}
	cases := []struct {
		rules *Rules
		msg   string
		hash  string
	}{
		{&example, exampleMessage, "c04f8a7c7ceafd43887c61d5f74bd829804a63670847d67d341ce98c976789f0"},
		// amount sent as a JSON number, escapes in strings, keys in another order.
		{&example, `{"created_at":"2025-01-16 10:00:00","amount":{"currency":"JPY","value":1234567890123456},"payee":{"account":"ACC\u0035678"},"payer":{"account":"ACC99999"},"id":"P2"}`,
			"8d9859ce8340b3edb60b1e811d7502f369963dd7ad12e94e030cebc64bd8aefc"},
		{&all, `{"x":"X1","at":"2025-01-16T11:00:00.100+01:00","day":"2025-01-16","n":-42,"ok":true,"amt":0.05,"local":"2025-01-16 08:30:00"}`,
			"79f10cb3ff83bcf59010217a7669d36bba33d0695e30b92271068ff359ca5ea9"},
	}
	for _, tc := range cases {
		row, rej := tc.rules.Decode([]byte(tc.msg))
		if rej != nil {
			t.Fatalf("%s: %v", tc.msg, rej)
		}
		if row.TransactionHash != tc.hash {
			t.Errorf("%s: hash %s, want %s", tc.msg, row.TransactionHash, tc.hash)
		}
	}
}

func TestContractDecodeExample(t *testing.T) {
	c := mustContract(t, exampleContract)
	rules := Rules{Contract: c}
	row, rej := rules.Decode([]byte(exampleMessage))
	if rej != nil {
		t.Fatal(rej)
	}
	if row.TransactionID != "P1" || row.Custom == nil || row.Custom.Extras != "" {
		t.Fatalf("row %+v", row)
	}
	want := []string{"P1", "ACC1234", "ACC5678", "10.50", "USD", "42", "true", "2025-01-16 10:00:00.123456"}
	for i, f := range c.Fields {
		if got := row.Custom.Canonical(i, f.Type); got != want[i] {
			t.Errorf("%s = %q, want %q", f.Name, got, want[i])
		}
	}
	if hi, lo := row.Custom.Values[3].Decimal128(); hi != 0 || lo != 1050 {
		t.Errorf("amount unscaled = %d:%d, want 1050", hi, lo)
	}
	if !row.EventTime.Equal(time.Date(2025, 1, 16, 10, 0, 0, 123456000, time.UTC)) {
		t.Errorf("event time %v", row.EventTime)
	}
	// Optional fields absent or null are nulls.
	row, rej = rules.Decode([]byte(`{"id":"P1","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},"amount":{"value":"10.5","currency":"USD"},"merchant":null,"captured":null,"created_at":"2025-01-16T10:00:00Z"}`))
	if rej != nil || row.Custom.Values[5].Valid || row.Custom.Values[6].Valid {
		t.Fatalf("optional nulls: %+v %v", row, rej)
	}
	row, rej = rules.Decode([]byte(`{"id":"P1","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},"amount":{"value":"10.5","currency":"USD"},"merchant":{},"created_at":"2025-01-16T10:00:00Z"}`))
	if rej != nil || row.Custom.Values[5].Valid || row.Custom.Values[6].Valid {
		t.Fatalf("optional absent: %+v %v", row, rej)
	}
}

// TestContractRejects checks every check's reject reason, and that its message names the
// field and the rule.
func TestContractRejects(t *testing.T) {
	rules := Rules{Contract: mustContract(t, exampleContract)}
	ints := Rules{Contract: mustContract(t, `key: k
hash: [k]
fields:
  - {name: k, type: long, required: true}
  - {name: i, type: int, min: -5, max_exclusive: 100}
  - {name: d, type: date}
  - {name: ts, type: timestamp}
  - {name: big, type: 'decimal(38,0)'}
  - {name: small, type: 'decimal(3,1)', max: 10.5}
report: {group_by: [], amount: i, time: d}
`)}
	base := map[string]string{
		"id": `"P1"`, "payer": `{"account":"ACC1234"}`, "payee": `{"account":"ACC5678"}`,
		"amount": `{"value":"10.5","currency":"USD"}`, "created_at": `"2025-01-16T10:00:00Z"`,
	}
	msg := func(kv ...string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		var b strings.Builder
		b.WriteByte('{')
		for _, k := range []string{"id", "payer", "payee", "amount", "merchant", "captured", "created_at", "note"} {
			if v, ok := m[k]; ok && v != "" {
				if b.Len() > 1 {
					b.WriteByte(',')
				}
				b.WriteString(`"` + k + `":` + v)
			}
		}
		b.WriteByte('}')
		return b.String()
	}
	cases := []struct {
		rules  *Rules
		msg    string
		reason Reason
		want   string // in the message
		key    string // Reject.TransactionID
	}{
		{&rules, msg("id", ""), ReasonMissingField, `missing required field "payment_id" (path id): "id" is absent`, ""},
		{&rules, msg("id", "null"), ReasonMissingField, `"id" is null`, ""},
		// A nested path missing at each level.
		{&rules, msg("payer", ""), ReasonMissingField, `missing required field "payer" (path payer.account): object "payer" is absent`, "P1"},
		{&rules, msg("payer", "null"), ReasonMissingField, `object "payer" is null`, "P1"},
		{&rules, msg("payer", `{}`), ReasonMissingField, `"payer.account" is absent`, "P1"},
		{&rules, msg("payer", `{"account":null}`), ReasonMissingField, `"payer.account" is null`, "P1"},
		{&rules, msg("payer", `"ACC1234"`), ReasonBadField, `"payer" is a JSON string, want an object`, "P1"},
		{&rules, msg("payer", `[{"account":"ACC1234"}]`), ReasonBadField, `"payer" is a JSON array, want an object`, "P1"},
		{&rules, msg("amount", `{"currency":"USD"}`), ReasonMissingField, `"amount.value" is absent`, "P1"},
		// Wrong JSON types.
		{&rules, msg("id", `7`), ReasonBadField, `field "payment_id" (path id) must be a JSON string (type string), got number`, ""},
		{&rules, msg("merchant", `{"id":"42"}`), ReasonBadField, `field "merchant_id" (path merchant.id) must be a JSON number (type long), got string`, "P1"},
		{&rules, msg("captured", `"yes"`), ReasonBadField, `field "captured" must be a JSON boolean`, "P1"},
		{&rules, msg("amount", `{"value":true,"currency":"USD"}`), ReasonBadField, `must be a JSON string (type decimal(18,2)), got boolean`, "P1"},
		{&rules, msg("created_at", `1737021600`), ReasonBadField, `field "event_timestamp" (path created_at) must be a JSON string`, "P1"},
		// Strings: length, control characters, pattern, enum.
		{&rules, msg("id", `""`), ReasonBadField, `field "payment_id" (path id) is empty`, ""},
		{&rules, msg("id", `"`+strings.Repeat("x", 257)+`"`), ReasonBadField, "longer than max_length 256 bytes", ""},
		{&rules, msg("payee", `{"account":"ACC\u0007"}`), ReasonBadField, `has control character U+0007`, "P1"},
		{&rules, msg("payer", `{"account":"XYZ1234"}`), ReasonPatternMismatch, `field "payer" (path payer.account): "XYZ1234" does not match pattern ^ACC[0-9]{4,}$`, "P1"},
		{&rules, msg("amount", `{"value":"1","currency":"CHF"}`), ReasonNotInEnum, `field "currency" (path amount.currency): "CHF" is not one of enum ["USD" "EUR" "GBP" "JPY"]`, "P1"},
		// Decimals: never a float, never rounded.
		{&rules, msg("amount", `{"value":"0.00","currency":"USD"}`), ReasonOutOfRange, `field "amount" (path amount.value): "0.00" must be greater than 0 (min_exclusive)`, "P1"},
		{&rules, msg("amount", `{"value":-3,"currency":"USD"}`), ReasonOutOfRange, "must be greater than 0", "P1"},
		{&rules, msg("amount", `{"value":"10.005","currency":"USD"}`), ReasonBadScale, `"10.005" has more than 2 fractional digits (scale of decimal(18,2)`, "P1"},
		{&rules, msg("amount", `{"value":0.30000000000000004,"currency":"USD"}`), ReasonBadScale, "more than 2 fractional digits", "P1"},
		{&rules, msg("amount", `{"value":1e3,"currency":"USD"}`), ReasonBadField, "is not a plain decimal", "P1"},
		{&rules, msg("amount", `{"value":"12,50","currency":"USD"}`), ReasonBadField, "is not a plain decimal", "P1"},
		{&rules, msg("amount", `{"value":"12345678901234567","currency":"USD"}`), ReasonOutOfRange, "does not fit in type decimal(18,2) (at most 16 integer digits)", "P1"},
		{&rules, msg("amount", `{"value":"123456789012345678901234567890123456789","currency":"USD"}`), ReasonOutOfRange, "does not fit in type decimal(18,2)", "P1"},
		// Timestamps.
		{&rules, msg("created_at", `"2025-02-30T10:00:00Z"`), ReasonBadTimestamp, `field "event_timestamp" (path created_at): timestamp "2025-02-30T10:00:00Z" is not ISO 8601`, "P1"},
		// Integers: out of range is a reject, never a wrap.
		{&ints, `{"k":9223372036854775808}`, ReasonOutOfRange, `field "k": "9223372036854775808" does not fit in type long`, ""},
		{&ints, `{"k":-9223372036854775809}`, ReasonOutOfRange, "does not fit in type long", ""},
		{&ints, `{"k":1.0}`, ReasonBadField, `field "k": "1.0" is not an integer`, ""},
		{&ints, `{"k":1e3}`, ReasonBadField, "is not an integer", ""},
		{&ints, `{"k":1,"i":2147483648}`, ReasonOutOfRange, `field "i": "2147483648" does not fit in type int`, "1"},
		{&ints, `{"k":1,"i":-6}`, ReasonOutOfRange, `field "i": "-6" must be at least -5 (min)`, "1"},
		{&ints, `{"k":1,"i":100}`, ReasonOutOfRange, `field "i": "100" must be less than 100 (max_exclusive)`, "1"},
		{&ints, `{"k":1,"small":10.6}`, ReasonOutOfRange, `must be at most 10.5 (max)`, "1"},
		{&ints, `{"k":1,"small":"100"}`, ReasonOutOfRange, `does not fit in type decimal(3,1)`, "1"},
		{&ints, `{"k":1,"big":123456789012345678901234567890123456789}`, ReasonOutOfRange, "does not fit in type decimal(38,0)", "1"},
		{&ints, `{"k":1,"d":"2025-1-16"}`, ReasonBadDate, `field "d": "2025-1-16" is not a date YYYY-MM-DD`, "1"},
		{&ints, `{"k":1,"d":"2025-02-29"}`, ReasonBadDate, "is not a date", "1"},
		{&ints, `{"k":1,"ts":"2025-01-16T10:00:00Z"}`, ReasonBadTimestamp, "has a zone, but the column is a timestamp without zone", "1"},
		// JSON itself.
		{&rules, `{"id":"P1","id":"P2"}`, ReasonMalformedJSON, `duplicate key "id"`, "P1"},
		{&rules, `{"id":"P1","payer":{"account":"A","account":"B"}}`, ReasonMalformedJSON, `duplicate key "account"`, "P1"},
		{&rules, `{"id":"P1","x":1,"x":2}`, ReasonMalformedJSON, `duplicate key "x"`, "P1"},
		// Unknown keys are remembered by their bounds while few and unescaped, else by value.
		{&rules, `{"id":"P1","x":1,"\u0078":2}`, ReasonMalformedJSON, `duplicate key "x" at byte 17`, "P1"},
		{&rules, `{"id":"P1","\u0078":1,"x":2}`, ReasonMalformedJSON, `duplicate key "x" at byte 22`, "P1"},
		{&rules, `{"id":"P1","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"e":7}`, ReasonMalformedJSON, `duplicate key "e" at byte 47`, "P1"},
		{&rules, `{"id":"P1","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"a":7}`, ReasonMalformedJSON, `duplicate key "a" at byte 47`, "P1"},
		{&rules, `{"id":"P1","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"f":7}`, ReasonMalformedJSON, `duplicate key "f" at byte 47`, "P1"},
		{&rules, `{"id":"P1","payer":{"x":1,"account":"ACC1234","x":2}}`, ReasonMalformedJSON, `duplicate key "x" at byte 46`, "P1"},
		{&rules, `["P1"]`, ReasonMalformedJSON, "message is a JSON array", ""},
		{&rules, `{"id":"P1"} x`, ReasonMalformedJSON, "trailing data", "P1"},
	}
	for _, tc := range cases {
		_, rej := tc.rules.Decode([]byte(tc.msg))
		if rej == nil {
			t.Errorf("%s: accepted, want %s", tc.msg, tc.reason)
			continue
		}
		if rej.Reason != tc.reason || !strings.Contains(rej.Message, tc.want) || rej.TransactionID != tc.key {
			t.Errorf("%s:\n got %s %q (key %q)\nwant %s %q (key %q)", tc.msg, rej.Reason, rej.Message, rej.TransactionID, tc.reason, tc.want, tc.key)
		}
	}
	// The range ends are accepted.
	for _, m := range []string{`{"k":-9223372036854775808,"i":-5,"small":10.5,"big":99999999999999999999999999999999999999,"d":"2024-02-29","ts":"2025-01-16T10:00:00"}`,
		`{"k":9223372036854775807,"i":99,"small":-99.9,"big":-99999999999999999999999999999999999999}`} {
		if _, rej := ints.Decode([]byte(m)); rej != nil {
			t.Errorf("%s: %v", m, rej)
		}
	}
}

func TestContractUnknownFields(t *testing.T) {
	msg := `{"id":"P1","note":"hi","payer":{"account":"ACC1234","bank":{"bic":"X"}},"payee":{"account":"ACC5678"},` +
		`"amount":{"value":"10.5","currency":"USD"},"created_at":"2025-01-16T10:00:00Z","tags":[1,{"a":null}]}`
	mode := func(m string) *Rules {
		return &Rules{Contract: mustContract(t, strings.Replace(exampleContract, "unknown_fields: keep", "unknown_fields: "+m, 1))}
	}
	// ignore: the row is the row without them.
	row, rej := mode("ignore").Decode([]byte(msg))
	if rej != nil || row.Custom.Extras != "" || row.TransactionHash != "c04f8a7c7ceafd43887c61d5f74bd829804a63670847d67d341ce98c976789f0" {
		t.Fatalf("ignore: %+v %v", row, rej)
	}
	// keep: every unknown key, nested where it was, values as sent.
	row, rej = mode("keep").Decode([]byte(msg))
	if want := `{"note":"hi","payer":{"bank":{"bic":"X"}},"tags":[1,{"a":null}]}`; rej != nil || row.Custom.Extras != want {
		t.Fatalf("keep: extras %q, want %q (%v)", row.Custom.Extras, want, rej)
	}
	if row.TransactionHash != "c04f8a7c7ceafd43887c61d5f74bd829804a63670847d67d341ce98c976789f0" {
		t.Fatal("keep: the extras changed the hash")
	}
	// The first unknown member inside a known object, and a known object with none between two.
	nested := `{"id":"P1","payer":{"x":1,"account":"ACC1234"},"payee":{"account":"ACC5678"},` +
		`"amount":{"value":"10.5","currency":"USD","y":{"z":[]}},"created_at":"2025-01-16T10:00:00Z","w":2}`
	row, rej = mode("keep").Decode([]byte(nested))
	if want := `{"payer":{"x":1},"amount":{"y":{"z":[]}},"w":2}`; rej != nil || row.Custom.Extras != want {
		t.Fatalf("keep: extras %q, want %q (%v)", row.Custom.Extras, want, rej)
	}
	row, rej = mode("keep").Decode([]byte(exampleMessage))
	if rej != nil || row.Custom.Extras != "" {
		t.Fatalf("keep without unknown keys: extras %q %v", row.Custom.Extras, rej)
	}
	// reject: the first unknown key, by its path.
	_, rej = mode("reject").Decode([]byte(msg))
	if rej == nil || rej.Reason != ReasonUnknownField || !strings.Contains(rej.Message, `key "note" is not a field of the contract`) || rej.TransactionID != "P1" {
		t.Fatalf("reject: %v", rej)
	}
	_, rej = mode("reject").Decode([]byte(strings.Replace(msg, `"note":"hi",`, "", 1)))
	if rej == nil || rej.Reason != ReasonUnknownField || !strings.Contains(rej.Message, `key "payer.bank"`) {
		t.Fatalf("reject nested: %v", rej)
	}
	if _, rej = mode("reject").Decode([]byte(exampleMessage)); rej != nil {
		t.Fatalf("reject without unknown keys: %v", rej)
	}
}

func TestCanonical(t *testing.T) {
	cases := []struct {
		typ  string
		v    Value
		want string
	}{
		{"decimal(18,2)", Value{Valid: true, Int: 5}, "0.05"},
		{"decimal(18,2)", Value{Valid: true, Int: -5, Hi: -1}, "-0.05"},
		{"decimal(18,0)", Value{Valid: true, Int: 7}, "7"},
		{"decimal(38,2)", Value{Valid: true, Int: 0, Hi: 1}, "184467440737095516.16"},
		{"decimal(38,2)", Value{Valid: true, Int: 0, Hi: -1}, "-184467440737095516.16"},
		{"long", Value{Valid: true, Int: -9223372036854775808}, "-9223372036854775808"},
		{"boolean", Value{Valid: true}, "false"},
		{"date", Value{Valid: true, Int: -1}, "1969-12-31"},
		{"timestamptz", Value{Valid: true, Int: 1}, "1970-01-01 00:00:00.000001"},
		{"timestamp", Value{Valid: true, Int: 1_500_000}, "1970-01-01 00:00:01.5"},
		{"string", Value{}, ""},
	}
	for _, tc := range cases {
		typ, err := ParseType(tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		if got := (&Columns{Values: []Value{tc.v}}).Canonical(0, typ); got != tc.want {
			t.Errorf("%s %+v = %q, want %q", tc.typ, tc.v, got, tc.want)
		}
	}
	// A row's values are 24 bytes each (a string's start shares Valid's word).
	if size := unsafe.Sizeof(Value{}); size != 24 {
		t.Errorf("a Value is %d bytes, want 24", size)
	}
	// A string column's value is its bytes of the row's Strings.
	cols := &Columns{Values: make([]Value, 3), Strings: "P1|ACC1234"}
	cols.Values[0] = Value{Valid: true}
	cols.Values[0].SetStr(0, 2)
	cols.Values[2] = Value{Valid: true}
	cols.Values[2].SetStr(3, 10)
	if a, b, c := cols.Canonical(0, Type{Kind: TypeString}), cols.Str(1), cols.Str(2); a != "P1" || b != "" || c != "ACC1234" {
		t.Errorf("strings %q %q %q, want P1, empty, ACC1234", a, b, c)
	}
}

// BenchmarkDecodeContract decodes the example message with the example contract, and the
// seed's message with the notebook's decoder for comparison. Besides ns/op it reports
// cpu-ns/op, the process's CPU time (user + sys, garbage collection included) per message,
// which a loaded machine inflates far less than the wall clock.
func BenchmarkDecodeContract(b *testing.B) {
	// generated are what bench and produce --contract send: the generator's messages.
	generated := func(c *Contract) [][]byte {
		gen, err := NewGeneratorFor(c, 7, GeneratorOptions{})
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([][]byte, 1024)
		now := time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)
		for i := range msgs {
			msgs[i] = gen.Next(now.Add(time.Duration(i) * time.Second)).Value
		}
		return msgs
	}
	example := mustContract(b, exampleContract)
	for _, bc := range []struct {
		name  string
		rules Rules
		msgs  [][]byte
	}{
		{"example", Rules{Contract: example}, [][]byte{[]byte(exampleMessage)}},
		{"default", DefaultRules(), [][]byte{seedMessage}},
		{"example-generated", Rules{Contract: example}, generated(example)},
		{"default-generated", DefaultRules(), generated(nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msgs[0])))
			dec := bc.rules.NewDecoder() // as the engine decodes, one per goroutine
			start := processCPU(b)
			i := 0
			for b.Loop() {
				if _, rej := dec.Decode(bc.msgs[i%len(bc.msgs)]); rej != nil {
					b.Fatal(rej)
				}
				i++
			}
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's user + sys time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FuzzContractDecode: whatever the message, the contract decoder does not panic, and a row
// it accepts has every required column, a 64-digit hash and extras that are a JSON object.
func FuzzContractDecode(f *testing.F) {
	for _, m := range []string{exampleMessage, `{"id":"P1","payer":{"account":"ACC1234","x":[1,{"y":2}]},"z":null}`,
		`{"id":"P1","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},"amount":{"value":1.5,"currency":"EUR"},"created_at":"2025-01-16T10:00:00Z","merchant":{"id":-1}}`} {
		f.Add([]byte(m))
	}
	f.Add([]byte("{\"id\":\"P\xff1\"}"))
	f.Add([]byte("{\"i\xc3\":1,\"id\":\"P1\"}"))
	f.Add([]byte("{\"id\":\"P1\",x\xe2\x82}"))
	rules := Rules{Contract: mustContract(f, exampleContract)}
	f.Fuzz(func(t *testing.T, msg []byte) {
		row, rej := rules.Decode(msg)
		// The scan checks UTF-8 in strings only; a message that is not UTF-8 anywhere is
		// refused as such, as before any JSON error (the notebook's order).
		if !utf8.Valid(msg) {
			if want := notUTF8(msg); rej == nil || *rej != *want {
				t.Fatalf("%q: reject %+v, want %+v", msg, rej, want)
			}
			return
		}
		if rej != nil {
			return
		}
		for i, fd := range rules.Contract.Fields {
			if fd.Required && !row.Custom.Values[i].Valid {
				t.Fatalf("required %s is null in an accepted row", fd.Name)
			}
		}
		if len(row.TransactionHash) != 64 || row.TransactionID == "" {
			t.Fatalf("row %+v", row)
		}
		if x := row.Custom.Extras; x != "" && (x[0] != '{' || x[len(x)-1] != '}') {
			t.Fatalf("extras %q", x)
		}
		if x := row.Custom.Extras; x != "" {
			if _, err := skipValue([]byte(x), 0); err != nil {
				t.Fatalf("extras %q are not JSON: %v", x, err)
			}
		}
		// The hash is that of the hash columns' canonical strings (the example hashes its
		// decimal canonically), and the string columns are what encoding/json reads.
		var in []byte
		for j, h := range rules.Contract.Hash {
			if j > 0 {
				in = append(in, HashSeparator)
			}
			i := rules.Contract.FieldIndex(h)
			in = row.Custom.AppendCanonical(in, i, rules.Contract.Fields[i].Type)
		}
		if sum := sha256.Sum256(in); hex.EncodeToString(sum[:]) != row.TransactionHash {
			t.Fatalf("%q: hash %s is not that of %q", msg, row.TransactionHash, in)
		}
		var m map[string]any
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, msg)
		}
		for i, fd := range rules.Contract.Fields {
			if fd.Type.Kind != TypeString {
				continue
			}
			var v any = m
			for _, p := range fd.Path {
				if obj, ok := v.(map[string]any); ok {
					v = obj[p]
				} else {
					v = nil
				}
			}
			got, ok := any(nil), row.Custom.Values[i].Valid
			if ok {
				got = row.Custom.Str(i)
			}
			if got != v {
				t.Fatalf("%q: %s is %#v, encoding/json reads %#v", msg, fd.Name, got, v)
			}
		}
		if row.TransactionID != row.Custom.Str(rules.Contract.FieldIndex(rules.Contract.Key)) {
			t.Fatalf("transaction id %q", row.TransactionID)
		}
	})
}

// TestContractNotUTF8: bytes that are not UTF-8, in a value, a key, between values or after a
// JSON error, make the UTF-8 reject of Rules.Decode, with the first bad byte's place.
func TestContractNotUTF8(t *testing.T) {
	rules := Rules{Contract: mustContract(t, exampleContract)}
	for _, msg := range []string{
		"{\"id\":\"P\xff1\"}",
		"{\"id\":\"P1\",\"payer\":{\"account\":\"ACC\xc0\xaf1234\"}}",
		"{\"id\":\"P1\",\"no\xedte\":1}",
		"{\"i\xe2\x82\":\"P1\"}",
		"{\"id\":\"P1\",\xff}",
		"{\"id\":\"P1\",,\"x\":\"\xed\xa0\x80\"}",
		"{\"id\":\"P1\"} \xff",
		"\xef\xbb\xbf{\"id\":\"P1\"}\xc3",
	} {
		_, rej := rules.Decode([]byte(msg))
		if want := notUTF8([]byte(msg)); rej == nil || *rej != *want {
			t.Errorf("%q: reject %+v, want %+v", msg, rej, want)
		}
	}
	// Valid UTF-8 in values and unknown keys is taken as it is.
	row, rej := rules.Decode([]byte(`{"id":"Pé","payer":{"account":"ACC1234"},"payee":{"account":"Zoë 😀"},` +
		`"amount":{"value":"1.00","currency":"EUR"},"created_at":"2025-01-16T10:00:00Z","日本":"ü"}`))
	if rej != nil || row.TransactionID != "Pé" || row.Custom.Str(2) != "Zoë 😀" || row.Custom.Extras != `{"日本":"ü"}` {
		t.Fatalf("UTF-8 message: %+v %v", row, rej)
	}
}

// TestParseDecimalText checks the decimal parser and rescale, 64-bit fast paths and 128-bit
// paths alike, against math/big.
func TestParseDecimalText(t *testing.T) {
	for _, s := range []string{"0", "-0", "+1.5", "10.5", "-0.01", "9999999999999999999", "999999999999999999.9",
		"18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
		"922337203685477580.7", "12345678901234567890123456789012345678", "99999999999999999999999999999999999999",
		"100000000000000000000000000000000000000", "1.", ".5", "1.2.3", "", "-", "+", "1e5", "0x1", "1 "} {
		v, frac, ok := parseDecimalText([]byte(s))
		r, isNum := new(big.Rat).SetString(s)
		wantOK := isNum && decimalShape.MatchString(s)
		if wantOK {
			unscaled := new(big.Int).Mul(r.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(frac)), nil))
			wantOK = new(big.Int).Abs(unscaled).Cmp(new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)) < 0
		}
		if ok != wantOK {
			t.Errorf("parseDecimalText(%q) ok = %v, want %v", s, ok, wantOK)
			continue
		}
		if !ok {
			continue
		}
		want := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(frac)), nil)))
		if got := new(big.Rat).SetInt(v.big()); got.Cmp(want) != 0 {
			t.Errorf("parseDecimalText(%q) = %s e-%d, want %s", s, got, frac, want.RatString())
		}
		for k := 0; k <= 40; k++ {
			scaled, ok := rescale(v, k)
			want := new(big.Int).Mul(v.big(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil))
			fits := new(big.Int).Abs(want).Cmp(new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)) < 0
			if ok != fits || ok && scaled.big().Cmp(want) != 0 {
				t.Fatalf("rescale(%s, %d) = %s %v, want %s %v", v.big(), k, scaled.big(), ok, want, fits)
			}
		}
	}
}

var decimalShape = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]+)?$`)

// TestIsCanonicalDecimal: a text is taken as its canonical string only when appendDecimal
// would write exactly it.
func TestIsCanonicalDecimal(t *testing.T) {
	for _, s := range []string{"0", "7", "-7", "10", "010", "-0", "+1", "0.05", "00.05", "-0.05", "-0.00", "0.00",
		"10.50", "10.5", "10.500", "6582.28", "-6582.28", "1.", ".50", "1.2.3", "99999999999999999999.99", "0.0", "-0.1"} {
		for scale := 0; scale <= 3; scale++ {
			v, frac, ok := parseDecimalText([]byte(s))
			if !ok || frac > scale {
				continue // not a value of this scale: the decoder never asks
			}
			got := isCanonicalDecimal([]byte(s), v, frac, scale) // as the decoder asks, before rescaling
			v, ok = rescale(v, scale-frac)
			if !ok {
				continue
			}
			want := string(appendDecimal(nil, v, scale)) == s
			if got != want {
				t.Errorf("isCanonicalDecimal(%q, %d) = %v, want %v (canonical %q)", s, scale, got, want, appendDecimal(nil, v, scale))
			}
		}
	}
}
