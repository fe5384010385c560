package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/metrics"
)

// TestEndToEndPartitionScope: two workers with `--index-scope partition` (each indexes
// only its own partitions' ids), a rebalance that moves partitions written by one worker
// to the other, and every transaction re-sent on its own key after it: each copy is
// refused as a duplicate by the worker that now owns the partition, which back-filled
// that partition's ids from the ledger before classifying its records. verify: nothing
// lost, nothing doubled.
func TestEndToEndPartitionScope(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	const first, again, more = 6000, 6000, 2000
	st := newStack(t, startBroker(t, 4))
	st.run(t, "produce", "--count", fmt.Sprint(first), "--seed", "5", "--first-id", "0")
	scope := []string{"--index-scope", "partition", "--trigger", "500ms", "--metrics-listen", "127.0.0.1:0"}

	// a alone takes every partition and writes them all.
	out := st.run(t, "run", append([]string{"--available-now", "--worker-id", "a"}, scope...)...)
	if got := streamed(t, out); got != first {
		t.Fatalf("a streamed %d records, want %d", got, first)
	}

	// Two streaming workers: b joins after a, and the group moves some of a's partitions
	// to b, whose index has never seen them.
	a := st.start(t, "run", append([]string{"--worker-id", "a"}, scope...)...)
	a.waitForLine(&a.stderr, "partitions assigned", time.Minute)
	b := st.start(t, "run", append([]string{"--worker-id", "b"}, scope...)...)
	b.waitForLine(&b.stderr, "partitions assigned", 2*time.Minute)
	bases := []string{metricsBase(t, a), metricsBase(t, b)}

	// Every transaction again, on its own key (same content: duplicates), and new ones.
	st.run(t, "produce", "--count", fmt.Sprint(again), "--seed", "5", "--first-id", "0")
	st.run(t, "produce", "--count", fmt.Sprint(more), "--seed", "6")

	// Both workers committed every new record: the new transactions to the ledger, every
	// copy to the rejects table.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var accepted, rejected float64
		for _, base := range bases {
			m := scrapeMetrics(t, base)
			accepted += m["ledgerstream_records_accepted_total"]
			for k, v := range m {
				if strings.HasPrefix(k, "ledgerstream_records_rejected_total{") {
					rejected += v
				}
			}
		}
		if accepted >= more && rejected >= again {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workers committed %v rows and %v rejects in 3 minutes, want %d and %d\na: %s\nb: %s",
				accepted, rejected, more, again, tail(a.stderr.String(), 1500), tail(b.stderr.String(), 1500))
		}
		time.Sleep(500 * time.Millisecond)
	}
	a.signal(syscall.SIGTERM)
	b.signal(syscall.SIGTERM)
	for _, p := range []*proc{a, b} {
		if err := p.wait(time.Minute); err != nil {
			t.Fatalf("worker after SIGTERM: %v\n%s", err, tail(p.stderr.String(), 2000))
		}
	}

	// b covered partitions a had written: a back-fill from the ledger, with ids in it.
	covered := regexp.MustCompile(`partition covered"? partition=(\S+) watermark=(\d+) synced=\d+ ids=(\d+)`).FindAllStringSubmatch(b.stderr.String(), -1)
	backfilled := 0
	for _, m := range covered {
		if ids, _ := strconv.Atoi(m[3]); ids > 0 {
			backfilled++
		}
	}
	if backfilled == 0 {
		t.Fatalf("b back-filled no partition from the ledger (covered: %v): the test moved nothing\n%s", covered, tail(b.stderr.String(), 2000))
	}
	// Each worker indexed only its own partitions' ids.
	for name, p := range map[string]*proc{"a": a, "b": b} {
		line := p.waitForLine(&p.stderr, "transaction id index closed", 0)
		if !strings.Contains(line, "scope=partition") {
			t.Errorf("worker %s: %s", name, line)
		}
	}

	// Nothing was left for a last run: the two workers refused every copy themselves.
	final := st.run(t, "run", append([]string{"--available-now", "--worker-id", "a"}, scope...)...)
	if got := streamed(t, final); got != 0 {
		t.Errorf("a last run streamed %d records, want 0", got)
	}
	st.verifyExactlyOnce(t, first+more, again)
	if dups := st.rejectsList(t, "--reason", "duplicate"); dups.Total != again {
		t.Errorf("rejects list --reason duplicate: %d, want %d", dups.Total, again)
	}
	st.scanTable(t).requireExactly(t, first+more)
}

// metricsBase is the address of a worker's metrics endpoint, from its log.
func metricsBase(t *testing.T, p *proc) string {
	t.Helper()
	line := p.waitForLine(&p.stderr, "status page", time.Minute)
	m := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	if m == "" {
		t.Fatalf("no address in %q", line)
	}
	return m
}

// scrapeMetrics is one scrape of a worker's metrics, by series.
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	samples, err := metrics.Parse(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return samples
}
