package ledger

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"
)

var genStart = time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)

// genTime is the event time the tests pass for message i: it varies the microseconds and
// lands on a whole second now and then (Python's isoformat then writes no fraction).
func genTime(i int) time.Time {
	return genStart.Add(time.Duration(i)*1234567*time.Nanosecond + time.Duration(i%7)*time.Nanosecond)
}

// pythonDumps matches json.dumps of the seed's dict: key order, ", " and ": " separators,
// isoformat() timestamps. The amount always has two decimals (as the seed's producer formats it: "10.50", not "10.5").
var pythonDumps = regexp.MustCompile(`^\{"transaction_id": "TXN\d{8}", "account_from": "ACC\d{4}", "account_to": "ACC\d{4}", "amount": "\d+\.\d\d", "currency": "(USD|EUR|GBP)", "transaction_type": "(transfer|payment|withdrawal|deposit)", "timestamp": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?"\}$`)

func TestGeneratorRoundTrip(t *testing.T) {
	const n = 20000
	rules := Rules{MaxMessageBytes: 4096}
	g := NewGenerator(42, GeneratorOptions{Duplicates: 0.2, Malformed: 0.3, Oversize: rules.MaxMessageBytes + 1})
	rows := map[int]Row{}
	values := map[int][]byte{}
	counts := map[Reason]int{}
	for i := range n {
		now := genTime(i)
		m := g.Next(now)
		counts[m.Want]++
		if m.Index != i {
			t.Fatalf("message %d has Index %d", i, m.Index)
		}
		row, rej := rules.Decode(m.Value)
		switch m.Want {
		case "":
			if rej != nil {
				t.Fatalf("message %d %s: %v", i, m.Value, rej)
			}
			if !pythonDumps.Match(m.Value) {
				t.Fatalf("message %d is not in json.dumps form: %s", i, m.Value)
			}
			if want := fmt.Sprintf("TXN%08d", i); row.TransactionID != want || string(m.Key) != want {
				t.Fatalf("message %d: id %q key %q, want %q", i, row.TransactionID, m.Key, want)
			}
			// The generator writes two decimals, so FormatAmount gives back the original string.
			if h := Hash(row.TransactionID, row.AccountFrom, row.AccountTo, FormatAmount(row.Amount), row.Currency); row.TransactionHash != h {
				t.Fatalf("message %d: hash %s, recomputed %s", i, row.TransactionHash, h)
			}
			if row.Amount < 1000 || row.Amount > 1000000 {
				t.Fatalf("message %d: amount %d out of the seed's range", i, row.Amount)
			}
			if !row.EventTime.Equal(now.Truncate(time.Microsecond)) {
				t.Fatalf("message %d: event time %v, want %v", i, row.EventTime, now)
			}
			rows[i], values[i] = row, m.Value
		case ReasonDuplicate, ReasonConflictingDuplicate:
			if rej != nil {
				t.Fatalf("duplicate %d %s: %v (Decode must accept it; dedup rejects it)", i, m.Value, rej)
			}
			orig, ok := rows[m.Original]
			if !ok || m.Original >= i {
				t.Fatalf("duplicate %d repeats %d, which is not an earlier valid message", i, m.Original)
			}
			if string(m.Key) != orig.TransactionID || row.TransactionID != orig.TransactionID {
				t.Fatalf("duplicate %d: key %q id %q, original %q", i, m.Key, row.TransactionID, orig.TransactionID)
			}
			if m.Want == ReasonDuplicate {
				if !bytes.Equal(m.Value, values[m.Original]) || row != orig {
					t.Fatalf("duplicate %d differs from %d:\n%s\n%s", i, m.Original, m.Value, values[m.Original])
				}
			} else {
				same := row
				same.Amount, same.TransactionHash = orig.Amount, orig.TransactionHash
				if row.Amount == orig.Amount || row.TransactionHash == orig.TransactionHash || same != orig {
					t.Fatalf("conflicting duplicate %d: %+v vs original %+v", i, row, orig)
				}
			}
		default:
			if rej == nil {
				t.Fatalf("malformed message %d (want %s) accepted: %q", i, m.Want, m.Value)
			}
			if rej.Reason != m.Want {
				t.Fatalf("malformed message %d: got %s (%s), want %s: %q", i, rej.Reason, rej.Message, m.Want, m.Value)
			}
			if len(m.Key) == 0 {
				t.Fatalf("malformed message %d has no key", i)
			}
		}
	}
	for _, r := range []Reason{"", ReasonDuplicate, ReasonConflictingDuplicate, ReasonMalformedJSON, ReasonMissingField,
		ReasonBadField, ReasonBadAmount, ReasonNonPositiveAmount, ReasonBadCurrency, ReasonBadType, ReasonBadTimestamp,
		ReasonTooLarge, ReasonTombstone} {
		if counts[r] == 0 {
			t.Errorf("no message with outcome %q", r)
		}
	}
	malformed := n - counts[""] - counts[ReasonDuplicate] - counts[ReasonConflictingDuplicate]
	dups := counts[ReasonDuplicate] + counts[ReasonConflictingDuplicate]
	if f := float64(malformed) / n; f < 0.28 || f > 0.32 {
		t.Errorf("malformed fraction %.3f, want about 0.3", f)
	}
	if f := float64(dups) / n; f < 0.18 || f > 0.22 {
		t.Errorf("duplicate fraction %.3f, want about 0.2", f)
	}
	if f := float64(counts[ReasonConflictingDuplicate]) / float64(dups); f < 0.15 || f > 0.25 {
		t.Errorf("conflicting share of duplicates %.3f, want about 0.2", f)
	}
	t.Logf("outcomes: %v", counts)
}

func TestGeneratorDeterministic(t *testing.T) {
	opts := GeneratorOptions{Duplicates: 0.1, Malformed: 0.1}
	a, b, c := NewGenerator(7, opts), NewGenerator(7, opts), NewGenerator(8, opts)
	differ := 0
	for i := range 2000 {
		ma, mb, mc := a.Next(genTime(i)), b.Next(genTime(i)), c.Next(genTime(i))
		if !bytes.Equal(ma.Key, mb.Key) || !bytes.Equal(ma.Value, mb.Value) || ma.Want != mb.Want || ma.Original != mb.Original {
			t.Fatalf("message %d differs for the same seed:\n%s\n%s", i, ma.Value, mb.Value)
		}
		if (ma.Value == nil) != (mb.Value == nil) {
			t.Fatalf("message %d: tombstone for one generator only", i)
		}
		if !bytes.Equal(ma.Value, mc.Value) {
			differ++
		}
	}
	if differ < 1900 {
		t.Errorf("seeds 7 and 8 gave %d different messages of 2000", differ)
	}
}

func TestGeneratorClean(t *testing.T) {
	// With no duplicates or malformed messages, the stream is the seed's: ids 0..n-1, all valid.
	g := NewGenerator(1, GeneratorOptions{})
	rules := DefaultRules()
	for i := range 1000 {
		m := g.Next(genTime(i))
		if m.Want != "" || m.Original != -1 {
			t.Fatalf("message %d: want %q original %d", i, m.Want, m.Original)
		}
		if _, rej := rules.Decode(m.Value); rej != nil {
			t.Fatal(rej)
		}
	}
}

func TestGeneratorPythonTimestamp(t *testing.T) {
	// Python: datetime(2025,1,16,10,0,0,123456).isoformat() == '2025-01-16T10:00:00.123456'
	//         datetime(2025,1,16,10,0,0).isoformat()        == '2025-01-16T10:00:00'
	//         datetime(2025,1,16,10,0,0,5).isoformat()      == '2025-01-16T10:00:00.000005'
	for in, want := range map[time.Time]string{
		time.Date(2025, 1, 16, 10, 0, 0, 123456789, time.UTC):                 "2025-01-16T10:00:00.123456",
		time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC):                         "2025-01-16T10:00:00",
		time.Date(2025, 1, 16, 10, 0, 0, 5000, time.UTC):                      "2025-01-16T10:00:00.000005",
		time.Date(2025, 1, 16, 11, 0, 0, 999, time.FixedZone("CET", 3600)):    "2025-01-16T10:00:00",
		time.Date(999, 12, 31, 23, 59, 59, 999999000, time.FixedZone("Z", 0)): "0999-12-31T23:59:59.999999",
	} {
		g := NewGenerator(1, GeneratorOptions{})
		m := g.Next(in)
		if !bytes.Contains(m.Value, []byte(`"timestamp": "`+want+`"`)) {
			t.Errorf("time %v: got %s, want timestamp %s", in, m.Value, want)
		}
	}
}

func TestGeneratorAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumented build")
	}
	g := NewGenerator(1, GeneratorOptions{})
	i := 0
	allocs := testing.AllocsPerRun(1000, func() { g.Next(genTime(i)); i++ })
	if allocs != 1 {
		t.Errorf("Next allocates %v times per message, want 1 (key and value share it)", allocs)
	}
}

func BenchmarkGenerator(b *testing.B) {
	g := NewGenerator(1, GeneratorOptions{Duplicates: 0.05, Malformed: 0.05})
	b.ReportAllocs()
	for b.Loop() {
		g.Next(genStart)
	}
}

// Reasons lists every code declared: --reason is checked against it.
func TestReasonsComplete(t *testing.T) {
	src, err := os.ReadFile("ledger.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := regexp.MustCompile(`(?m)^\s+Reason\w+\s+Reason = "(\w+)"`).FindAllStringSubmatch(string(src), -1)
	if len(declared) != len(Reasons) {
		t.Fatalf("ledger.go declares %d reason codes, Reasons lists %d", len(declared), len(Reasons))
	}
	for i, m := range declared {
		if string(Reasons[i]) != m[1] {
			t.Errorf("Reasons[%d] = %s, declared %s", i, Reasons[i], m[1])
		}
	}
}

// FirstID shifts the ids, and only the ids.
func TestGeneratorFirstID(t *testing.T) {
	now := time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)
	a, b := NewGenerator(7, GeneratorOptions{}), NewGenerator(7, GeneratorOptions{FirstID: 500})
	for i := range 3 {
		ma, mb := a.Next(now), b.Next(now)
		if n, ok := TransactionNumber(mb.Key); !ok || n != 500+i {
			t.Errorf("message %d: key %s, want TXN%08d", i, mb.Key, 500+i)
		}
		if !bytes.Equal(bytes.Replace(ma.Value, ma.Key, mb.Key, 1), mb.Value) {
			t.Errorf("message %d differs beyond its id:\n%s\n%s", i, ma.Value, mb.Value)
		}
	}
}
