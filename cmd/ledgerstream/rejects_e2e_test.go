package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/rejects"
)

// expectedFates replays the generator `produce` uses and counts what each message must
// become: "" a ledger row, else its reject reason.
func expectedFates(n int, seed int64, dups, malformed float64) map[ledger.Reason]int64 {
	gen := ledger.NewGenerator(seed, ledger.GeneratorOptions{Duplicates: dups, Malformed: malformed})
	want := map[ledger.Reason]int64{}
	for range n {
		want[gen.Next(time.Now()).Want]++
	}
	return want
}

// rejectsListOutput is the part of `rejects list --json` the test reads.
type rejectsListOutput struct {
	Total   int `json:"total"`
	Rejects []struct {
		Position string `json:"position"`
		Reason   string `json:"reason"`
		Headers  []struct {
			Key   string `json:"key"`
			Value *struct {
				Text string `json:"text"`
			} `json:"value"`
		} `json:"headers"`
	} `json:"rejects"`
}

// rejectsArgs is the command line of `rejects args...` on this stack.
func (s stack) rejectsArgs(args ...string) []string {
	return append(append([]string{"rejects"}, args...),
		"--brokers", s.brokers, "--topic", s.topic, "--table", s.table, "--data-dir", s.dataDir)
}

func (s stack) rejectsList(t *testing.T, extra ...string) rejectsListOutput {
	t.Helper()
	out := runCmd(t, "rejects list", s.rejectsArgs(append([]string{"list", "--json", "--limit", "0"}, extra...)...)...)
	var l rejectsListOutput
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("rejects list --json: %v\n%s", err, tail(out, 2000))
	}
	return l
}

// TestEndToEndRejects: a stream of valid, duplicate, conflicting and malformed messages of
// every kind ends with every message in exactly one table with the reason the generator
// intended, through a kill -9 between a ledger commit and its rejects commit and a
// restart; no transaction_id is twice in the ledger; `rejects list/show/republish` work,
// and a republished message goes through the pipeline again.
func TestEndToEndRejects(t *testing.T) {
	t.Parallel()
	const n = 20000
	want := expectedFates(n, 3, 0.05, 0.05)
	wantRows := want[""]
	wantRejected := int64(n) - wantRows
	for _, r := range []ledger.Reason{ledger.ReasonDuplicate, ledger.ReasonConflictingDuplicate, ledger.ReasonMalformedJSON, ledger.ReasonTombstone} {
		if want[r] == 0 {
			t.Fatalf("the generator made no %s message: the test would prove nothing about it (%v)", r, want)
		}
	}

	st := newStack(t, startBroker(t, 3))
	st.run(t, "produce", "--count", fmt.Sprint(n), "--duplicates", "0.05", "--malformed", "0.05", "--seed", "3")

	// Die like kill -9 right after the 2nd ledger commit, before that batch's rejects
	// commit: the rejects table lags the ledger, and a restart must fill it exactly.
	runArgs := []string{"--available-now", "--trigger", "1s", "--max-batch-records", "4000", "--worker-id", "w1"}
	faulty := st.start(t, "run", append([]string{"--fault", "after-commit@2"}, runArgs...)...)
	requireFaultKill(t, faulty, "after-commit")
	restart := st.start(t, "run", runArgs...)
	restart.mustSucceed(2 * time.Minute)
	// The restarted worker reuses its index file: it opens with the ids of the batches
	// committed before the kill and reads only what is new.
	line := restart.waitForLine(&restart.stderr, "transaction id index opened", 0)
	if m := regexp.MustCompile(`ids=(\d+)`).FindStringSubmatch(line); m == nil || m[1] == "0" {
		t.Errorf("restart opened an empty index: %s", line)
	}
	if strings.Contains(restart.stderr.String(), "rebuilt from the ledger") {
		t.Errorf("restart rebuilt the index from a full scan")
	}

	st.verifyExactlyOnce(t, wantRows, wantRejected)
	st.scanTable(t).requireExactly(t, wantRows) // distinct ids, hashes and positions

	// The report counts the rejects by reason: exactly the generator's intentions.
	var rep struct {
		Rows    int64 `json:"rows"`
		Rejects *struct {
			Total    int64 `json:"total"`
			ByReason []struct {
				Reason string `json:"reason"`
				Count  int64  `json:"count"`
			} `json:"by_reason"`
		} `json:"rejects"`
	}
	repOut := st.run(t, "report", "--json")
	if err := json.Unmarshal([]byte(repOut), &rep); err != nil || rep.Rejects == nil {
		t.Fatalf("report --json: %v\n%s", err, tail(repOut, 2000))
	}
	got := map[ledger.Reason]int64{"": rep.Rows}
	for _, r := range rep.Rejects.ByReason {
		got[ledger.Reason(r.Reason)] = r.Count
	}
	if !maps.Equal(got, want) {
		t.Errorf("fates by reason:\n got %v\nwant %v", got, want)
	}
	if text := st.run(t, "report"); !strings.Contains(text, fmt.Sprintf("Rejects by Reason: %d rejected", wantRejected)) {
		t.Errorf("report text has no rejects table:\n%s", tail(text, 1500))
	}

	// rejects list and show.
	dups := st.rejectsList(t, "--reason", "duplicate")
	if int64(dups.Total) != want[ledger.ReasonDuplicate] || len(dups.Rejects) != dups.Total {
		t.Fatalf("rejects list --reason duplicate: %d (%d rows), want %d", dups.Total, len(dups.Rejects), want[ledger.ReasonDuplicate])
	}
	pos := []string{dups.Rejects[0].Position, dups.Rejects[1].Position}
	show := runCmd(t, "rejects show", st.rejectsArgs("show", pos[0])...)
	for _, s := range []string{"position:        " + pos[0], "reason:          duplicate", "was already accepted at", `"transaction_id"`} {
		if !strings.Contains(show, s) {
			t.Errorf("rejects show %s lacks %q:\n%s", pos[0], s, show)
		}
	}
	if p := startProc(t, "rejects show", st.rejectsArgs("show", "no_such_topic/0/1")...); p.wait(time.Minute) == nil {
		t.Error("rejects show of a position without a reject exited 0")
	}

	// republish: a dry run sends nothing; then two duplicates go to the topic again, and
	// the pipeline refuses them again, as duplicates, with the header naming their origin.
	dry := runCmd(t, "rejects republish", st.rejectsArgs("republish", "--reason", "tombstone", "--dry-run")...)
	if !strings.Contains(dry, fmt.Sprintf("Dry run: %d messages would be sent", want[ledger.ReasonTombstone])) {
		t.Errorf("republish --dry-run:\n%s", dry)
	}
	sent := runCmd(t, "rejects republish", st.rejectsArgs("republish", pos[0], pos[1])...)
	if !strings.Contains(sent, "Re-published 2 of 2 messages") || strings.Count(sent, "sent ") != 2 {
		t.Errorf("republish:\n%s", sent)
	}
	st.run(t, "run", runArgs...)
	st.verifyExactlyOnce(t, wantRows, wantRejected+2)
	again := st.rejectsList(t, "--reason", "duplicate")
	var from []string
	for _, r := range again.Rejects {
		for _, h := range r.Headers {
			if h.Key == rejects.RepublishedHeader && h.Value != nil {
				from = append(from, h.Value.Text)
			}
		}
	}
	slices.Sort(from)
	slices.Sort(pos)
	if !slices.Equal(from, pos) || int64(again.Total) != want[ledger.ReasonDuplicate]+2 {
		t.Errorf("after republishing %v: %d duplicates, republished from %v", pos, again.Total, from)
	}
}
