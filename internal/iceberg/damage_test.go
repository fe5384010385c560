package iceberg

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// threeBatches commits three batches of 100 rows (one data file each) to a new ledger and
// returns the catalog and the data files with their record counts.
func threeBatches(t *testing.T) (*Catalog, map[string]int64) {
	t.Helper()
	c := openSQLite(t)
	s := newSink(t, c)
	st := mustLoad(t, s)
	for i := range 3 {
		var err error
		st, err = stageCommit(t, s, st, testRows("tx", int32(i), 0, 100), int64(i+1),
			engine.Offsets{{Topic: "tx", Partition: int32(i)}: 100})
		if err != nil {
			t.Fatal(err)
		}
	}
	tbl := mustTable(t, c)
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int64{}
	for _, m := range manifests {
		entries, err := readManifest(fsys, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			files[e.DataFile().FilePath()] = e.DataFile().Count()
		}
	}
	if len(files) != 3 {
		t.Fatalf("%d data files, want 3", len(files))
	}
	return c, files
}

// A data file deleted or with flipped bytes: a scan with OnDamage names it, with its
// record count and source range, and reads the two others; without OnDamage, it is a
// permanent *DamageError; CheckFiles finds a deleted file (not flipped bytes: the size is
// right); the index's ReadAll fails on it as permanent damage.
func TestDamagedDataFile(t *testing.T) {
	for _, how := range []string{"deleted", "flipped"} {
		t.Run(how, func(t *testing.T) {
			c, files := threeBatches(t)
			var victim string
			for p := range files {
				victim = p
				break
			}
			switch how {
			case "deleted":
				if err := os.Remove(victim); err != nil {
					t.Fatal(err)
				}
			case "flipped":
				b, err := os.ReadFile(victim)
				if err != nil {
					t.Fatal(err)
				}
				for i := len(b) / 2; i < len(b)/2+8; i++ {
					b[i] ^= 0xff
				}
				if err := os.WriteFile(victim, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			var damaged []*DamageError
			rows := 0
			err := c.ScanRowsOpts(ctx, testIdent(), ledger.DefaultContract(), ScanOptions{OnDamage: func(d *DamageError) error {
				damaged = append(damaged, d)
				return nil
			}}, func(ledger.Row, time.Time) error { rows++; return nil })
			if err != nil {
				t.Fatalf("scan with OnDamage: %v", err)
			}
			if len(damaged) != 1 || damaged[0].Path != victim || damaged[0].Kind != FileData || damaged[0].Records != files[victim] {
				t.Fatalf("damaged %+v, want %s (%d rows)", damaged, victim, files[victim])
			}
			if int64(rows)+files[victim]-damaged[0].Read != 300 {
				t.Errorf("read %d rows, %d of the damaged file: want the 200 of the others", rows, damaged[0].Read)
			}
			if !strings.HasPrefix(damaged[0].Source, "tx/") {
				t.Errorf("source %q, want the file's topic, partition and offsets", damaged[0].Source)
			}

			err = c.ScanLedger(ctx, testIdent(), 0, func(ledger.Row, time.Time) error { return nil })
			if d, ok := AsDamage(err); !ok || d.Path != victim || retry.Classify(err) != retry.Permanent {
				t.Errorf("scan without OnDamage: %v, want a permanent damage naming %s", err, victim)
			}
			err = c.NewLedgerIDs(testIdent(), nil).ReadAll(ctx, mustTable(t, c).CurrentSnapshot().SnapshotID, func(string, engine.Owner) error { return nil })
			if d, ok := AsDamage(err); !ok || d.Path != victim || retry.Classify(err) != retry.Permanent {
				t.Errorf("index read: %v, want a permanent damage naming %s", err, victim)
			}
			_, err = c.CheckFiles(ctx, testIdent())
			switch d, ok := AsDamage(err); how {
			case "deleted":
				if !ok || d.Path != victim || d.Problem != "missing" || retry.Classify(err) != retry.Permanent {
					t.Errorf("CheckFiles: %v, want %s missing", err, victim)
				}
			case "flipped":
				if err != nil {
					t.Errorf("CheckFiles: %v; a file of the right size passes (its bytes are checked when read)", err)
				}
			}
		})
	}
}

// A manifest or the metadata file cut short: named, permanent; the manifest's rows are
// reported, the other manifests read.
func TestDamagedMetadata(t *testing.T) {
	ctx := context.Background()
	c, _ := threeBatches(t)
	tbl := mustTable(t, c)
	fsys, err := tbl.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	m := manifests[0].FilePath()
	if err := os.Truncate(m, 100); err != nil {
		t.Fatal(err)
	}
	var damaged []*DamageError
	rows := 0
	err = c.ScanRowsOpts(ctx, testIdent(), ledger.DefaultContract(), ScanOptions{OnDamage: func(d *DamageError) error {
		damaged = append(damaged, d)
		return nil
	}}, func(ledger.Row, time.Time) error { rows++; return nil })
	if err != nil || len(damaged) != 1 || damaged[0].Path != m || damaged[0].Kind != FileManifest || damaged[0].Records != 100 || rows != 200 {
		t.Errorf("scan: %v, damaged %+v, %d rows; want manifest %s (100 rows) and 200 rows", err, damaged, rows, m)
	}
	if _, err := c.CheckFiles(ctx, testIdent()); retry.Classify(err) != retry.Permanent || !strings.Contains(err.Error(), m) {
		t.Errorf("CheckFiles: %v, want permanent damage naming %s", err, m)
	}

	meta := tbl.MetadataLocation()
	if err := os.Truncate(meta, 50); err != nil {
		t.Fatal(err)
	}
	_, err = c.LoadTable(ctx, testIdent())
	d, ok := AsDamage(err)
	if !ok || d.Path != meta || d.Kind != FileMetadata || d.Previous == "" || retry.Classify(err) != retry.Permanent ||
		!strings.Contains(d.Hint(), d.Previous) || !strings.Contains(d.Hint(), "UPDATE iceberg_tables") {
		t.Errorf("load: %v, want permanent damage of %s with the previous metadata file", err, meta)
	}
	if _, err := os.Stat(d.Previous); err != nil {
		t.Errorf("the previous metadata file %s: %v", d.Previous, err)
	}
}

// A commit on a head whose manifest list is cut short is refused as permanent damage
// naming the list, not taken for a commit of unknown outcome.
func TestCommitOnDamagedManifestList(t *testing.T) {
	c := openSQLite(t)
	s := newSink(t, c)
	st, err := stageCommit(t, s, mustLoad(t, s), testRows("tx", 0, 0, 10), 1, engine.Offsets{{Topic: "tx", Partition: 0}: 10})
	if err != nil {
		t.Fatal(err)
	}
	list := mustTable(t, c).CurrentSnapshot().ManifestList
	if err := os.Truncate(list, 20); err != nil {
		t.Fatal(err)
	}
	_, err = stageCommit(t, s, mustLoad(t, s), testRows("tx", 0, 10, 10), 2, engine.Offsets{{Topic: "tx", Partition: 0}: 20})
	d, ok := AsDamage(err)
	if !ok || d.Path != list || d.Kind != FileManifestList || retry.Classify(err) != retry.Permanent {
		t.Errorf("commit: %v, want permanent damage of the manifest list %s", err, list)
	}
	_ = st
}
