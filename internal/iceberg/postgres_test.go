package iceberg

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

// openPostgres opens a PostgreSQL catalog under a catalog name unique to this test, so that
// runs sharing the database never see each other's tables, or skips the test when the
// server is not reachable.
func openPostgres(t *testing.T) *Catalog {
	t.Helper()
	return openPostgresAt(t, t.TempDir())
}

// openPostgresAt is openPostgres with the given warehouse.
func openPostgresAt(t *testing.T, warehouse string) *Catalog {
	t.Helper()
	uri := testinfra.RequirePostgres(t)
	name := fmt.Sprintf("lstest_%d_%d", time.Now().UnixNano(), os.Getpid())
	c, err := Open(context.Background(), Config{CatalogURI: uri, Warehouse: warehouse, Name: name})
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
