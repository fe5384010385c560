package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// historyOutput is the part of `history --json` the tests read.
type historyOutput struct {
	Snapshots []struct {
		SnapshotID   int64     `json:"snapshot_id"`
		ParentID     int64     `json:"parent_id"`
		CommittedAt  time.Time `json:"committed_at"`
		Kind         string    `json:"kind"`
		Table        string    `json:"table"`
		Pipeline     string    `json:"pipeline"`
		Batch        int64     `json:"batch"`
		RowsAdded    int64     `json:"rows_added"`
		RejectsAdded int64     `json:"rejects_added"`
		FilesAdded   int64     `json:"files_added"`
		Offsets      []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			From      *int64 `json:"from"`
			To        int64  `json:"to"`
		} `json:"offsets_moved"`
	} `json:"snapshots"`
	Complete bool `json:"complete"`
	Total    int  `json:"total"`
}

// findOutput is the part of `history --transaction --json` the tests read.
type findOutput struct {
	Findings []struct {
		Query  string `json:"query"`
		Ledger []struct {
			Origin struct {
				SnapshotID int64  `json:"snapshot_id"`
				Kind       string `json:"kind"`
				Pipeline   string `json:"pipeline"`
				Batch      int64  `json:"batch"`
			} `json:"origin"`
			TransactionID string `json:"transaction_id"`
			Amount        string `json:"amount"`
			Position      string `json:"source_position"`
		} `json:"ledger"`
		Rejects []struct {
			Origin struct {
				SnapshotID int64 `json:"snapshot_id"`
				Batch      int64 `json:"batch"`
			} `json:"origin"`
			Position string `json:"source_position"`
			Reason   string `json:"reason"`
		} `json:"rejects"`
	} `json:"findings"`
}

// TestAsOfAndHistory: a ledger that grows in three runs (each adds new transactions,
// duplicates of earlier ones and malformed messages). Afterwards `report --as-of` at the
// end of each run, by time and by snapshot id, prints exactly what `report` printed then;
// `verify --as-of` reconciles up to the offsets of that moment; `history` accounts for
// every row and reject; `history --transaction` names the batch that brought a
// transaction in (the snapshot before it does not hold it, that one does); and a moment
// before the first snapshot, or expired by maintenance, is an error naming the oldest
// moment still available.
func TestAsOfAndHistory(t *testing.T) {
	t.Parallel()
	st := newStack(t, startBroker(t, 3))
	type moment struct {
		at       time.Time
		report   string
		tableChk string
		head     int64
	}
	var moments []moment
	var afterFirstProduce time.Time
	for i, count := range []int{300, 600, 900} {
		// Each produce starts at TXN00000000 (--first-id 0: re-sending on purpose, where a
		// plain produce would continue after the topic's highest id): run i brings 300 new
		// transactions, and duplicates of the earlier ones go to the rejects table.
		st.run(t, "produce", "--count", fmt.Sprint(count), "--seed", "11", "--malformed", "0.02", "--first-id", "0")
		if i == 0 {
			afterFirstProduce = time.Now()
		}
		st.run(t, "run", "--available-now", "--trigger", "1s", "--max-batch-records", "200")
		time.Sleep(5 * time.Millisecond) // the next run's snapshots are stamped strictly later
		moments = append(moments, moment{at: time.Now().UTC(), report: st.run(t, "report", "--json"),
			tableChk: st.run(t, "verify", "--table-only", "--json")})
		time.Sleep(5 * time.Millisecond)
	}
	// The head at each moment, from the history.
	var h historyOutput
	mustJSON(t, st.run(t, "history", "--json", "--limit", "0"), &h)
	for i := range moments {
		for _, s := range h.Snapshots { // newest first
			if !s.CommittedAt.After(moments[i].at) {
				moments[i].head = s.SnapshotID
				break
			}
		}
	}

	for i, m := range moments {
		for _, asOf := range []string{m.at.Format(time.RFC3339Nano), fmt.Sprint(m.head)} {
			if got := st.run(t, "report", "--json", "--as-of", asOf); got != m.report {
				t.Errorf("report --as-of %s (end of run %d) differs from the report printed then:\n--- then\n%s\n--- as of\n%s",
					asOf, i+1, tail(m.report, 1500), tail(got, 1500))
			}
		}
		if got := st.run(t, "verify", "--table-only", "--json", "--as-of", m.at.Format(time.RFC3339Nano)); got != m.tableChk {
			t.Errorf("verify --table-only --as-of (end of run %d) = %s, want %s", i+1, got, m.tableChk)
		}
	}
	for i := 1; i < len(moments); i++ {
		if moments[i].report == moments[i-1].report {
			t.Fatalf("runs %d and %d end with the same report: the ledger did not grow", i, i+1)
		}
	}

	// verify with the topic as of the first run: the later records are pending, and the
	// reconciliation passes bounded by the first run's offsets.
	var v verifyOutput
	out := runCmdExit(t, 0, st.args("verify", "--json", "--as-of", moments[0].at.Format(time.RFC3339Nano))...)
	mustJSON(t, out, &v)
	var committed, pending int64
	for _, p := range v.Reconciliation.Partitions {
		committed += p.Committed
		pending += p.Pending
	}
	if committed != 300 || pending != 600+900 {
		t.Errorf("verify --as-of end of run 1: committed offsets sum to %d, %d records pending; want 300 and 1500\n%s", committed, pending, out)
	}

	// A moment before the first snapshot names the oldest available.
	errOut := runCmdExit(t, 1, st.args("report", "--as-of", afterFirstProduce.Add(-time.Hour).Format(time.RFC3339))...)
	if !strings.Contains(errOut, "has no snapshot at or before") || !strings.Contains(errOut, "the oldest moment available is") {
		t.Errorf("report --as-of before the first snapshot: %q, want it to name the oldest moment available", errOut)
	}
	errOut = runCmdExit(t, 1, st.args("report", "--as-of", "12345")...)
	if !strings.Contains(errOut, "has no snapshot 12345") {
		t.Errorf("report --as-of 12345: %q", errOut)
	}

	// history accounts for every row and every reject.
	var rows, rejects int64
	for _, s := range h.Snapshots {
		rows += s.RowsAdded
		rejects += s.RejectsAdded
		if s.Kind != "pipeline" || s.Pipeline != st.pipeline || s.Table != "ledger" {
			t.Errorf("snapshot %d: by %s %q (%s), want the pipeline's", s.SnapshotID, s.Kind, s.Pipeline, s.Table)
		}
	}
	var last struct {
		Rows    int64 `json:"rows"`
		Rejects struct {
			Total int64 `json:"total"`
		} `json:"rejects"`
	}
	mustJSON(t, moments[2].report, &last)
	if rows != last.Rows || rejects != last.Rejects.Total || !h.Complete || h.Total != len(h.Snapshots) {
		t.Errorf("history: %d snapshots add %d rows and %d rejects (complete %v); the report has %d rows and %d rejects",
			len(h.Snapshots), rows, rejects, h.Complete, last.Rows, last.Rejects.Total)
	}

	// Ids 0..299 came in during run 1, 300..599 during run 2, 600..899 during run 3.
	var f findOutput
	mustJSON(t, st.run(t, "history", "--json", "--transaction", "TXN00000450"), &f)
	if len(f.Findings) != 1 || len(f.Findings[0].Ledger) != 1 {
		t.Fatalf("history --transaction TXN00000450: %+v", f)
	}
	got := f.Findings[0].Ledger[0]
	var originParent int64
	found := false
	for _, s := range h.Snapshots {
		if s.SnapshotID != got.Origin.SnapshotID {
			continue
		}
		found, originParent = true, s.ParentID
		if s.Batch != got.Origin.Batch {
			t.Errorf("origin batch %d, history says snapshot %d is batch %d", got.Origin.Batch, s.SnapshotID, s.Batch)
		}
		if !s.CommittedAt.After(moments[0].at) || s.CommittedAt.After(moments[1].at) {
			t.Errorf("TXN00000450's origin was committed at %s, not during the second run (%s to %s)", s.CommittedAt, moments[0].at, moments[1].at)
		}
	}
	if !found || got.Origin.Kind != "pipeline" || got.TransactionID != "TXN00000450" {
		t.Fatalf("history --transaction TXN00000450: origin %+v not a pipeline snapshot of the history", got.Origin)
	}
	// Independently of the offsets maps: the snapshot before the origin does not hold it, the
	// origin does.
	runCmdExit(t, 0, st.args("history", "--transaction", "TXN00000450", "--as-of", fmt.Sprint(got.Origin.SnapshotID))...)
	notThere := runCmdExit(t, 1, st.args("history", "--transaction", "TXN00000450", "--as-of", fmt.Sprint(originParent))...)
	if !strings.Contains(notThere, "in neither the ledger nor the rejects table") {
		t.Errorf("as of the origin's parent: %q", notThere)
	}

	// A rejected record: a duplicate of TXN00000010 from the second run.
	mustJSON(t, st.run(t, "history", "--json", "--transaction", "TXN00000010"), &f)
	if len(f.Findings[0].Ledger) != 1 || len(f.Findings[0].Rejects) != 2 {
		t.Fatalf("history --transaction TXN00000010: want its ledger row and its two rejected copies: %+v", f)
	}
	for _, r := range f.Findings[0].Rejects {
		if r.Origin.SnapshotID == 0 || !strings.Contains(r.Reason, "duplicate") {
			t.Errorf("rejected copy %s: origin %+v, reason %s", r.Position, r.Origin, r.Reason)
		}
		mustJSON(t, st.run(t, "history", "--json", "--position", r.Position), &f)
		if len(f.Findings) != 1 || len(f.Findings[0].Rejects) != 1 || f.Findings[0].Rejects[0].Position != r.Position {
			t.Errorf("history --position %s: %+v", r.Position, f)
		}
	}

	// Maintenance expires the first run's snapshots: as of then is now an error naming
	// the oldest moment still available, and the history says it is incomplete.
	st.run(t, "maintain", "--retain-last", "2", "--older-than", "0s", "--steps", "compact,expire", "--min-input-files", "2")
	errOut = runCmdExit(t, 1, st.args("report", "--as-of", moments[0].at.Format(time.RFC3339Nano))...)
	if !strings.Contains(errOut, "oldest moment still available") || !strings.Contains(errOut, "expired by maintenance") {
		t.Errorf("report --as-of an expired moment: %q", errOut)
	}
	mustJSON(t, st.run(t, "history", "--json", "--limit", "0"), &h)
	if h.Complete {
		t.Errorf("history after expiry says it is complete (%d snapshots)", len(h.Snapshots))
	}
	if got := st.run(t, "report", "--json", "--as-of", moments[2].at.Format(time.RFC3339Nano)); got != moments[2].report {
		t.Errorf("report --as-of end of run 3 after maintenance differs")
	}
}

// runCmdExit runs `ledgerstream args...`, requires exit code want, and returns stdout and
// stderr together.
func runCmdExit(t *testing.T, want int, args ...string) string {
	t.Helper()
	p := startProc(t, args[0], args...)
	err := p.wait(2 * time.Minute)
	code := 0
	if err != nil {
		code = -1
		if p.cmd.ProcessState != nil {
			code = p.cmd.ProcessState.ExitCode()
		}
	}
	out := p.stdout.String() + p.stderr.String()
	if code != want {
		t.Fatalf("ledgerstream %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, tail(out, 3000))
	}
	return out
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, tail(s, 2000))
	}
}
