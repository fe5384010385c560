package iceberg

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"
)

// postgresURI is the test database: LEDGERSTREAM_TEST_POSTGRES, or the local server with
// trust authentication that this project's machines run.
func postgresURI() string {
	if u := os.Getenv("LEDGERSTREAM_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// openPostgres opens a PostgreSQL catalog under a catalog name unique to this test, so that
// runs sharing the database never see each other's tables, or skips the test when the
// server is not reachable.
func openPostgres(t *testing.T) *Catalog {
	t.Helper()
	uri := postgresURI()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", uri)
	if err == nil {
		err = db.PingContext(ctx)
		db.Close()
	}
	if err != nil {
		t.Skipf("PostgreSQL not reachable at %s (set LEDGERSTREAM_TEST_POSTGRES to another server): %v", redact(uri), err)
	}
	name := fmt.Sprintf("lstest_%d_%d", time.Now().UnixNano(), os.Getpid())
	c, err := Open(context.Background(), Config{CatalogURI: uri, Warehouse: t.TempDir(), Name: name})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = c.DropTable(ctx, testIdent(), false)
		_ = c.Unwrap().DropNamespace(ctx, testIdent()[:1])
		c.Close()
	})
	return c
}

func TestRoundTripPostgres(t *testing.T) { testRoundTrip(t, openPostgres(t)) }

func TestConflictPostgres(t *testing.T) { testConflict(t, openPostgres(t)) }
