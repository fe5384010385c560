package iceberg

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

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

// Workers started at once on a database that has no catalog tables yet all create them;
// PostgreSQL fails all but one CREATE TABLE IF NOT EXISTS (a unique violation on pg_type).
// Every one of them must open the catalog (a CI run lost a scale-out worker to this).
func TestOpenPostgresConcurrentlyOnAFreshDatabase(t *testing.T) {
	uri := testinfra.RequirePostgres(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	for round := range 5 { // the race is lost only sometimes: each round is a fresh database
		db := fmt.Sprintf("lsrace_%d_%d_%d", time.Now().UnixNano(), os.Getpid(), round)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatalf("create database: %v", err)
		}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + db
		var g errgroup.Group
		for w := range 8 {
			g.Go(func() error {
				c, err := Open(ctx, Config{CatalogURI: u.String(), Warehouse: t.TempDir(), Name: fmt.Sprintf("w%d", w)})
				if err != nil {
					return fmt.Errorf("worker %d: %w", w, err)
				}
				return c.Close()
			})
		}
		err = g.Wait()
		if _, dropErr := admin.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)"); dropErr != nil {
			t.Logf("drop database %s: %v", db, dropErr)
		}
		if err != nil {
			t.Fatalf("round %d: 8 workers opening a fresh database's catalog at once: %v", round, err)
		}
	}
}
