package dedup

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// genLedger is a synthetic ledger of any size, its rows generated on the fly so that the
// test holds none of them: snapshot 1 added rows [0, n), each later snapshot batch more.
type genLedger struct {
	n, batch int
	random   bool // ids are 16 hex digits of a hash of the row number, not TXN%08d
	read     int64
}

// rows returns the first row and the row count of snapshot k.
func (g *genLedger) rows(k int64) (int, int) {
	if k == 1 {
		return 0, g.n
	}
	return g.n + int(k-2)*g.batch, g.batch
}

func (g *genLedger) id(i int) string {
	if !g.random {
		return fmt.Sprintf("TXN%08d", i)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], mix(uint64(i)+0x9e3779b97f4a7c15))
	return hex.EncodeToString(b[:])
}

func (g *genLedger) History(_ context.Context, head int64) ([]int64, bool, error) {
	var ids []int64
	for k := head; k >= 1; k-- {
		ids = append(ids, k)
	}
	return ids, true, nil
}

func (g *genLedger) ReadAdded(_ context.Context, _ int64, snaps []int64, fn func(string, engine.Owner) error) error {
	hash := ledger.Hash("x", "a", "b", "1.00", "EUR")
	for _, k := range snaps {
		from, count := g.rows(k)
		for i := from; i < from+count; i++ {
			g.read++
			if err := fn(g.id(i), engine.Owner{Partition: engine.Partition{Topic: "financial_transactions", Partition: int32(i % 3)},
				Offset: int64(i / 3), Hash: hash}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *genLedger) ReadAll(ctx context.Context, head int64, fn func(string, engine.Owner) error) error {
	var all []int64
	for k := int64(1); k <= head; k++ {
		all = append(all, k)
	}
	return g.ReadAdded(ctx, head, all, fn)
}

// TestIndexScale measures the index at a size given by LEDGERSTREAM_INDEX_SCALE (e.g.
// 10000000; LEDGERSTREAM_INDEX_RANDOM=1 for random ids): the rebuild, then in a fresh
// process (so that RSS is the index's alone) the restart, the Sync of a new 250,000-row
// snapshot, lookups of absent and present ids, the heap and the RSS. Skipped unless set.
func TestIndexScale(t *testing.T) {
	if os.Getenv("DEDUP_SCALE_CHILD") != "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("LEDGERSTREAM_INDEX_SCALE"))
	if n <= 0 {
		t.Skip("set LEDGERSTREAM_INDEX_SCALE=N to measure the index at N ids")
	}
	random := os.Getenv("LEDGERSTREAM_INDEX_RANDOM") != ""
	dir := os.Getenv("LEDGERSTREAM_INDEX_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("scale-%d-%v.idx", n, random))
	g := &genLedger{n: n, batch: scaleBatch, random: random}
	if _, err := os.Stat(path); err != nil {
		x, err := Open(path, g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		if err := x.Rebuild(context.Background(), engine.TableState{SnapshotID: 1}); err != nil {
			t.Fatal(err)
		}
		t.Logf("rebuild of %d ids: %s", n, time.Since(started).Round(time.Millisecond))
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(path); err == nil {
		t.Logf("index file: %.0f MiB (%.1f bytes/id)", float64(fi.Size())/(1<<20), float64(fi.Size())/float64(n))
	}
	// Twice: the second run finds the file in the page cache, as a quick restart would.
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIndexScaleChild$", "-test.v")
		cmd.Env = append(os.Environ(), "DEDUP_SCALE_CHILD="+path, fmt.Sprintf("DEDUP_SCALE_N=%d", n))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if i := strings.Index(l, "scale:"); i >= 0 {
				t.Logf("run %d %s", round, strings.TrimSpace(l[i:]))
			}
		}
	}
}

// scaleBatch is the size of the snapshots after the first: a large batch of the engine.
const scaleBatch = 250_000

// TestIndexScaleChild is the fresh process of TestIndexScale.
func TestIndexScaleChild(t *testing.T) {
	path := os.Getenv("DEDUP_SCALE_CHILD")
	if path == "" {
		t.Skip("helper process only")
	}
	n, _ := strconv.Atoi(os.Getenv("DEDUP_SCALE_N"))
	random := strings.Contains(path, "-true.idx")
	g := &genLedger{n: n, batch: scaleBatch, random: random}
	started := time.Now()
	x, err := Open(path, g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	head := max(x.Synced(), 1) // earlier runs of this test synced later snapshots
	if err := x.Sync(context.Background(), engine.TableState{SnapshotID: head}); err != nil {
		t.Fatal(err)
	}
	restart := time.Since(started)
	t.Logf("scale: restart (open, Bloom filter for %d ids, sync at head): %s, rows read %d; %s", x.Stats().Rows,
		restart.Round(time.Millisecond), g.read, procStatus("VmRSS", "RssAnon", "RssFile"))

	// A new snapshot of a full batch, committed by someone else: Sync reads it.
	started = time.Now()
	if err := x.Sync(context.Background(), engine.TableState{SnapshotID: head + 1}); err != nil {
		t.Fatal(err)
	}
	t.Logf("scale: Sync of a new %d-row snapshot: %s (rows read %d)", scaleBatch, time.Since(started).Round(time.Millisecond), g.read)

	// Lookups: a batch's worth of new ids (the common case: the Bloom filter answers), then
	// present ids (each reads the file).
	const m = 250_000
	ids := make([]string, m)
	for i := range ids {
		ids[i] = "NEW" + g.id(n*7+i)
	}
	started = time.Now()
	for _, id := range ids {
		if _, ok, err := x.Lookup(id); err != nil || ok {
			t.Fatalf("absent %s: %v %v", id, ok, err)
		}
	}
	absent := time.Since(started)
	for i := range ids {
		ids[i] = g.id(int(mix(uint64(i)) % uint64(n)))
	}
	started = time.Now()
	for _, id := range ids {
		if _, ok, err := x.Lookup(id); err != nil || !ok {
			t.Fatalf("present %s: %v %v", id, ok, err)
		}
	}
	present := time.Since(started)
	st := x.Stats()
	t.Logf("scale: lookups: absent %.0f/s (%d of %d passed the Bloom filter), present %.0f/s (random order)",
		m/absent.Seconds(), st.DiskReads-int64(m), m, m/present.Seconds())

	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("scale: ids %d; heap in use %.1f MiB (Bloom filter %.1f MiB); %s", st.Rows,
		float64(ms.HeapInuse)/(1<<20), float64(st.BloomBytes)/(1<<20), procStatus("VmRSS", "VmHWM", "RssAnon", "RssFile"))
}

// procStatus returns the named lines of /proc/self/status, joined.
func procStatus(keys ...string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, k := range keys {
			if v, ok := strings.CutPrefix(sc.Text(), k+":"); ok {
				out = append(out, k+" "+strings.Join(strings.Fields(v), " "))
			}
		}
	}
	return strings.Join(out, ", ")
}
