package main

// End-to-end tests: the real binary, built once per run, driven as separate processes
// (broker, produce, run, verify, report, kcat), the way operators and scripts drive it.
// They prove the invariant of docs/design.md §4.9 from outside the process: through `verify`, which
// reconciles the ledger with the topic, and through an independent scan of the table.
//
// Each test has its own broker process and data directories, so they run in parallel.
// Under -short only the quick ones run (TestEndToEndAvailableNow, TestEndToEndKcat).

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// skipIfShort skips the slower tests under -short.
func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow end-to-end test; skipped under -short")
	}
}

// TestEndToEndAvailableNow: produce, then one `run --available-now` that must end by
// itself; verify, report and a scan of the table all count every record exactly once, and
// every commit of the pipeline carries its offsets.
func TestEndToEndAvailableNow(t *testing.T) {
	t.Parallel()
	const n = 20000
	st := newStack(t, startBroker(t, 3))
	st.run(t, "produce", "--count", fmt.Sprint(n), "--seed", "7")

	out := st.run(t, "run", "--available-now", "--trigger", "1s")
	if got := streamed(t, out); got != n {
		t.Errorf("run streamed %d records, want %d", got, n)
	}
	st.verifyExactlyOnce(t, n, 0)

	var rep struct {
		Rows           int64 `json:"rows"`
		DistinctHashes int64 `json:"distinct_hashes"`
		DuplicateCount int   `json:"duplicate_count"`
		Summary        []struct {
			Type     string `json:"transaction_type"`
			Currency string `json:"currency"`
			Count    int64  `json:"txn_count"`
		} `json:"summary"`
	}
	repOut := st.run(t, "report", "--json")
	if err := json.Unmarshal([]byte(repOut), &rep); err != nil {
		t.Fatalf("report --json: %v\n%s", err, tail(repOut, 2000))
	}
	var sum int64
	for _, s := range rep.Summary {
		sum += s.Count
	}
	if rep.Rows != n || sum != n || rep.DistinctHashes != n || rep.DuplicateCount != 0 {
		t.Errorf("report: rows %d, summary counts sum to %d, %d distinct hashes, %d duplicates; want %d, %d, %d, 0",
			rep.Rows, sum, rep.DistinctHashes, rep.DuplicateCount, n, n, n)
	}
	// The seed's generator draws 4 types and 3 currencies: 12 groups at this size.
	if len(rep.Summary) != 12 {
		t.Errorf("report: %d summary groups, want 12", len(rep.Summary))
	}

	sc := st.scanTable(t)
	sc.requireExactly(t, n)
	sc.checkOffsetsHistory(t, st.pipeline, n)
}

// TestEndToEndRestartSIGTERM: a streaming run stopped by SIGTERM mid-stream exits 0
// promptly, having committed everything it read (a clean stop leaves nothing to redo); a
// restart picks up exactly where the table says, and the ledger ends with every record once.
func TestEndToEndRestartSIGTERM(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	testRestart(t, syscall.SIGTERM)
}

// TestEndToEndRestartSIGKILL: a streaming run killed with SIGKILL mid-stream loses at most
// its uncommitted batch; a restart with the same --worker-id takes its partitions back at
// once (static membership) and re-creates exactly what is missing.
func TestEndToEndRestartSIGKILL(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	testRestart(t, syscall.SIGKILL)
}

func testRestart(t *testing.T, sig syscall.Signal) {
	const n = 50000
	st := newStack(t, startBroker(t, 3))
	// 10000/s keeps the producer busy for 5 s: the run is signalled mid-stream, with
	// records still arriving, yet the test stays short.
	producer := st.start(t, "produce", "--count", fmt.Sprint(n), "--seed", "11", "--rate", "10000")

	// SIGKILL leaves a dead member in the consumer group: with a static --worker-id the
	// restart replaces it at once instead of waiting out --session-timeout. SIGTERM leaves
	// the group cleanly, so that run goes without one (the dynamic-membership path). The
	// session is long so that a restart that waited for it cannot pass for a slow one on a
	// loaded machine.
	const session = time.Minute
	runArgs := []string{"--trigger", "500ms", "--session-timeout", session.String()}
	if sig == syscall.SIGKILL {
		runArgs = append(runArgs, "--worker-id", "worker-1")
	}
	first := st.start(t, "run", runArgs...)
	first.waitForLine(&first.stderr, "batch committed", 30*time.Second)
	if producer.exited() {
		t.Fatal("the producer finished before the run was signalled: the test no longer interrupts a stream")
	}
	first.signal(sig)
	signalled := time.Now()
	// A clean stop commits what the run holds (a few hundred ms of records) and exits; the
	// bound only catches a stop that hangs.
	err := first.wait(time.Minute)
	stopTook := time.Since(signalled)

	if sig == syscall.SIGTERM {
		if err != nil {
			t.Fatalf("run after SIGTERM: %v, want exit 0 (clean stop)", err)
		}
	} else if s, ok := killedBy(err); !ok || s != syscall.SIGKILL {
		t.Fatalf("run after SIGKILL: %v, want killed by SIGKILL", err)
	}

	before := st.scanTable(t)
	if before.rows == 0 || before.rows >= n {
		t.Fatalf("after the %s the table has %d rows: want some but not all of %d (mid-stream)", sig, before.rows, n)
	}
	before.requireExactly(t, before.rows)
	if sig == syscall.SIGTERM {
		// A clean stop commits every record it read: none is left for the restart to redo.
		if got := streamed(t, first.stdout.String()); got != before.rows {
			t.Errorf("stopped run read %d records but the table holds %d rows", got, before.rows)
		}
	}
	t.Logf("%s after %s of streaming stopped in %s with %d rows committed",
		sig, signalled.Sub(first.started).Round(time.Millisecond), stopTook.Round(time.Millisecond), before.rows)

	producer.mustSucceed(time.Minute)
	restart := st.start(t, "run", append([]string{"--available-now"}, runArgs...)...)
	// Recovery must not wait for the dead worker's session: the restart gets its
	// partitions before the session the killed worker left behind would have expired (the
	// drain that follows is as long as the backlog and the machine make it, and is not
	// timed).
	expiry := time.Until(signalled.Add(session))
	if expiry < 10*time.Second {
		t.Fatalf("the checks before the restart took %s: too little of the %s session left to tell", time.Since(signalled), session)
	}
	restart.waitForLine(&restart.stderr, "partitions assigned", expiry)
	assignedAfter := time.Since(restart.started)
	restart.mustSucceed(2 * time.Minute)
	// The restart resumes from the table's offsets: it reads exactly what is missing.
	if got := streamed(t, restart.stdout.String()); got != n-before.rows {
		t.Errorf("restart streamed %d records, want %d (= %d - %d already in the table)", got, n-before.rows, n, before.rows)
	}
	t.Logf("restart had its partitions %s after it started (session timeout %s)", assignedAfter.Round(time.Millisecond), session)
	st.verifyExactlyOnce(t, n, 0)
	after := st.scanTable(t)
	after.requireExactly(t, n)
	after.checkOffsetsHistory(t, st.pipeline, n)
}

// TestEndToEndFaultPoints: for every fault point, a run that dies like kill -9 there on
// its 2nd batch, then a restart without the fault, end with every record in the ledger
// once; the restart reads exactly what the table does not hold yet.
func TestEndToEndFaultPoints(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	const n = 3000
	brokers := startBroker(t, 3)
	for _, point := range []string{"after-fetch", "after-stage", "after-commit", "after-advised", "in-rebalance"} {
		t.Run(point, func(t *testing.T) {
			name := strings.ReplaceAll(point, "-", "_")
			st := newStack(t, brokers)
			// A topic per point: the generator numbers transaction ids from 0 in every
			// produce, so points sharing a topic would see each other's ids as duplicates.
			st.topic, st.table, st.pipeline = "fault_"+name, "demo.fault_"+name, "fault-"+point
			runArgs := []string{"--trigger", "200ms", "--max-batch-records", "500", "--worker-id", "w1"}
			if point == "in-rebalance" {
				faultInRebalance(t, st, n, runArgs)
			} else {
				faultInBatch(t, st, point, n, runArgs)
			}

			before := st.scanTable(t)
			before.requireExactly(t, before.rows)
			out := st.run(t, "run", append([]string{"--available-now"}, runArgs...)...)
			if got := streamed(t, out); got != n-before.rows {
				t.Errorf("restart streamed %d records, want %d (= %d - %d already in the table)", got, n-before.rows, n, before.rows)
			}
			st.verifyExactlyOnce(t, n, 0)
			after := st.scanTable(t)
			after.requireExactly(t, n)
			after.checkOffsetsHistory(t, st.pipeline, n)
		})
	}
}

// faultInBatch runs the pipeline with --fault point@2 while records arrive, so that it
// has a 2nd batch to die in, and checks that it died by SIGKILL at that point.
func faultInBatch(t *testing.T, st stack, point string, n int, runArgs []string) {
	t.Helper()
	// The run starts first and the records trickle in (1500/s over 2 s, against a 200 ms
	// trigger): several batches, whatever bounds a batch otherwise.
	faulty := st.start(t, "run", append([]string{"--fault", point + "@2"}, runArgs...)...)
	faulty.waitForLine(&faulty.stderr, "streaming", 30*time.Second)
	st.run(t, "produce", "--count", fmt.Sprint(n), "--seed", "5", "--rate", "1500")
	requireFaultKill(t, faulty, point)
}

// faultInRebalance reaches the in-rebalance point a 2nd time, which one worker alone
// never does: worker w1 takes all partitions (1st assignment) and commits; a 2nd worker
// of the same pipeline joins, takes a partition, finishes (--available-now) and leaves;
// w1 is assigned that partition back (2nd time) and dies there.
func faultInRebalance(t *testing.T, st stack, n int, runArgs []string) {
	t.Helper()
	st.run(t, "produce", "--count", fmt.Sprint(n), "--seed", "5")
	faulty := st.start(t, "run", append([]string{"--fault", "in-rebalance@2"}, runArgs...)...)
	faulty.waitForLine(&faulty.stderr, "batch committed", 30*time.Second)
	// No --worker-id: a dynamic member leaves the group when it stops, which is what
	// hands its partition back to w1 at once.
	helper := st.start(t, "run", "--available-now", "--trigger", "200ms")
	helper.mustSucceed(time.Minute)
	requireFaultKill(t, faulty, "in-rebalance")
}

// requireFaultKill waits for p and fails the test unless it died by SIGKILL at point.
func requireFaultKill(t *testing.T, p *proc, point string) {
	t.Helper()
	err := p.wait(time.Minute)
	if s, ok := killedBy(err); !ok || s != syscall.SIGKILL {
		t.Fatalf("run with --fault %s@…: %v, want killed by SIGKILL", point, err)
	}
	p.waitForLine(&p.stderr, "point="+point, 0)
}

// kcatTransaction is a transaction as the seed's producer writes it.
type kcatTransaction struct {
	TransactionID   string `json:"transaction_id"`
	AccountFrom     string `json:"account_from"`
	AccountTo       string `json:"account_to"`
	Amount          string `json:"amount"`
	Currency        string `json:"currency"`
	TransactionType string `json:"transaction_type"`
	Timestamp       string `json:"timestamp"`
}

// TestEndToEndKcat: messages produced by an independent client (kcat, librdkafka), 500
// valid and 3 malformed, become 500 ledger rows and 3 rejects, exactly once; kcat reads the
// topic back with read_committed and counts the same 503 messages.
func TestEndToEndKcat(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not on PATH (Debian/Ubuntu package kcat; CI installs it): skipping the kcat interop test")
	}
	const n, bad = 500, 3
	st := newStack(t, startBroker(t, 3))

	// kcat -K: splits each line at the first ':' into key and value. JSON has colons, but
	// keys do not, so the split is unambiguous.
	var in strings.Builder
	types := []string{"transfer", "payment", "withdrawal", "deposit"}
	currencies := []string{"USD", "EUR", "GBP"}
	base := time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC)
	for i := range n {
		tx := kcatTransaction{
			TransactionID:   fmt.Sprintf("KCAT%08d", i),
			AccountFrom:     fmt.Sprintf("ACC%d", 1000+i*7%9000),
			AccountTo:       fmt.Sprintf("ACC%d", 1000+i*13%9000),
			Amount:          fmt.Sprintf("%d.%02d", 10+i*37%9990, i%100),
			Currency:        currencies[i%len(currencies)],
			TransactionType: types[i%len(types)],
			Timestamp:       base.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000000"),
		}
		v, err := json.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&in, "%s:%s\n", tx.TransactionID, v)
	}
	// Three rejects of different kinds: not JSON, a missing field, an amount that would
	// need rounding.
	in.WriteString("KCATBAD1:this is not json\n")
	in.WriteString(`KCATBAD2:{"transaction_id":"KCATBAD2","account_from":"ACC1000"}` + "\n")
	in.WriteString(`KCATBAD3:{"transaction_id":"KCATBAD3","account_from":"ACC1000","account_to":"ACC2000","amount":"10.005","currency":"USD","transaction_type":"payment","timestamp":"2025-01-16T10:00:00"}` + "\n")

	// murmur2_random is the Java client's (and franz-go's) partitioner; librdkafka's
	// default hashes keys elsewhere.
	prod := exec.Command(kcat, "-P", "-b", st.brokers, "-t", st.topic, "-K", ":",
		"-X", "partitioner=murmur2_random")
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	out := st.run(t, "run", "--available-now", "--trigger", "1s")
	if got := streamed(t, out); got != n+bad {
		t.Errorf("run streamed %d records, want %d", got, n+bad)
	}
	st.verifyExactlyOnce(t, n, bad)
	sc := st.scanTable(t)
	sc.requireExactly(t, n)
	sc.checkOffsetsHistory(t, st.pipeline, n+bad)

	cons := exec.Command(kcat, "-C", "-b", st.brokers, "-t", st.topic, "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%k\n")
	keysOut, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	keys := map[string]int{}
	lines := 0
	for line := range strings.Lines(string(keysOut)) {
		keys[strings.TrimSpace(line)]++
		lines++
	}
	if lines != n+bad || len(keys) != n+bad {
		t.Errorf("kcat read %d messages with %d distinct keys, want %d of each", lines, len(keys), n+bad)
	}
}

// TestDemo: the one-command demo runs the whole pipeline and its validations pass; run
// again on the same data directory, it adds 200 new transactions (not 200 duplicates) and
// says what became of them.
func TestDemo(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	dir := t.TempDir()
	out := runCmd(t, "demo", "demo", "--duration", "8s", "--trigger", "2s", "--data-dir", dir)
	for _, want := range []string{
		"Transaction Ledger Summary:",
		"Duplicate Check: 0 duplicates found",
		"Latest 10 Transactions:",
		"This run: 200 transactions produced, 200 records read, 200 rows committed, 0 rejected",
		"PASS exactly_once",
		"All validations passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	out = runCmd(t, "demo again", "demo", "--duration", "8s", "--trigger", "2s", "--data-dir", dir)
	for _, want := range []string{
		"The data directory already holds a ledger of 200 rows",
		"ids from TXN00000200",
		"This run: 200 transactions produced, 200 records read, 200 rows committed, 0 rejected",
		"Processed 400 transactions",
		"All validations passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second demo on %s lacks %q:\n%s", dir, want, out)
		}
	}
}
