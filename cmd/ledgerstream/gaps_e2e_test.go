package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// The pipeline's first assumption broken on purpose, through the real broker (DeleteRecords
// as retention would, a topic deleted and created again): every case ends in a refusal that
// says what happened and what to do, or in a recorded gap, and verify names it.

// gapsVerify runs verify --json, which must exit as wantPass says, and returns the output.
func gapsVerify(t *testing.T, st stack, wantPass bool) (string, map[string]any) {
	t.Helper()
	p := st.start(t, "verify", "--json")
	err := p.wait(2 * time.Minute)
	if (err == nil) != wantPass {
		t.Fatalf("verify: exit %v, want pass=%v\n%s\n%s", err, wantPass, tail(p.stdout.String(), 4000), tail(p.stderr.String(), 2000))
	}
	var doc map[string]any
	if jerr := json.Unmarshal([]byte(p.stdout.String()), &doc); jerr != nil {
		t.Fatalf("verify --json: %v\n%s", jerr, p.stdout.String())
	}
	return p.stdout.String(), doc
}

// deleteBefore moves every partition's log start to off.
func deleteBefore(t *testing.T, st stack, parts int32, off int64) {
	t.Helper()
	before := map[int32]int64{}
	for p := range parts {
		before[p] = off
	}
	if err := kafka.DeleteRecords(context.Background(), kafka.ClientConfig{Brokers: []string{st.brokers}}, st.topic, before); err != nil {
		t.Fatal(err)
	}
}

// tableOffsets is the ledger's offsets map, read through verify's JSON.
func tableOffsets(t *testing.T, doc map[string]any) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	rec, _ := doc["reconciliation"].(map[string]any)
	parts, _ := rec["partitions"].([]any)
	for _, p := range parts {
		m := p.(map[string]any)
		out[m["partition"].(string)] = int64(m["committed_offset"].(float64))
	}
	return out
}

func TestEndToEndRetentionGap(t *testing.T) {
	t.Parallel()
	st := newStack(t, startBroker(t, 3))
	// 1200 transactions with distinct ids, about 400 a partition; one batch of 300 is
	// committed (the worker dies right after it), so the table stands below offset 300 of
	// each partition (at 0, outside its offsets map, for a partition the batch did not reach).
	st.run(t, "produce", "--count", "1200", "--seed", "21")
	first := st.start(t, "run", "--available-now", "--trigger", "1s", "--max-batch-records", "300",
		"--worker-id", "w1", "--fault", "after-advised")
	requireFaultKill(t, first, "after-advised")
	_, doc := gapsVerify(t, st, true)
	before := tableOffsets(t, doc)
	var want, gaps int64
	for _, p := range []string{"financial_transactions/0", "financial_transactions/1", "financial_transactions/2"} {
		if off := before[p]; off < 300 {
			want += 300 - off
			gaps++
		}
	}
	if gaps == 0 {
		t.Fatalf("the table is past 300 everywhere (%v): no gap to test", before)
	}
	deleteBefore(t, st, 3, 300) // as retention would: records between the table's offsets and 300 were never read

	// Default: refuse, naming the partition, the range and the count, and what to do.
	refused := st.start(t, "run", "--available-now", "--trigger", "1s", "--worker-id", "w1")
	if err := refused.wait(2 * time.Minute); err == nil {
		t.Fatalf("run went on past deleted records:\n%s", refused.stdout.String())
	}
	for _, want := range []string{"were deleted from the topic before the pipeline read them", "--on-gap record"} {
		if !strings.Contains(refused.stderr.String(), want) {
			t.Errorf("run's error lacks %q:\n%s", want, tail(refused.stderr.String(), 3000))
		}
	}
	t.Logf("run (default --on-gap fail) said: %s", gapsLastLine(refused.stderr.String()))
	out, _ := gapsVerify(t, st, false)
	if !strings.Contains(out, "were lost before processing") {
		t.Errorf("verify does not name the lost records:\n%s", out)
	}
	p := st.start(t, "verify")
	_ = p.wait(2 * time.Minute)
	if !strings.Contains(p.stdout.String(), "lost before processing, NOT recorded") {
		t.Errorf("verify's text:\n%s", p.stdout.String())
	}
	t.Logf("verify after the refusal:\n%s", p.stdout.String())

	// --on-gap record: one gap row per partition, and verify accounts for every offset.
	// A worker killed right after the ledger commit that moved past the gaps leaves the
	// rejects table behind; the restart records each gap once.
	killed := st.start(t, "run", "--available-now", "--trigger", "1s", "--on-gap", "record", "--worker-id", "w1", "--fault", "after-commit")
	requireFaultKill(t, killed, "after-commit")
	recorded := st.run(t, "run", "--available-now", "--trigger", "1s", "--on-gap", "record", "--worker-id", "w1")
	if !strings.Contains(recorded, fmt.Sprintf("Recorded %d gaps in the rejects table: %d offsets lost", gaps, want)) {
		t.Errorf("run --on-gap record printed:\n%s", recorded)
	}
	t.Logf("run --on-gap record printed: %s", recorded)
	out, doc = gapsVerify(t, st, true)
	var lost float64
	for _, pp := range doc["reconciliation"].(map[string]any)["partitions"].([]any) {
		m := pp.(map[string]any)
		lost += m["lost_recorded"].(float64)
		if m["lost_unrecorded"].(float64) != 0 {
			t.Errorf("partition %v: unrecorded loss after --on-gap record", m["partition"])
		}
	}
	if int64(lost) != want {
		t.Errorf("verify counts %v offsets lost and recorded, want %d\n%s", lost, want, out)
	}
	rows := st.run(t, "rejects", "list", "--reason", "lost_before_processing")
	if n := strings.Count(rows, "lost_before_processing"); n < int(gaps) {
		t.Errorf("rejects list shows %d gap rows:\n%s", n, rows)
	}
	// A gap holds no message: republishing it sends nothing (its empty value would be a
	// tombstone).
	if out := st.run(t, "rejects", "republish", "--reason", "lost_before_processing", "--dry-run"); !strings.Contains(out, "nothing to send") ||
		!strings.Contains(out, "Dry run: 0 messages") {
		t.Errorf("rejects republish of gaps:\n%s", out)
	}
	p = st.start(t, "verify")
	if err := p.wait(2 * time.Minute); err != nil {
		t.Fatalf("verify: %v\n%s", err, p.stdout.String())
	}
	t.Logf("verify after --on-gap record:\n%s", p.stdout.String())
}

func TestEndToEndTopicRecreated(t *testing.T) {
	t.Parallel()
	st := newStack(t, startBroker(t, 3))
	st.run(t, "produce", "--count", "600", "--seed", "31")
	st.run(t, "run", "--available-now", "--trigger", "1s")
	cc := kafka.ClientConfig{Brokers: []string{st.brokers}}
	for _, tc := range []struct {
		name       string
		partitions int32
		produce    int
	}{
		{"same partitions, fewer records", 3, 300},
		{"fewer partitions", 2, 0},
	} {
		if err := kafka.RecreateTopic(context.Background(), cc, st.topic, tc.partitions); err != nil {
			t.Fatal(err)
		}
		if tc.produce > 0 {
			st.run(t, "produce", "--count", fmt.Sprint(tc.produce), "--seed", "32")
		}
		refused := st.start(t, "run", "--available-now", "--trigger", "1s")
		if err := refused.wait(2 * time.Minute); err == nil {
			t.Fatalf("%s: run went on with a re-created topic:\n%s", tc.name, refused.stdout.String())
		}
		for _, want := range []string{"was deleted and created again", "new pipeline into a new table"} {
			if !strings.Contains(refused.stderr.String(), want) {
				t.Errorf("%s: run's error lacks %q:\n%s", tc.name, want, tail(refused.stderr.String(), 3000))
			}
		}
		t.Logf("%s: run said: %s", tc.name, gapsLastLine(refused.stderr.String()))
		p := st.start(t, "verify")
		if err := p.wait(2 * time.Minute); err == nil {
			t.Fatalf("%s: verify passed against a re-created topic:\n%s", tc.name, p.stdout.String())
		}
		if !strings.Contains(p.stdout.String(), "topic re-created") || !strings.Contains(p.stdout.String(), "deleted and created again") {
			t.Errorf("%s: verify:\n%s", tc.name, p.stdout.String())
		}
		t.Logf("%s: verify said:\n%s", tc.name, p.stdout.String())
	}
	// Nothing of the new topics reached the ledger.
	var v verifyOutput
	p := st.start(t, "verify", "--table-only", "--json")
	_ = p.wait(time.Minute)
	if err := json.Unmarshal([]byte(p.stdout.String()), &v); err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Checks {
		if c.Name == report.CheckRowsPresent && c.Figure != 600 {
			t.Errorf("the ledger holds %d rows, want the old topic's 600", c.Figure)
		}
	}
}

// gapsLastLine is the last line of a process's output: the error it exited with.
func gapsLastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
