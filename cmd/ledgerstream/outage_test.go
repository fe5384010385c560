package main

// The fault suite (issue 12): two `run` workers of one pipeline stream from a broker
// through a fault proxy, into a PostgreSQL catalog and an S3 warehouse (versitygw), each
// behind a fault proxy of its own, while a producer sends; one dependency fails for a
// while (black hole, reset, lost replies, a killed server, a full disk). The workers must
// stay up, catch up within 10 s of the heal, and verify must find 0 lost, 0 duplicated.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/subprocess"
	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

// outageEnv is one scenario's world: proxies in front of every dependency.
type outageEnv struct {
	t                       *testing.T
	kafka, catalog, storage *testinfra.FaultProxy // nil when the scenario does not use them
	s3                      *testinfra.S3
	pgDirect, pgViaProxy    string
	warehouse               string
	diskDir                 string // the tmpfs holding the data dir (disk scenario)
	st                      stack
	args                    []string // catalog and warehouse flags of every command
	runArgs                 []string // flags of run only
	// workerArgs, when set, are each worker's own catalog and warehouse flags (a catalog
	// proxy per worker: catalogs), instead of args.
	workerArgs       [][]string
	catalogs         []*testinfra.FaultProxy
	total            int64
	workers          []*proc
	producer         *proc
	healAt, caughtAt time.Time
	outage           time.Duration
}

// outageScenario is one fault: start it, and return the heal.
type outageScenario struct {
	name   string
	outage time.Duration
	disk   bool // a local warehouse on a small tmpfs instead of PostgreSQL + S3
	// session is the workers' --session-timeout (3 s when zero). Outages of the catalog
	// and the storage here are shorter than it: the workers keep their partitions and wait
	// (longer ones hand the partitions off: TestHandOff).
	session time.Duration
	fault   func(e *outageEnv) (heal func())
}

func TestOutages(t *testing.T) {
	skipIfShort(t)
	scenarios := []outageScenario{
		{name: "kafka-black-hole", outage: 12 * time.Second, fault: func(e *outageEnv) func() {
			e.kafka.Set(testinfra.BlackHole)
			return e.kafka.Heal
		}},
		{name: "catalog-black-hole", session: 20 * time.Second, outage: 12 * time.Second, fault: func(e *outageEnv) func() {
			e.catalog.Set(testinfra.BlackHole)
			return e.catalog.Heal
		}},
		{name: "catalog-replies-lost", session: 20 * time.Second, outage: 8 * time.Second, fault: func(e *outageEnv) func() {
			e.catalog.Set(testinfra.DropReplies)
			return e.catalog.Heal
		}},
		{name: "catalog-reset", session: 20 * time.Second, outage: 8 * time.Second, fault: func(e *outageEnv) func() {
			e.catalog.Set(testinfra.Reset)
			return e.catalog.Heal
		}},
		{name: "storage-black-hole", session: 20 * time.Second, outage: 12 * time.Second, fault: func(e *outageEnv) func() {
			e.storage.Set(testinfra.BlackHole)
			return e.storage.Heal
		}},
		{name: "storage-killed", session: 20 * time.Second, outage: 10 * time.Second, fault: func(e *outageEnv) func() {
			e.s3.Kill()
			return func() {
				e.s3.Restart(e.t)
				e.storage.SetTarget(strings.TrimPrefix(e.s3.Endpoint, "http://")) // a new port if another process took the old one
			}
		}},
		{name: "disk-full", session: 20 * time.Second, outage: 10 * time.Second, disk: true, fault: func(e *outageEnv) func() {
			filler := fillDisk(e.t, e.diskDir)
			return func() {
				if err := os.Remove(filler); err != nil {
					e.t.Errorf("free the disk: %v", err)
				}
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runOutage(t, sc)
		})
	}
	// Outages longer than the session timeout: the partitions are handed off
	// (handoff_test.go). Here, so that they run beside the others.
	t.Run("catalog-one-worker-cut-off-past-session", func(t *testing.T) {
		t.Parallel()
		runHandOff(t, false)
	})
	t.Run("catalog-both-cut-off-past-session", func(t *testing.T) {
		t.Parallel()
		runHandOff(t, true)
	})
}

func runOutage(t *testing.T, sc outageScenario) {
	e := &outageEnv{t: t, total: 3000, outage: sc.outage}
	e.setUp(sc)
	// Workers first, then the producer: the fault strikes mid-stream.
	e.startWorkers(sc.session)
	e.producer = e.st.start(t, "produce", "--count", fmt.Sprint(e.total), "--rate", "400", "--seed", "12")
	e.waitCommitted(1, 60*time.Second)
	time.Sleep(time.Second)

	heal := sc.fault(e)
	faultAt := time.Now()
	for time.Since(faultAt) < sc.outage {
		e.requireWorkersUp("during the outage")
		time.Sleep(500 * time.Millisecond)
	}
	heal()
	e.healAt = time.Now()
	e.producer.mustSucceed(2 * time.Minute)
	e.waitCommitted(e.total, 60*time.Second)
	e.caughtAt = time.Now()
	e.requireWorkersUp("after the heal")
	for _, w := range e.workers {
		w.signal(syscall.SIGTERM)
	}
	stayed := 0
	for _, w := range e.workers {
		select {
		case <-w.done:
		case <-time.After(time.Minute):
			_ = w.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump in its stderr
			time.Sleep(2 * time.Second)
		}
		if err := w.wait(time.Minute); err != nil {
			t.Errorf("%s did not stop cleanly: %v", w.name, err)
		} else {
			stayed++
		}
	}
	missing, duplicated, rows := e.verify()
	if e.diskDir != "" {
		// Everything the run wrote, failed attempts included: about 1 MiB measured.
		used, listing := diskUsed(t, e.diskDir)
		t.Logf("the run left %d KiB on %s; %s", used>>10, e.diskDir, e.diskHolders())
		if used > 8<<20 {
			t.Errorf("want under 8 MiB left after the disk was freed (what failed attempts leave behind must not pile up); largest:\n%s", listing)
		}
	}
	warned := false
	for _, w := range e.workers {
		warned = warned || strings.Contains(w.stderr.String(), "waiting for a dependency") ||
			strings.Contains(w.stderr.String(), "dependency down")
	}
	took := e.caughtAt.Sub(e.healAt)
	t.Logf("fault %s: outage %s; workers up throughout: %d of 2; heal to caught up: %s; verify: %d rows, %d missing, %d duplicated; outage reported in the logs: %v",
		sc.name, sc.outage, stayed, took.Round(100*time.Millisecond), rows, missing, duplicated, warned)
	// The promise is 10 s (measured 2.7 to 8.7 s on 2 shared cores); the assertion leaves
	// room for a CI machine busy with the rest of the suite.
	if took > 15*time.Second {
		t.Errorf("caught up %s after the heal, want within 10 s (15 s tolerated under load)", took.Round(100*time.Millisecond))
	}
}

// startWorkers starts the two workers with their session timeout (3 s when zero).
func (e *outageEnv) startWorkers(session time.Duration) {
	if session == 0 {
		session = 3 * time.Second
	}
	for i := 1; i <= 2; i++ {
		args := e.args
		if e.workerArgs != nil {
			args = e.workerArgs[i-1]
		}
		w := e.st.start(e.t, "run", append([]string{"--worker-id", fmt.Sprintf("w%d", i),
			"--trigger", "1s", "--session-timeout", session.String(), "--outage-timeout", "60s", "--max-batch-records", "500"},
			append(args, e.runArgs...)...)...)
		// One at a time: the first creates the tables (two racing to create them
		// conflict, which is not what this suite is about).
		w.waitForLine(&w.stderr, "msg=streaming", 60*time.Second)
		e.workers = append(e.workers, w)
	}
}

// setUp starts the servers, the proxies and the stack's flags.
func (e *outageEnv) setUp(sc outageScenario) {
	t := e.t
	// The broker listens on a port of its own and advertises the proxy's, so that every
	// client connection, after the bootstrap too, goes through the proxy.
	real, err := subprocess.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	e.kafka = testinfra.StartFaultProxy(t, real)
	p := startProc(t, "broker", "broker", "--listen", real, "--advertise", e.kafka.Addr, "--data-dir", t.TempDir(),
		"--partitions", "3")
	p.waitForLine(&p.stdout, "broker listening on ", 30*time.Second)
	e.st = newStack(t, e.kafka.Addr)
	e.st.pipeline = "outage-" + sc.name

	if sc.disk {
		// Room for 25 times what the run writes (about 1 MiB): filling it is quick, and a
		// leak shows as a failed bound (diskUsed) rather than as a second full disk.
		e.diskDir = mountTmpfs(t, 32<<20)
		e.st.dataDir = e.diskDir
		e.st.table = "outage.ledger"
		e.runArgs = []string{"--index-dir", filepath.Join(e.diskDir, "index")}
		return
	}
	e.pgDirect = testinfra.RequirePostgres(t)
	u, err := url.Parse(e.pgDirect)
	if err != nil {
		t.Fatal(err)
	}
	e.catalog = testinfra.StartFaultProxy(t, u.Host)
	u.Host = e.catalog.Addr
	e.pgViaProxy = u.String()
	s3, wh := s3Warehouse(t)
	e.s3, e.warehouse = s3, wh
	e.storage = testinfra.StartFaultProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
	e.st.table = pgTable(t)
	t.Cleanup(func() { dropPGTable(t, e.pgDirect, e.st.table) })
	e.args = []string{"--catalog", e.pgViaProxy, "--warehouse", wh, "--s3-endpoint", "http://" + e.storage.Addr}
}

// requireWorkersUp fails the test if a worker has exited.
func (e *outageEnv) requireWorkersUp(when string) {
	e.t.Helper()
	for _, w := range e.workers {
		if w.exited() {
			e.t.Fatalf("%s exited %s: %v\n%s", w.name, when, w.err, tail(w.stderr.String(), 3000))
		}
	}
}

// committed is how many records the pipeline's newest ledger snapshot covers, read
// straight from the catalog and the storage (not through the proxies).
func (e *outageEnv) committed(ctx context.Context) (int64, error) {
	offsets, err := e.committedOffsets(ctx)
	return sumOffsets(offsets), err
}

// committedOffsets is the offsets map of the pipeline's newest ledger snapshot (nil before
// its first), read straight from the catalog and the storage.
func (e *outageEnv) committedOffsets(ctx context.Context) (engine.Offsets, error) {
	cfg := iceberg.Config{DataDir: e.st.dataDir}
	if e.pgDirect != "" {
		cfg.CatalogURI, cfg.Warehouse, cfg.S3 = e.pgDirect, e.warehouse, iceberg.S3Config{Endpoint: e.s3.Endpoint}
	}
	cat, err := iceberg.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	ident, err := iceberg.ParseIdent(e.st.table)
	if err != nil {
		return nil, err
	}
	snaps, err := cat.Snapshots(ctx, ident)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		if s.Pipeline == e.st.pipeline {
			return s.Offsets, nil
		}
	}
	return nil, nil
}

// waitCommitted waits until the pipeline has committed at least n records.
func (e *outageEnv) waitCommitted(n int64, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var got int64
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err = e.committed(ctx)
		cancel()
		if err == nil && got >= n {
			return
		}
		e.requireWorkersUp("while catching up")
		time.Sleep(200 * time.Millisecond)
	}
	var disk string
	if e.diskDir != "" {
		used, listing := diskUsed(e.t, e.diskDir)
		disk = fmt.Sprintf("; %d KiB used on %s, largest:\n%s\n%s", used>>10, e.diskDir, listing, e.diskHolders())
	}
	e.t.Fatalf("the pipeline committed %d records of %d within %s (last error: %v)%s", got, n, timeout, err, disk)
}

// verify runs verify --json and returns what it found lost and doubled, and the rows.
func (e *outageEnv) verify() (missing, duplicated, rows int64) {
	t := e.t
	args := e.args
	if e.pgDirect != "" {
		// Straight to the servers, not through the proxies (as committedOffsets reads); the
		// endpoint as it is now (a restarted gateway may have moved).
		args = []string{"--catalog", e.pgDirect, "--warehouse", e.warehouse, "--s3-endpoint", e.s3.Endpoint}
	}
	p := e.st.start(t, "verify", append([]string{"--json"}, args...)...)
	err := p.wait(2 * time.Minute)
	var v verifyOutput
	if jerr := json.Unmarshal([]byte(p.stdout.String()), &v); jerr != nil || v.Reconciliation == nil {
		t.Fatalf("verify --json (exit %v): %v\n%s\n%s", err, jerr, p.stdout.String(), tail(p.stderr.String(), 2000))
	}
	for _, c := range v.Checks {
		if c.Name == "rows_present" {
			rows = c.Figure
		}
	}
	r := v.Reconciliation
	if err != nil || r.Missing != 0 || r.Duplicated != 0 || r.DuplicateIDs != 0 || r.Altered != 0 || r.Unexpected != 0 || rows != e.total {
		t.Errorf("verify (exit %v): %d rows of %d, %d missing, %d duplicated, %d duplicate ids, %d altered, %d unexpected: %v",
			err, rows, e.total, r.Missing, r.Duplicated, r.DuplicateIDs, r.Altered, r.Unexpected, r.First)
	}
	return r.Missing, r.Duplicated, rows
}

// mountTmpfs mounts a tmpfs of size bytes for the test, or skips it where mounting is not
// allowed (not root, or no CAP_SYS_ADMIN in this sandbox).
func mountTmpfs(t *testing.T, size int64) string {
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("mount -t tmpfs is not allowed here (%v: %s): the disk-full scenario needs a small file system to fill", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// diskUsed is how many bytes the files under dir hold, and a listing of the 15 largest.
// diskHolders says what the file system of e.diskDir has free, and which files below it
// the workers and this process still hold open after they were deleted: space the listing of
// diskUsed cannot see, which a write that fails with ENOSPC on a disk that looks empty
// points to (a CI run stalled so, 436 KiB of files on the 32 MiB disk).
func (e *outageEnv) diskHolders() string {
	var b strings.Builder
	var st syscall.Statfs_t
	if err := syscall.Statfs(e.diskDir, &st); err == nil {
		fmt.Fprintf(&b, "file system: %d of %d KiB free, %d of %d inodes free\n",
			st.Bavail*uint64(st.Bsize)>>10, st.Blocks*uint64(st.Bsize)>>10, st.Ffree, st.Files)
	}
	pids := map[string]int{"this test": os.Getpid()}
	for _, w := range e.workers {
		if w != nil && w.cmd != nil && w.cmd.Process != nil {
			pids[w.name] = w.cmd.Process.Pid
		}
	}
	for name, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link := fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())
			target, err := os.Readlink(link)
			if err != nil || !strings.HasPrefix(target, e.diskDir) || !strings.HasSuffix(target, "(deleted)") {
				continue
			}
			var size int64
			if fi, err := os.Stat(link); err == nil {
				size = fi.Size()
			}
			fmt.Fprintf(&b, "%s (pid %d) holds deleted %s: %d bytes\n", name, pid, target, size)
		}
	}
	return b.String()
}

func diskUsed(t *testing.T, dir string) (int64, string) {
	type file struct {
		path string
		size int64
	}
	var files []file
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		total += info.Size()
		files = append(files, file{strings.TrimPrefix(path, dir+"/"), info.Size()})
		return nil
	})
	if err != nil {
		t.Logf("list %s: %v", dir, err)
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Compare(b.size, a.size) })
	var b strings.Builder
	for i, f := range files {
		if i == 15 {
			fmt.Fprintf(&b, "  … and %d more files\n", len(files)-15)
			break
		}
		fmt.Fprintf(&b, "  %9d %s\n", f.size, f.path)
	}
	return total, b.String()
}

// fillDisk writes a file into dir until the file system is full, and returns its path.
func fillDisk(t *testing.T, dir string) string {
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	// What is left below a megabyte goes too.
	for {
		if _, err := f.Write(chunk[:4096]); err != nil {
			break
		}
	}
	return path
}
