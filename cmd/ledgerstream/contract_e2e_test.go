package main

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// paymentsMessages are a payments team's own messages (examples/payments-contract.yaml):
// valid ones, a duplicate spelled differently (10.5 for 10.50: the same canonical hash), and
// one refusal per check.
var paymentsMessages = []string{
	`{"id":"P1","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},"amount":{"value":"10.50","currency":"USD"},"merchant":{"id":42},"captured":true,"created_at":"2025-01-16T10:00:00Z"}`,
	`{"id":"P2","payer":{"account":"ACC2000"},"payee":{"account":"ACC5678"},"amount":{"value":99.99,"currency":"EUR"},"created_at":"2025-01-16T11:30:00+01:00","note":"first order"}`,
	`{"id":"P3","payer":{"account":"ACC3000"},"payee":{"account":"ACC5678"},"amount":{"value":"5","currency":"USD"},"created_at":"2025-01-17T09:00:00Z"}`,
	`{"id":"P4","payer":{"account":"XYZ"},"payee":{"account":"ACC5678"},"amount":{"value":"5","currency":"USD"},"created_at":"2025-01-17T09:00:00Z"}`,
	`{"id":"P5","payer":{"account":"ACC3000"},"amount":{"value":"5","currency":"USD"},"created_at":"2025-01-17T09:00:00Z"}`,
	`{"id":"P6","payer":{"account":"ACC3000"},"payee":{"account":"ACC5678"},"amount":{"value":"5","currency":"CHF"},"created_at":"2025-01-17T09:00:00Z"}`,
	`{"id":"P7","payer":{"account":"ACC3000"},"payee":{"account":"ACC5678"},"amount":{"value":"5.001","currency":"USD"},"created_at":"2025-01-17T09:00:00Z"}`,
	`{"id":"P8","payer":{"account":"ACC3000"},"payee":{"account":"ACC5678"},"amount":{"value":"5","currency":"USD"},"merchant":{"id":99999999999999999999},"created_at":"2025-01-17T09:00:00Z"}`,
	`{"id":"P1","payer":{"account":"ACC1234"},"payee":{"account":"ACC5678"},"amount":{"value":"10.5","currency":"USD"},"merchant":{"id":42},"captured":true,"created_at":"2025-01-16T10:00:00Z"}`,
}

func produceRaw(t *testing.T, brokers, topic string, values []string) {
	t.Helper()
	prod, err := kafka.NewProducer(kafka.ClientConfig{Brokers: []string{brokers}})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	recs := iter.Seq2[[]byte, []byte](func(yield func([]byte, []byte) bool) {
		for _, v := range values {
			if !yield(nil, []byte(v)) {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := prod.Produce(ctx, topic, recs, kafka.ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestEndToEndContract runs the README's "Bring your own transactions": the example
// contract end to end through the binary (run, report, verify), a refused evolution, an
// accepted one (a new enum value and a new optional field), and `rejects republish` of the
// records the old contract refused, which the fixed contract takes exactly once.
func TestEndToEndContract(t *testing.T) {
	t.Parallel()
	st := newStack(t, startBroker(t, 3))
	st.topic, st.table = "payments", "pay.ledger"
	contract, err := filepath.Abs("../../examples/payments-contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	produceRaw(t, st.brokers, st.topic, paymentsMessages)

	out := st.run(t, "run", "--available-now", "--trigger", "1s", "--progress=false", "--contract", contract)
	if n := streamed(t, out); n != int64(len(paymentsMessages)) {
		t.Fatalf("streamed %d records, want %d", n, len(paymentsMessages))
	}
	st.verifyExactlyOnce(t, 3, 6)
	reasons := map[string]int{}
	for _, r := range st.rejectsList(t).Rejects {
		reasons[r.Reason]++
	}
	want := map[string]int{"pattern_mismatch": 1, "missing_field": 1, "not_in_enum": 1, "bad_scale": 1, "out_of_range": 1, "duplicate": 1}
	for r, n := range want {
		if reasons[r] != n {
			t.Errorf("rejects by reason %v, want %v", reasons, want)
			break
		}
	}
	var rep struct {
		GroupBy []string `json:"group_by"`
		Summary []struct {
			Group []string `json:"group"`
			Count int64    `json:"txn_count"`
			Total string   `json:"total_amount"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(st.run(t, "report", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Summary) != 2 || rep.Summary[0].Group[0] != "USD" || rep.Summary[0].Total != "15.50" || rep.Summary[1].Total != "99.99" {
		t.Fatalf("report summary %+v", rep)
	}

	// A window prunes: of the three partitions written (Jan 16 USD and EUR, Jan 17 USD), a
	// day and a currency read one data file.
	var win struct {
		Rows   int64 `json:"rows"`
		Window struct {
			Filter string `json:"filter"`
			Read   int    `json:"data_files_read"`
			Total  int    `json:"data_files_total"`
		} `json:"window"`
		Latest []struct {
			Values []string `json:"values"`
		} `json:"latest"`
	}
	out = st.run(t, "report", "--json", "--from", "2025-01-16", "--to", "2025-01-17", "--where", "currency=USD")
	if err := json.Unmarshal([]byte(out), &win); err != nil {
		t.Fatal(err)
	}
	if win.Rows != 1 || win.Window.Read != 1 || win.Window.Total != 3 || len(win.Latest) != 1 || win.Latest[0].Values[0] != "P1" ||
		win.Window.Filter != "event_timestamp >= 2025-01-16T00:00:00Z and event_timestamp < 2025-01-17T00:00:00Z and currency in (USD)" {
		t.Fatalf("report of a window:\n%s", out)
	}
	if p := st.start(t, "report", "--where", "payer=ACC1234"); p.wait(time.Minute) == nil || !strings.Contains(p.stderr.String(), "not one of the report's group_by columns (currency)") {
		t.Fatalf("report --where on a column that is not grouped by: %s", p.stderr.String())
	}

	// verify checks a window with --table-only (the notebook's validations on its rows),
	// and refuses one for the reconciliation, which must read every row.
	var ver struct {
		Checks []struct {
			Name   string `json:"name"`
			Passed bool   `json:"passed"`
			Figure int64  `json:"figure"`
		} `json:"checks"`
		Window struct {
			Read  int `json:"data_files_read"`
			Total int `json:"data_files_total"`
		} `json:"window"`
	}
	out = st.run(t, "verify", "--table-only", "--json", "--from", "2025-01-16", "--to", "2025-01-17")
	if err := json.Unmarshal([]byte(out), &ver); err != nil {
		t.Fatal(err)
	}
	if ver.Window.Read != 2 || ver.Window.Total != 3 || len(ver.Checks) == 0 || !ver.Checks[0].Passed || ver.Checks[0].Figure != 2 {
		t.Fatalf("verify --table-only of a window:\n%s", out)
	}
	if p := st.start(t, "verify", "--from", "2025-01-16"); p.wait(time.Minute) == nil || !strings.Contains(p.stderr.String(), "need --table-only") {
		t.Fatalf("verify --from without --table-only: %s", p.stderr.String())
	}

	// Refused: a changed type. The table is untouched.
	dir := t.TempDir()
	text, err := os.ReadFile(contract)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", strings.Replace(string(text), "type: long", "type: string", 1))
	p := st.start(t, "run", "--available-now", "--trigger", "1s", "--contract", bad)
	if err := p.wait(time.Minute); err == nil || !strings.Contains(p.stderr.String(), `field "merchant_id" changes type from long to string`) {
		t.Fatalf("a type change: %v\n%s", err, tail(p.stderr.String(), 2000))
	}

	// Accepted: CHF and a new optional field. Then the CHF record is republished.
	v2 := write("v2.yaml", strings.Replace(strings.Replace(string(text), "JPY]", "JPY, CHF]", 1),
		"partition:", "  - {name: channel, path: meta.channel, type: string}\npartition:", 1))
	st.run(t, "run", "--available-now", "--trigger", "1s", "--progress=false", "--contract", v2)
	if out := runCmd(t, "contract show", "contract", "show", "--table", st.table, "--data-dir", st.dataDir); !strings.Contains(out, "CHF") ||
		!strings.Contains(out, "15  channel") || !strings.Contains(out, "4  amount") {
		t.Fatalf("contract show after the evolution:\n%s", out)
	}
	runCmd(t, "rejects republish", st.rejectsArgs("republish", "--reason", "not_in_enum")...)
	out = st.run(t, "run", "--available-now", "--trigger", "1s", "--progress=false") // the table's contract now
	if n := streamed(t, out); n != 1 {
		t.Fatalf("after republishing: streamed %d records, want 1", n)
	}
	// The refused record is now a row (judged by the contract of its time, its first copy
	// stays a reject); republishing it again makes a duplicate, never a second row.
	st.verifyExactlyOnce(t, 4, 6)
	runCmd(t, "rejects republish", st.rejectsArgs("republish", "--reason", "not_in_enum")...)
	st.run(t, "run", "--available-now", "--trigger", "1s", "--progress=false")
	st.verifyExactlyOnce(t, 4, 7)
	// history finds a row by the contract's key and shows its columns.
	if out := runCmd(t, "history", "history", "--transaction", "P1", "--table", st.table, "--data-dir", st.dataDir, "--topic", st.topic); !strings.Contains(out, "payer             ACC1234") ||
		!strings.Contains(out, "P1: rejected record") {
		t.Fatalf("history --transaction P1:\n%s", out)
	}
	// The commands that only read refuse a --contract other than the table's (v2 now).
	for _, args := range [][]string{{"history"}, {"history", "--transaction", "P1"}, {"report"}, {"verify", "--table-only"}} {
		p := st.start(t, args[0], append(args[1:], "--contract", contract)...)
		if err := p.wait(time.Minute); err == nil || !strings.Contains(p.stderr.String(), "is written with another contract than --contract") {
			t.Errorf("%s with the contract before the evolution: %v\n%s", strings.Join(args, " "), err, tail(p.stderr.String(), 2000))
		}
	}
}

// TestProduceContract: `produce --contract` sends the contract's messages (valid ones, and
// with --malformed and --duplicates the generator's share of refusals), `run --contract`
// takes every valid one once and refuses the others with the reason the generator meant,
// and a second produce continues after the keys already on the topic.
func TestProduceContract(t *testing.T) {
	t.Parallel()
	st := newStack(t, startBroker(t, 3))
	st.topic, st.table = "payments_gen", "pay.generated"
	path, err := filepath.Abs("../../examples/payments-contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	contract, err := ledger.ParseContract(text)
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	out := st.run(t, "produce", "--contract", path, "--count", fmt.Sprint(n), "--seed", "5", "--malformed", "0.1", "--duplicates", "0.1")
	if !strings.Contains(out, "ids from TXN00000000") {
		t.Fatalf("produce --contract:\n%s", out)
	}
	// What the pipeline must make of them: the same generator, the same seed.
	gen, err := ledger.NewContractGenerator(contract, 5, ledger.GeneratorOptions{Malformed: 0.1, Duplicates: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	var rows int64
	highest := -1
	for range n {
		m := gen.Next(time.Now())
		if k, ok := gen.KeyNumber(m.Key); ok {
			highest = max(highest, k)
		}
		if m.Want == "" {
			rows++
		} else {
			want[string(m.Want)]++
		}
	}
	st.run(t, "run", "--available-now", "--trigger", "1s", "--progress=false", "--contract", path)
	st.verifyExactlyOnce(t, rows, n-rows)
	got := map[string]int{}
	for _, r := range st.rejectsList(t).Rejects {
		got[r.Reason]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejects by reason %v, want %v", got, want)
	}
	if len(want) < 5 {
		t.Errorf("only %d reasons among %d malformed messages: %v", len(want), n/10, want)
	}

	out = st.run(t, "produce", "--contract", path, "--count", "50", "--seed", "6")
	if !strings.Contains(out, fmt.Sprintf("already holds ids up to %s: continuing after it", gen.KeyText(highest))) ||
		!strings.Contains(out, "ids from "+gen.KeyText(highest+1)) {
		t.Fatalf("second produce --contract:\n%s", out)
	}
	st.run(t, "run", "--available-now", "--trigger", "1s", "--progress=false", "--contract", path)
	st.verifyExactlyOnce(t, rows+50, n-rows)
}
