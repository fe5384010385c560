package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.999999999", s)
	if err != nil {
		panic(err)
	}
	return t
}

// row builds a ledger row whose hash is computed as the ledger computes it (SHA-256 of
// id|from|to|amount|currency), with the amount string formatted at scale 2.
func row(id, from, to string, amount int64, currency, typ, when string) ledger.Row {
	amt := NewDecimal(amount, AmountScale).String()
	sum := sha256.Sum256([]byte(strings.Join([]string{id, from, to, amt, currency}, "|")))
	return ledger.Row{
		TransactionID: id, AccountFrom: from, AccountTo: to, Amount: amount,
		Currency: currency, TransactionType: typ, TransactionHash: hex.EncodeToString(sum[:]),
		EventTime: ts(when), SourceTopic: "financial_transactions",
	}
}

// fixture is the golden table: seven rows over four (type, currency) groups, two of them
// with the same event time, one with an account name longer than show()'s 20 characters,
// timestamps with 6, 2, 1 and no fractional digits.
func fixture() []ledger.Row {
	return []ledger.Row{
		row("TXN00000001", "ACC1001", "ACC2001", 123450, "USD", "payment", "2025-01-16 10:00:00.123456"),
		row("TXN00000002", "ACC1002", "ACC2002", 1000, "USD", "payment", "2025-01-16 10:00:01"),
		row("TXN00000003", "ACC1003", "ACC2003", 1, "USD", "payment", "2025-01-16 10:00:02.5"),
		row("TXN00000004", "ACC1004", "ACC2004", 999999, "EUR", "transfer", "2025-01-16 10:00:03.12"),
		row("TXN00000005", "ACC1005", "ACC2005", 10000, "EUR", "transfer", "2025-01-16 10:00:03.120000"),
		row("TXN00000006", "ACC1006", "ACC2006", 5025, "GBP", "deposit", "2025-01-15 23:59:59.000001"),
		row("TXN00000007", "ACCOUNT-WITH-A-VERY-LONG-NAME", "ACC2007", 7500, "USD", "withdrawal", "2025-01-14 08:00:00"),
	}
}

func build(rows []ledger.Row) *Report {
	var b Builder
	processed := ts("2025-01-16 10:00:10")
	for _, r := range rows {
		b.Add(r, processed)
	}
	return b.Report()
}

// The expected text is written by hand from Spark's rules, not captured from the code:
// widths = max(3, header, cells); every cell right-aligned; the 29-character account cut to
// 17 characters and "..."; decimals at their scale (sum 2, avg 6: 1244.51/3 = 414.8366666…
// rounds up to 414.836667, 10099.99/2 = 5049.995 exactly); timestamps with trailing
// fractional zeros trimmed, and then cut like any other cell longer than 20 characters (a
// timestamp with a fraction is 21 to 26: show() prints "2025-01-16 10:00:..."); TXN00000004
// before TXN00000005 at the same instant.
const goldenText = `Transaction Ledger Summary:
+----------------+--------+---------+------------+-----------+
|transaction_type|currency|txn_count|total_amount| avg_amount|
+----------------+--------+---------+------------+-----------+
|         payment|     USD|        3|     1244.51| 414.836667|
|        transfer|     EUR|        2|    10099.99|5049.995000|
|         deposit|     GBP|        1|       50.25|  50.250000|
|      withdrawal|     USD|        1|       75.00|  75.000000|
+----------------+--------+---------+------------+-----------+


Duplicate Check: 0 duplicates found

Latest 10 Transactions:
+--------------+--------------------+----------+-------+--------+----------------+--------------------+
|transaction_id|        account_from|account_to| amount|currency|transaction_type|     event_timestamp|
+--------------+--------------------+----------+-------+--------+----------------+--------------------+
|   TXN00000004|             ACC1004|   ACC2004|9999.99|     EUR|        transfer|2025-01-16 10:00:...|
|   TXN00000005|             ACC1005|   ACC2005| 100.00|     EUR|        transfer|2025-01-16 10:00:...|
|   TXN00000003|             ACC1003|   ACC2003|   0.01|     USD|         payment|2025-01-16 10:00:...|
|   TXN00000002|             ACC1002|   ACC2002|  10.00|     USD|         payment| 2025-01-16 10:00:01|
|   TXN00000001|             ACC1001|   ACC2001|1234.50|     USD|         payment|2025-01-16 10:00:...|
|   TXN00000006|             ACC1006|   ACC2006|  50.25|     GBP|         deposit|2025-01-15 23:59:...|
|   TXN00000007|ACCOUNT-WITH-A-VE...|   ACC2007|  75.00|     USD|      withdrawal| 2025-01-14 08:00:00|
+--------------+--------------------+----------+-------+--------+----------------+--------------------+

`

// goldenFull is the same report as show(truncate=False) lays it out: whole cells, left-aligned.
const goldenFull = `Transaction Ledger Summary:
+----------------+--------+---------+------------+-----------+
|transaction_type|currency|txn_count|total_amount|avg_amount |
+----------------+--------+---------+------------+-----------+
|payment         |USD     |3        |1244.51     |414.836667 |
|transfer        |EUR     |2        |10099.99    |5049.995000|
|deposit         |GBP     |1        |50.25       |50.250000  |
|withdrawal      |USD     |1        |75.00       |75.000000  |
+----------------+--------+---------+------------+-----------+


Duplicate Check: 0 duplicates found

Latest 10 Transactions:
+--------------+-----------------------------+----------+-------+--------+----------------+--------------------------+
|transaction_id|account_from                 |account_to|amount |currency|transaction_type|event_timestamp           |
+--------------+-----------------------------+----------+-------+--------+----------------+--------------------------+
|TXN00000004   |ACC1004                      |ACC2004   |9999.99|EUR     |transfer        |2025-01-16 10:00:03.12    |
|TXN00000005   |ACC1005                      |ACC2005   |100.00 |EUR     |transfer        |2025-01-16 10:00:03.12    |
|TXN00000003   |ACC1003                      |ACC2003   |0.01   |USD     |payment         |2025-01-16 10:00:02.5     |
|TXN00000002   |ACC1002                      |ACC2002   |10.00  |USD     |payment         |2025-01-16 10:00:01       |
|TXN00000001   |ACC1001                      |ACC2001   |1234.50|USD     |payment         |2025-01-16 10:00:00.123456|
|TXN00000006   |ACC1006                      |ACC2006   |50.25  |GBP     |deposit         |2025-01-15 23:59:59.000001|
|TXN00000007   |ACCOUNT-WITH-A-VERY-LONG-NAME|ACC2007   |75.00  |USD     |withdrawal      |2025-01-14 08:00:00       |
+--------------+-----------------------------+----------+-------+--------+----------------+--------------------------+

`

func TestGoldenFull(t *testing.T) {
	var buf bytes.Buffer
	if err := build(fixture()).WriteTextFull(&buf); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != goldenFull {
		t.Fatalf("text mismatch\ngot:\n%s\nwant:\n%s", got, goldenFull)
	}
}

func TestGoldenText(t *testing.T) {
	rows := fixture()
	// Feed in several orders: the report must not depend on scan order.
	for i := range 5 {
		if i > 0 {
			r := rand.New(rand.NewPCG(uint64(i), 0))
			r.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		}
		var buf bytes.Buffer
		if err := build(rows).WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		if got := buf.String(); got != goldenText {
			t.Fatalf("order %d: text mismatch\ngot:\n%s\nwant:\n%s", i, got, goldenText)
		}
	}
}

func TestGoldenDuplicates(t *testing.T) {
	const h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	a := row("TXN1", "A", "B", 100, "USD", "payment", "2025-01-16 10:00:00")
	b := row("TXN2", "A", "B", 100, "USD", "payment", "2025-01-16 10:00:00")
	a.TransactionHash, b.TransactionHash = h, h
	rep := build([]ledger.Row{a, b})

	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	const want = `
Duplicate Check: 1 duplicates found
+--------------------+----------------+
|    transaction_hash|occurrence_count|
+--------------------+----------------+
|9f86d081884c7d659...|               2|
+--------------------+----------------+


Latest 10 Transactions:
`
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("duplicate section missing\ngot:\n%s\nwant it to contain:\n%s", buf.String(), want)
	}
}

func TestGoldenJSON(t *testing.T) {
	rep := build(fixture())
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows       int64 `json:"rows"`
		Dupes      int   `json:"duplicate_count"`
		Duplicates []any `json:"duplicates"`
		Summary    []map[string]any
		Latest     []map[string]any
		Distinct   int64  `json:"distinct_hashes"`
		LastProc   string `json:"last_processing_time"`
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if got.Rows != 7 || got.Dupes != 0 || got.Duplicates == nil || got.Distinct != 7 {
		t.Errorf("rows=%d dupes=%d duplicates=%v distinct=%d", got.Rows, got.Dupes, got.Duplicates, got.Distinct)
	}
	wantSummary := []map[string]any{
		{"transaction_type": "payment", "currency": "USD", "txn_count": json.Number("3"), "total_amount": "1244.51", "avg_amount": "414.836667"},
		{"transaction_type": "transfer", "currency": "EUR", "txn_count": json.Number("2"), "total_amount": "10099.99", "avg_amount": "5049.995000"},
		{"transaction_type": "deposit", "currency": "GBP", "txn_count": json.Number("1"), "total_amount": "50.25", "avg_amount": "50.250000"},
		{"transaction_type": "withdrawal", "currency": "USD", "txn_count": json.Number("1"), "total_amount": "75.00", "avg_amount": "75.000000"},
	}
	if fmt.Sprint(got.Summary) != fmt.Sprint(wantSummary) {
		t.Errorf("summary\ngot  %v\nwant %v", got.Summary, wantSummary)
	}
	first := got.Latest[0]
	if first["transaction_id"] != "TXN00000004" || first["amount"] != "9999.99" ||
		first["event_timestamp"] != "2025-01-16T10:00:03.12Z" {
		t.Errorf("latest[0] = %v", first)
	}
	if len(got.Latest) != 7 || got.Latest[6]["account_from"] != "ACCOUNT-WITH-A-VERY-LONG-NAME" {
		t.Errorf("latest: JSON must carry all rows, untruncated: %v", got.Latest)
	}
	if got.LastProc != "2025-01-16T10:00:10Z" {
		t.Errorf("last_processing_time = %q", got.LastProc)
	}
}

func TestEmptyReport(t *testing.T) {
	var b Builder
	rep := b.Report()
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	const want = `Transaction Ledger Summary:
+----------------+--------+---------+------------+----------+
|transaction_type|currency|txn_count|total_amount|avg_amount|
+----------------+--------+---------+------------+----------+
+----------------+--------+---------+------------+----------+


Duplicate Check: 0 duplicates found
`
	if !strings.HasPrefix(buf.String(), want) {
		t.Fatalf("got:\n%s\nwant prefix:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"summary": []`, `"duplicates": []`, `"latest": []`, `"duplicate_id_examples": []`} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("JSON lacks %s:\n%s", s, buf.String())
		}
	}
	// Every field is kept (issue 13): an empty ledger has no processing time range, null.
	if !strings.Contains(buf.String(), `"first_processing_time": null`) || !strings.Contains(buf.String(), `"last_processing_time": null`) {
		t.Errorf("zero processing times must be null:\n%s", buf.String())
	}
}

// maxAmount is the largest decimal(18,2): 9999999999999999.99.
const maxAmount = 999_999_999_999_999_999

func TestSumAtDecimalMaxNoOverflow(t *testing.T) {
	const n = 1_000_000
	var b Builder
	r := row("TXN", "A", "B", maxAmount, "USD", "payment", "2025-01-16 10:00:00")
	for range n {
		b.Add(r, time.Time{})
	}
	rep := b.Report()
	s := rep.Summary[0]
	if s.Count != n || s.Total.String() != "9999999999999999990000.00" || s.Avg.String() != "9999999999999999.990000" {
		t.Fatalf("got count %d total %s avg %s", s.Count, s.Total, s.Avg)
	}
	// The same hash a million times: one duplicate with the full count.
	if len(rep.Duplicates) != 1 || rep.Duplicates[0].Count != n || rep.DistinctHashes != 1 || rep.DistinctIDs != 1 {
		t.Fatalf("duplicates %v distinct hashes %d ids %d", rep.Duplicates, rep.DistinctHashes, rep.DistinctIDs)
	}
}

func TestInt128AgainstBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s int128
	want := new(big.Int)
	edge := []int64{math.MaxInt64, math.MinInt64, -1, 0, 1, maxAmount, -maxAmount}
	for i := range 200_000 {
		var x int64
		if i%3 == 0 {
			x = edge[rng.IntN(len(edge))]
		} else {
			x = int64(rng.Uint64())
		}
		// Long runs of one sign push the sum far past int64 both ways.
		if (i/50_000)%2 == 0 && x < 0 && x != math.MinInt64 {
			x = -x
		}
		s.add(x)
		want.Add(want, big.NewInt(x))
		if i%997 == 0 && s.big().Cmp(want) != 0 {
			t.Fatalf("after %d adds: got %s want %s", i+1, s.big(), want)
		}
	}
	if s.big().Cmp(want) != 0 {
		t.Fatalf("got %s want %s", s.big(), want)
	}
}

func TestAvgRoundingHalfUp(t *testing.T) {
	for _, tc := range []struct {
		amounts []int64 // unscaled, scale 2
		want    string
	}{
		{[]int64{1, 1, 1}, "0.010000"},
		{[]int64{1, 0}, "0.005000"},
		{[]int64{2, 0, 0}, "0.006667"},                           // 0.0066666… up
		{[]int64{1, 0, 0}, "0.003333"},                           // 0.0033333… down
		{append([]int64{1}, make([]int64, 31)...), "0.000313"},   // 0.0003125 exactly: a tie, rounds up
		{append([]int64{-1}, make([]int64, 31)...), "-0.000313"}, // HALF_UP is away from zero
		{append([]int64{3}, make([]int64, 63)...), "0.000469"},   // 0.00046875: tie, up
		{append([]int64{1}, make([]int64, 63)...), "0.000156"},   // 0.00015625: tie, up
		{append([]int64{1}, make([]int64, 127)...), "0.000078"},  // 0.000078125: below the tie
		{[]int64{maxAmount, maxAmount - 1}, "9999999999999999.985000"},
		{[]int64{maxAmount, 0, 0}, "3333333333333333.330000"},
		{[]int64{maxAmount, maxAmount, 1}, "6666666666666666.663333"}, // …66.6633333 down
		{[]int64{-maxAmount, -maxAmount, -2}, "-6666666666666666.666667"},
	} {
		var b Builder
		for i, a := range tc.amounts {
			r := row(fmt.Sprint(i), "A", "B", a, "USD", "payment", "2025-01-16 10:00:00")
			b.Add(r, time.Time{})
		}
		if got := b.Report().Summary[0].Avg.String(); got != tc.want {
			t.Errorf("avg of %d amounts (first %d): got %s want %s", len(tc.amounts), tc.amounts[0], got, tc.want)
		}
	}
}

func TestDecimalString(t *testing.T) {
	for _, tc := range []struct {
		d    Decimal
		want string
	}{
		{NewDecimal(123450, 2), "1234.50"},
		{NewDecimal(1, 2), "0.01"},
		{NewDecimal(10, 2), "0.10"},
		{NewDecimal(0, 2), "0.00"},
		{NewDecimal(-5, 2), "-0.05"},
		{NewDecimal(-123, 2), "-1.23"},
		{NewDecimal(1, 6), "0.000001"},
		{NewDecimal(0, 6), "0.000000"},
		{NewDecimal(42, 0), "42"},
		{Decimal{Scale: 2}, "0.00"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%v scale %d: got %q want %q", tc.d.Unscaled, tc.d.Scale, got, tc.want)
		}
	}
	b, _ := json.Marshal(NewDecimal(-123, 2))
	if string(b) != `"-1.23"` {
		t.Errorf("JSON %s", b)
	}
}

func TestDuplicateDetection(t *testing.T) {
	base := fixture()
	rows := append([]ledger.Row{}, base...)
	// TXN00000002 delivered three times (same hash, same id), TXN00000006 twice.
	rows = append(rows, base[1], base[1], base[5])
	// A different transaction that happens to have TXN00000003's id: a new hash.
	clash := row("TXN00000003", "X", "Y", 1, "USD", "payment", "2025-01-16 10:00:00")
	rows = append(rows, clash)
	// Hashes Spark would see as different strings although they decode alike.
	up := base[0]
	up.TransactionID = "TXN-UPPER"
	up.TransactionHash = strings.ToUpper(base[0].TransactionHash)
	odd := base[0]
	odd.TransactionID = "TXN-ODD"
	odd.TransactionHash = "not-a-hash"
	rows = append(rows, up, odd, odd)

	rep := build(rows)
	if rep.Rows != 14 {
		t.Fatalf("rows %d", rep.Rows)
	}
	// 7 fixture hashes + clash + upper-case + "not-a-hash".
	if rep.DistinctHashes != 10 {
		t.Errorf("distinct hashes %d, want 10", rep.DistinctHashes)
	}
	// 7 fixture ids + TXN-UPPER + TXN-ODD.
	if rep.DistinctIDs != 9 {
		t.Errorf("distinct ids %d, want 9", rep.DistinctIDs)
	}
	want := []Duplicate{
		{base[1].TransactionHash, 3},
		{"not-a-hash", 2},
		{base[5].TransactionHash, 2},
	}
	// Count descending, then hash ascending.
	if base[5].TransactionHash < "not-a-hash" {
		want[1], want[2] = want[2], want[1]
	}
	if fmt.Sprint(rep.Duplicates) != fmt.Sprint(want) {
		t.Errorf("duplicates\ngot  %v\nwant %v", rep.Duplicates, want)
	}
	if fmt.Sprint(rep.DuplicateIDExamples) != "[TXN00000002 TXN00000006 TXN00000003 TXN-ODD]" {
		t.Errorf("duplicate id examples %v", rep.DuplicateIDExamples)
	}
}

func TestDistinctIDKeys(t *testing.T) {
	// Short ids are packed into 16-byte keys: lengths must keep "A" and "A\x00" apart, and
	// ids of 15, 16 and more bytes must take the right path and still count.
	ids := []string{"", "A", "A\x00", "\x00", "123456789012345", "1234567890123456",
		"12345678901234567890", "123456789012345\x00"}
	var b Builder
	for i, id := range ids {
		r := row(id, "A", "B", 100, "USD", "payment", "2025-01-16 10:00:00")
		r.TransactionHash = fmt.Sprintf("%064x", i)
		b.Add(r, time.Time{})
	}
	for _, id := range ids { // again: all duplicates now
		r := row(id, "A", "B", 100, "USD", "payment", "2025-01-16 10:00:00")
		b.Add(r, time.Time{})
	}
	rep := b.Report()
	if rep.DistinctIDs != int64(len(ids)) {
		t.Fatalf("distinct ids %d, want %d", rep.DistinctIDs, len(ids))
	}
	if len(rep.DuplicateIDExamples) != maxDuplicateIDExamples {
		t.Fatalf("examples %q", rep.DuplicateIDExamples)
	}
}

func TestLatestOrderingAndTies(t *testing.T) {
	var rows []ledger.Row
	// 30 rows over 3 distinct instants; within an instant ids are out of order, and
	// TXN-B appears twice at the newest instant (two source offsets).
	instants := []string{"2025-01-16 10:00:00.5", "2025-01-16 10:00:01", "2025-01-16 09:59:59.999999"}
	for i := range 30 {
		r := row(fmt.Sprintf("TXN-%02d", (i*7)%30), "A", "B", int64(100+i), "USD", "payment", instants[i%3])
		r.SourceOffset = int64(i)
		rows = append(rows, r)
	}
	dupe := row("TXN-B", "A", "B", 1, "USD", "payment", "2025-01-16 10:00:01")
	dupe2 := dupe
	dupe.SourceOffset, dupe2.SourceOffset = 501, 500
	rows = append(rows, dupe, dupe2)

	// Expected by construction: the newest instant (10:00:01) holds i%3==1, ids (i*7)%30.
	var newest []string
	for i := 1; i < 30; i += 3 {
		newest = append(newest, fmt.Sprintf("TXN-%02d", (i*7)%30))
	}
	// Twelve rows share the newest instant: those ten and TXN-B twice. Ids ascending, and
	// "TXN-B" sorts after "TXN-28" ('B' > '2'), so the cut at ten drops both TXN-B rows.
	sortStrings(newest)
	want := newest

	for seed := range 10 {
		rr := append([]ledger.Row{}, rows...)
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		rng.Shuffle(len(rr), func(a, b int) { rr[a], rr[b] = rr[b], rr[a] })
		var b Builder
		for _, r := range rr {
			b.Add(r, time.Time{})
		}
		rep := b.Report()
		var got []string
		for _, l := range rep.Latest {
			got = append(got, l.TransactionID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d: latest ids\ngot  %v\nwant %v", seed, got, want)
		}
	}

	// Source position breaks a tie of time and id: offset 500 before 501.
	var b Builder
	for i := range 9 {
		b.Add(row(fmt.Sprint(i), "A", "B", 1, "USD", "payment", "2025-01-01 00:00:00"), time.Time{})
	}
	b.Add(dupe, time.Time{})
	b.Add(dupe2, time.Time{})
	l := b.Report().Latest
	if len(l) != LatestN || l[0].TransactionID != "TXN-B" || l[1].TransactionID != "TXN-B" || l[0].Amount.String() != "0.01" {
		t.Fatalf("latest %v", l)
	}
	if b.latest[0].SourceOffset != 500 || b.latest[1].SourceOffset != 501 {
		t.Fatalf("offset order: %d, %d", b.latest[0].SourceOffset, b.latest[1].SourceOffset)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// unsafeString returns a string sharing b's memory, as an Arrow column's Value does.
func unsafeString(b []byte) string { return unsafe.String(&b[0], len(b)) }

func TestLatestDoesNotAliasInput(t *testing.T) {
	buf := []byte("TXN00000001")
	r := row("x", "A", "B", 1, "USD", "payment", "2025-01-16 10:00:00")
	r.TransactionID = unsafeString(buf)
	var b Builder
	b.Add(r, time.Time{})
	copy(buf, "XXXXXXXXXXX") // the scan reuses its buffer
	if id := b.Report().Latest[0].TransactionID; id != "TXN00000001" {
		t.Fatalf("latest row aliases the caller's buffer: %q", id)
	}
}

func TestProcessingTimeRange(t *testing.T) {
	var b Builder
	r := fixture()
	b.Add(r[0], ts("2025-01-16 10:00:20"))
	b.Add(r[1], ts("2025-01-16 10:00:10"))
	b.Add(r[2], time.Time{}) // unknown: ignored
	b.Add(r[3], ts("2025-01-16 10:00:30"))
	rep := b.Report()
	if !rep.FirstProcessed.Equal(ts("2025-01-16 10:00:10")) || !rep.LastProcessed.Equal(ts("2025-01-16 10:00:30")) {
		t.Fatalf("processed %v .. %v", rep.FirstProcessed, rep.LastProcessed)
	}
}

func TestReportIsRepeatable(t *testing.T) {
	var b Builder
	rows := fixture()
	for _, r := range rows[:3] {
		b.Add(r, time.Time{})
	}
	first := b.Report()
	for _, r := range rows[3:] {
		b.Add(r, time.Time{})
	}
	if first.Rows != 3 || b.Report().Rows != 7 {
		t.Fatalf("rows %d then %d", first.Rows, b.Report().Rows)
	}
	if first.Summary[0].Total.String() != "1244.51" {
		t.Fatalf("earlier report changed: %v", first.Summary[0].Total)
	}
}
