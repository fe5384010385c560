package main

// Helpers for the end-to-end tests in e2e_test.go: they build the real binary once, run its
// subcommands as separate processes, and read their output and the table they wrote.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/subprocess"
)

// e2eBinDir holds the binary built for this test run; TestMain creates and removes it.
var e2eBinDir string

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ledgerstream-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	e2eBinDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of the ledgerstream binary, building it on first use. The build
// is lazy so that a run selecting no end-to-end test pays nothing for it, and shared so
// that every test of the run drives the same binary. It is built with -tags faults, for
// run's hidden --fault and --stage-ahead-rows (faults.go).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildPath = filepath.Join(e2eBinDir, "ledgerstream")
		cmd := exec.Command("go", "build", "-tags", "faults", "-o", buildPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// tail returns the last n bytes of s, so that a failing test's log stays readable.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// proc is a ledgerstream child process.
type proc struct {
	t              *testing.T
	name           string
	cmd            *exec.Cmd
	stdout, stderr subprocess.Output
	started        time.Time
	done           chan struct{} // closed once the process has exited and err is set
	err            error         // Wait's result
	quiet          bool          // the test reports on this process itself: no tails when it fails
}

// childEnv is the environment of every child: the test's own, minus LEDGERSTREAM_*
// variables, which would otherwise override flags the tests leave at their defaults.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEDGERSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}

// startProc starts `ledgerstream args...`. The process is killed, if still running, when
// the test ends; if the test failed, the tail of its stdout and stderr goes to the test log.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Dir = t.TempDir() // nothing may land in the package directory
	p.cmd.Env = childEnv()
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.started = time.Now()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() && !p.quiet {
			t.Logf("--- %s (%s): %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), p.err,
				tail(p.stdout.String(), 4000), tail(p.stderr.String(), 8000))
		}
	})
	return p
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns Wait's error; past timeout it kills the
// process and fails the test, since every command here must end by itself.
func (p *proc) wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s did not exit within %s", p.name, timeout)
		return nil
	}
}

// mustSucceed waits for the process and fails the test unless it exits 0.
func (p *proc) mustSucceed(timeout time.Duration) {
	p.t.Helper()
	if err := p.wait(timeout); err != nil {
		p.t.Fatalf("%s: %v\nstderr:\n%s", p.name, err, tail(p.stderr.String(), 4000))
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// waitForLine waits until buf (the process's stdout or stderr) holds a line containing
// substr and returns that line. It fails the test at timeout, or at once if the process
// exits without printing it.
func (p *proc) waitForLine(buf *subprocess.Output, substr string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		exited := p.exited() // read before the output, so that a last line is not missed
		for line := range strings.Lines(buf.String()) {
			if strings.Contains(line, substr) {
				return strings.TrimRight(line, "\n")
			}
		}
		if exited {
			p.t.Fatalf("%s exited (%v) without printing %q", p.name, p.err, substr)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %s", p.name, substr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runCmd runs `ledgerstream args...` to completion, fails the test unless it exits 0
// within two minutes, and returns its stdout.
func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	p := startProc(t, name, args...)
	p.mustSucceed(2 * time.Minute)
	return p.stdout.String()
}

// killedBy returns the signal that ended a process, if a signal did.
func killedBy(err error) (syscall.Signal, bool) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

// startBroker starts `ledgerstream broker` on a free loopback port with its own data
// directory and returns its address, read from the "broker listening on ADDR" line. Port 0
// lets the kernel pick the port, so parallel tests never collide.
func startBroker(t *testing.T, partitions int) string {
	t.Helper()
	p := startProc(t, "broker", "broker", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--partitions", strconv.Itoa(partitions))
	line := p.waitForLine(&p.stdout, "broker listening on ", 30*time.Second)
	return strings.TrimSpace(strings.TrimPrefix(line, "broker listening on "))
}

// stack is one pipeline's coordinates: a broker, a topic, and a table with its catalog and
// warehouse under dataDir (shared by run, verify and report, never by the broker).
type stack struct {
	brokers  string
	dataDir  string
	topic    string
	table    string
	pipeline string
}

// newStack returns a stack on brokers with a fresh data directory and the CLI's default
// topic, table and pipeline.
func newStack(t *testing.T, brokers string) stack {
	return stack{brokers: brokers, dataDir: t.TempDir(), topic: "financial_transactions",
		table: "demo.transactions_ledger", pipeline: "exactly-once-processor"}
}

// args is the command line of subcommand sub on this stack, then extra.
func (s stack) args(sub string, extra ...string) []string {
	a := []string{sub, "--brokers", s.brokers, "--topic", s.topic, "--table", s.table, "--data-dir", s.dataDir}
	switch sub {
	case "run", "verify":
		a = append(a, "--pipeline", s.pipeline)
	case "produce":
		a = append(a, "--create-topic") // tests give each stack a topic of its own
	}
	return append(a, extra...)
}

// start starts subcommand sub on this stack.
func (s stack) start(t *testing.T, sub string, extra ...string) *proc {
	t.Helper()
	return startProc(t, sub, s.args(sub, extra...)...)
}

// run runs subcommand sub on this stack to a successful end and returns its stdout.
func (s stack) run(t *testing.T, sub string, extra ...string) string {
	t.Helper()
	return runCmd(t, sub, s.args(sub, extra...)...)
}

var streamedRE = regexp.MustCompile(`(?m)^Streamed (\d+) records`)

// streamed is the record count of run's final "Streamed N records ..." line.
func streamed(t *testing.T, stdout string) int64 {
	t.Helper()
	m := streamedRE.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no \"Streamed N records\" line in run's output:\n%s", stdout)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// verifyOutput is the part of `verify --json` the tests read. It is declared here rather
// than reusing the command's own types so that a change to the JSON interface shows up.
type verifyOutput struct {
	Checks []struct {
		Name   string `json:"name"`
		Passed bool   `json:"passed"`
		Figure int64  `json:"figure"`
		Detail string `json:"detail"`
	} `json:"checks"`
	Reconciliation *struct {
		Partitions []struct {
			Partition string `json:"partition"`
			Committed int64  `json:"committed_offset"`
			Records   int64  `json:"records"`
			Rows      int64  `json:"rows"`
			Rejected  int64  `json:"rejected"`
			Pending   int64  `json:"pending"`
		} `json:"partitions"`
		Missing      int64    `json:"missing"`
		Duplicated   int64    `json:"duplicated"`
		DuplicateIDs int64    `json:"duplicate_ids"`
		Altered      int64    `json:"altered"`
		Unexpected   int64    `json:"unexpected"`
		First        []string `json:"first_discrepancies"`
	} `json:"reconciliation"`
}

// verifyExactlyOnce runs `verify --json` and checks that it exits 0, that every check
// passed, exactly_once included, and that the reconciliation counts wantRows ledger rows
// and wantRejected rejected records, with nothing pending or wrong.
func (s stack) verifyExactlyOnce(t *testing.T, wantRows, wantRejected int64) {
	t.Helper()
	p := s.start(t, "verify", "--json")
	err := p.wait(2 * time.Minute)
	var v verifyOutput
	if jerr := json.Unmarshal([]byte(p.stdout.String()), &v); jerr != nil {
		t.Fatalf("verify --json (exit %v): bad JSON: %v\n%s", err, jerr, p.stdout.String())
	}
	if err != nil {
		t.Errorf("verify exited with %v", err)
	}
	exactlyOnce := false
	for _, c := range v.Checks {
		if !c.Passed {
			t.Errorf("verify check %s failed: %s", c.Name, c.Detail)
		}
		if c.Name == "exactly_once" {
			exactlyOnce = c.Passed
		}
		if c.Name == "rows_present" && c.Figure != wantRows {
			t.Errorf("verify rows_present figure = %d, want %d", c.Figure, wantRows)
		}
	}
	if !exactlyOnce {
		t.Fatalf("verify: no passed exactly_once check in %+v", v.Checks)
	}
	r := v.Reconciliation
	if r == nil {
		t.Fatal("verify --json: no reconciliation")
	}
	var rows, rejected, records, pending int64
	for _, p := range r.Partitions {
		rows, rejected, records, pending = rows+p.Rows, rejected+p.Rejected, records+p.Records, pending+p.Pending
	}
	if rows != wantRows || rejected != wantRejected || records != wantRows+wantRejected || pending != 0 {
		t.Errorf("reconciliation: %d records = %d rows + %d rejected, %d pending; want %d rows, %d rejected, 0 pending",
			records, rows, rejected, pending, wantRows, wantRejected)
	}
	if n := r.Missing + r.Duplicated + r.DuplicateIDs + r.Altered + r.Unexpected; n != 0 {
		t.Errorf("reconciliation: %d discrepancies: %v", n, r.First)
	}
}

// tableScan is what the tests' own read of the ledger found.
type tableScan struct {
	rows, distinctIDs, distinctHashes, distinctPositions int64
	snapshots                                            []iceberg.SnapshotInfo
}

// scanTable reads the stack's ledger back through the iceberg package, independently of
// the binary: every row, and the snapshot history. No ledgerstream process may be writing
// the table meanwhile (the SQLite catalog is shared by file).
func (s stack) scanTable(t *testing.T) tableScan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ident, err := iceberg.ParseIdent(s.table)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := iceberg.Open(ctx, iceberg.Config{DataDir: s.dataDir})
	if err != nil {
		t.Fatalf("open catalog in %s: %v", s.dataDir, err)
	}
	defer cat.Close()
	type pos struct {
		topic     string
		partition int32
		offset    int64
	}
	ids, hashes, positions := map[string]bool{}, map[string]bool{}, map[pos]bool{}
	var sc tableScan
	err = cat.ScanLedger(ctx, ident, 0, func(row ledger.Row, _ time.Time) error {
		sc.rows++
		ids[row.TransactionID] = true
		hashes[row.TransactionHash] = true
		positions[pos{row.SourceTopic, row.SourcePartition, row.SourceOffset}] = true
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", s.table, err)
	}
	sc.distinctIDs, sc.distinctHashes, sc.distinctPositions = int64(len(ids)), int64(len(hashes)), int64(len(positions))
	if sc.snapshots, err = cat.Snapshots(ctx, ident); err != nil {
		t.Fatalf("snapshots of %s: %v", s.table, err)
	}
	return sc
}

// requireExactly fails the test unless the scan found want rows, all with distinct
// transaction ids, hashes and source positions: no loss, no duplicate.
func (sc tableScan) requireExactly(t *testing.T, want int64) {
	t.Helper()
	if sc.rows != want || sc.distinctIDs != want || sc.distinctHashes != want || sc.distinctPositions != want {
		t.Fatalf("table scan: %d rows, %d distinct ids, %d distinct hashes, %d distinct positions; want %d of each",
			sc.rows, sc.distinctIDs, sc.distinctHashes, sc.distinctPositions, want)
	}
}

// checkOffsetsHistory checks the snapshots the pipeline made (newest first): each carries
// ledgerstream.offsets, their batch numbers count down by one to 1 (no batch lost or
// committed twice), the offsets never move backwards, and the newest covers wantRecords
// records (the sum of the next offsets, for a topic without transaction markers).
func (sc tableScan) checkOffsetsHistory(t *testing.T, pipeline string, wantRecords int64) {
	t.Helper()
	var mine []iceberg.SnapshotInfo
	for _, s := range sc.snapshots {
		if s.Summary[iceberg.SummaryPipeline] == pipeline {
			if s.Summary[iceberg.SummaryOffsets] == "" {
				t.Errorf("snapshot %d of pipeline %s has no %s: %v", s.SnapshotID, pipeline, iceberg.SummaryOffsets, s.Summary)
			}
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("no snapshot of pipeline %s among %d", pipeline, len(sc.snapshots))
	}
	for i, s := range mine {
		if want := int64(len(mine) - i); s.Batch != want {
			t.Errorf("snapshot %d: batch %d, want %d (batches must count 1, 2, … without gaps)", s.SnapshotID, s.Batch, want)
		}
		if i+1 < len(mine) {
			older := mine[i+1].Offsets
			for p, off := range older {
				if s.Offsets[p] < off {
					t.Errorf("batch %d moved %v back from %d to %d", s.Batch, p, off, s.Offsets[p])
				}
			}
		}
	}
	if got := sumOffsets(mine[0].Offsets); got != wantRecords {
		t.Errorf("newest snapshot's offsets %v sum to %d, want %d", mine[0].Offsets, got, wantRecords)
	}
}

func sumOffsets(o engine.Offsets) int64 {
	var n int64
	for _, off := range o {
		n += off
	}
	return n
}
