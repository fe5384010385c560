package iceberg

// The ledger sink against a real S3-compatible server (versitygw on loopback, skipped when
// not installed), with the SQLite and the PostgreSQL catalog.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

// Root keys of the package's versitygw servers; the AWS SDK reads them from the
// environment, as in production.
const (
	testS3AccessKey = "LSTESTACCESSKEY"
	testS3SecretKey = "ls-test-s3-secret-Zq8vR2"
)

// startS3 starts versitygw with one bucket and returns it and an s3:// warehouse in it.
func startS3(t *testing.T) (*testinfra.S3, string) {
	t.Helper()
	s3 := testinfra.StartS3(t, testS3AccessKey, testS3SecretKey, "lake")
	testinfra.SetAWSEnv(testS3AccessKey, testS3SecretKey)
	return s3, fmt.Sprintf("s3://lake/wh-%d", time.Now().UnixNano())
}

func openS3SQLite(t *testing.T) (*Catalog, *testinfra.S3) {
	s3, wh := startS3(t)
	c, err := Open(context.Background(), Config{DataDir: t.TempDir(), Warehouse: wh, S3: S3Config{Endpoint: s3.Endpoint}})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, s3
}

func openS3Postgres(t *testing.T) (*Catalog, *testinfra.S3) {
	testinfra.RequirePostgres(t)
	s3, wh := startS3(t)
	// The endpoint through the AWS SDK's own variable this time, not the config.
	t.Setenv("AWS_ENDPOINT_URL_S3", s3.Endpoint)
	return openPostgresAt(t, wh), s3
}

// requireOnS3 checks that the table's files are objects in versitygw's bucket directory.
func requireOnS3(t *testing.T, c *Catalog, s3 *testinfra.S3) {
	t.Helper()
	tbl, err := c.LoadTable(context.Background(), testIdent())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tbl.Location(), "s3://lake/") || !strings.HasPrefix(tbl.MetadataLocation(), "s3://lake/") {
		t.Fatalf("table at %s (metadata %s), want s3://lake/…", tbl.Location(), tbl.MetadataLocation())
	}
	key := strings.TrimPrefix(tbl.MetadataLocation(), "s3://lake/")
	if _, err := os.Stat(filepath.Join(s3.Dir, "lake", key)); err != nil {
		t.Fatalf("metadata object not in versitygw's storage: %v", err)
	}
}

func TestRoundTripS3SQLite(t *testing.T) {
	c, s3 := openS3SQLite(t)
	testRoundTrip(t, c)
	requireOnS3(t, c, s3)
	testOrphansListable(t, c)
}

func TestRoundTripS3Postgres(t *testing.T) {
	c, s3 := openS3Postgres(t)
	testRoundTrip(t, c)
	requireOnS3(t, c, s3)
	testOrphansListable(t, c)
}

func TestConflictS3SQLite(t *testing.T) {
	c, _ := openS3SQLite(t)
	testConflict(t, c)
}

// testOrphansListable: files of a batch that was staged and never committed (the worker
// died) are found by ListTableFiles and by iceberg-go's orphan planner, and can be removed.
func testOrphansListable(t *testing.T, c *Catalog) {
	ctx := context.Background()
	s := newSink(t, c)
	staged, err := s.Stage(ctx, testRows("tx", 5, 0, 20), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	orphans := staged.(*Staged).Paths()
	if len(orphans) == 0 || !strings.HasPrefix(orphans[0], "s3://") {
		t.Fatalf("staged %v, want s3:// files", orphans)
	}
	listed := map[string]bool{}
	if err := c.ListTableFiles(ctx, testIdent(), func(f StoredFile) error {
		listed[f.Path] = true
		if f.Size <= 0 {
			t.Errorf("%s: size %d", f.Path, f.Size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, o := range orphans {
		if !listed[o] {
			t.Fatalf("staged file %s not listed; listed %v", o, listed)
		}
	}
	tbl, err := c.LoadTable(ctx, testIdent())
	if err != nil {
		t.Fatal(err)
	}
	// Object times have one-second resolution: a file is older than "now" for the plan
	// once the clock has moved past its second. Plan again until every staged file is
	// (within a bound far above that second).
	var plan table.OrphanCleanupPlan
	planned := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		plan, err = tbl.PlanOrphanFiles(ctx, table.WithFilesOlderThan(0))
		if err != nil {
			t.Fatalf("PlanOrphanFiles on S3: %v", err)
		}
		clear(planned)
		for _, f := range plan.Files() {
			planned[f] = true
		}
		if len(planned) >= len(orphans) || time.Now().After(deadline) {
			break
		}
	}
	for _, o := range orphans {
		if !planned[o] {
			t.Errorf("iceberg-go's orphan plan misses %s: %v", o, plan.Files())
		}
	}
	if len(plan.Files()) != len(orphans) {
		t.Errorf("orphan plan has %d files, want the %d staged ones: %v", len(plan.Files()), len(orphans), plan.Files())
	}
	for _, o := range orphans {
		if err := c.RemoveTableFile(ctx, testIdent(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ListTableFiles(ctx, testIdent(), func(f StoredFile) error {
		for _, o := range orphans {
			if f.Path == o {
				t.Errorf("%s still listed after removal", o)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The committed data is intact.
	if read, _ := scanAll(t, c); len(read) != 150 {
		t.Fatalf("after orphan removal the table holds %d rows, want 150", len(read))
	}
}
