// Package iceberg is ledgerstream's adapter to Apache Iceberg (through iceberg-go): it opens
// catalogs from a URI, creates and checks the ledger table, converts ledger rows to Arrow,
// implements engine.Table with the exactly-once protocol of DESIGN §4 (data files staged first,
// then one conditional commit whose snapshot summary carries the pipeline's offsets), and reads
// the table back for report and verify.
//
// The package is named iceberg like the library it wraps; import iceberg-go under an alias
// (this package uses ice) when both are needed.
package iceberg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/uptrace/bun/driver/sqliteshim"
)

// DefaultCatalogName is the catalog name stored in the SQL catalog's rows (catalog_name); a
// Spark or Trino JDBC catalog reading the same database must use the same name.
const DefaultCatalogName = "ledgerstream"

// sqlitePragmas make one SQLite catalog file shareable by several processes: WAL lets readers
// run beside the single writer, and the busy timeout makes a writer wait for the lock instead
// of failing at once with "database is locked".
const sqlitePragmas = "_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)"

// Config says where the catalog and the warehouse are.
type Config struct {
	// CatalogURI is sqlite:PATH, postgres://… (or postgresql://…), or http(s)://… for an
	// Iceberg REST catalog. Empty means sqlite:<DataDir>/catalog.db.
	CatalogURI string
	// Warehouse is where new tables are created: a local path or file://…. Empty means
	// <DataDir>/warehouse. For a REST catalog it is passed as the warehouse option only when
	// set, since the server usually decides.
	Warehouse string
	// DataDir is the home of the defaults above.
	DataDir string
	// Name is the catalog name (DefaultCatalogName when empty). SQL catalogs keep several
	// catalogs apart in one database by this name.
	Name string
	// Properties are extra catalog and FileIO properties (s3.endpoint, …), passed through.
	Properties map[string]string
}

// Catalog is an open Iceberg catalog.
type Catalog struct {
	cat       catalog.Catalog
	kind      string // "sqlite", "postgres" or "rest"
	warehouse string
	close     func() error
}

// Open opens the catalog cfg describes. SQL catalogs get their tables created when absent.
func Open(ctx context.Context, cfg Config) (*Catalog, error) {
	name := cfg.Name
	if name == "" {
		name = DefaultCatalogName
	}
	uri := cfg.CatalogURI
	if uri == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("iceberg: open catalog: neither a catalog URI nor a data directory is set")
		}
		uri = "sqlite:" + filepath.Join(cfg.DataDir, "catalog.db")
	}
	warehouse, err := warehouseLocation(cfg)
	if err != nil {
		return nil, err
	}
	props := ice.Properties{}
	for k, v := range cfg.Properties {
		props[k] = v
	}

	switch {
	case strings.HasPrefix(uri, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(uri, "sqlite:"), "//")
		if path == "" {
			return nil, fmt.Errorf("iceberg: open catalog %q: empty SQLite path", uri)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("iceberg: open catalog %q: %w", uri, err)
		}
		if warehouse == "" {
			return nil, fmt.Errorf("iceberg: open catalog %q: no warehouse (set Warehouse or DataDir)", uri)
		}
		db, err := sql.Open(sqliteshim.ShimName, path+"?"+sqlitePragmas)
		if err != nil {
			return nil, fmt.Errorf("iceberg: open SQLite catalog %s: %w", path, err)
		}
		return newSQLCatalog(db, name, sqlcat.SQLite, "sqlite", warehouse, props)

	case strings.HasPrefix(uri, "postgres://"), strings.HasPrefix(uri, "postgresql://"):
		if warehouse == "" {
			return nil, fmt.Errorf("iceberg: open catalog %s: no warehouse (set Warehouse or DataDir)", redact(uri))
		}
		db, err := sql.Open("pgx", uri)
		if err != nil {
			return nil, fmt.Errorf("iceberg: open PostgreSQL catalog %s: %w", redact(uri), err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("iceberg: open PostgreSQL catalog %s: %w", redact(uri), err)
		}
		return newSQLCatalog(db, name, sqlcat.Postgres, "postgres", warehouse, props)

	case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
		opts := []rest.Option{rest.WithAdditionalProps(props)}
		if cfg.Warehouse != "" {
			opts = append(opts, rest.WithWarehouseLocation(cfg.Warehouse))
		}
		rc, err := rest.NewCatalog(ctx, name, uri, opts...)
		if err != nil {
			return nil, fmt.Errorf("iceberg: open REST catalog %s: %w", redact(uri), err)
		}
		return &Catalog{cat: rc, kind: "rest", warehouse: cfg.Warehouse, close: rc.Close}, nil
	}
	return nil, fmt.Errorf("iceberg: open catalog %q: unsupported URI (want sqlite:PATH, postgres://… or http(s)://…)", redact(uri))
}

func newSQLCatalog(db *sql.DB, name string, dialect sqlcat.SupportedDialect, kind, warehouse string, props ice.Properties) (*Catalog, error) {
	props["warehouse"] = warehouse
	c, err := sqlcat.NewCatalog(name, db, dialect, props)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("iceberg: open %s catalog: %w", kind, err)
	}
	// NewCatalog leaves a caller-supplied *sql.DB to the caller: close both.
	return &Catalog{cat: c, kind: kind, warehouse: warehouse, close: func() error {
		return errors.Join(c.Close(), db.Close())
	}}, nil
}

// warehouseLocation resolves the warehouse to an absolute local path (iceberg-go's local
// FileIO takes plain paths), or passes other schemes (s3://…) through.
func warehouseLocation(cfg Config) (string, error) {
	w := cfg.Warehouse
	if w == "" {
		if cfg.DataDir == "" {
			return "", nil
		}
		w = filepath.Join(cfg.DataDir, "warehouse")
	}
	if strings.HasPrefix(w, "file://") {
		u, err := url.Parse(w)
		if err != nil {
			return "", fmt.Errorf("iceberg: warehouse %q: %w", w, err)
		}
		w = u.Path
	} else if strings.Contains(w, "://") {
		return w, nil
	}
	abs, err := filepath.Abs(w)
	if err != nil {
		return "", fmt.Errorf("iceberg: warehouse %q: %w", w, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("iceberg: warehouse %q: %w", w, err)
	}
	return abs, nil
}

// redact hides a password in a URI for error messages.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		return uri
	}
	return u.Redacted()
}

// Close releases the catalog's connections.
func (c *Catalog) Close() error {
	if c == nil || c.close == nil {
		return nil
	}
	return c.close()
}

// Kind is "sqlite", "postgres" or "rest".
func (c *Catalog) Kind() string { return c.kind }

// Warehouse is the resolved warehouse location ("" for a REST catalog that chooses its own).
func (c *Catalog) Warehouse() string { return c.warehouse }

// Unwrap returns the iceberg-go catalog, for maintenance code that needs more than this
// package offers.
func (c *Catalog) Unwrap() catalog.Catalog { return c.cat }

// ParseIdent splits "namespace.table" (or "a.b.table") into an identifier.
func ParseIdent(s string) (table.Identifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("iceberg: table name %q: want namespace.table", s)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("iceberg: table name %q: empty component", s)
		}
	}
	return table.Identifier(parts), nil
}

// EnsureNamespace creates the namespace if it does not exist. Two processes racing to create
// it both succeed.
func (c *Catalog) EnsureNamespace(ctx context.Context, ns table.Identifier) error {
	ok, err := c.cat.CheckNamespaceExists(ctx, ns)
	if err != nil {
		return fmt.Errorf("iceberg: check namespace %s: %w", strings.Join(ns, "."), err)
	}
	if ok {
		return nil
	}
	if err := c.cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return fmt.Errorf("iceberg: create namespace %s: %w", strings.Join(ns, "."), err)
	}
	return nil
}

// LoadTable loads a table.
func (c *Catalog) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	tbl, err := c.cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, fmt.Errorf("iceberg: load table %s: %w", identString(ident), err)
	}
	return tbl, nil
}

// DropTable removes the table from the catalog and, with purge, deletes its files (best
// effort on the catalog's side). A missing table is not an error.
func (c *Catalog) DropTable(ctx context.Context, ident table.Identifier, purge bool) error {
	var err error
	if p, ok := c.cat.(catalog.PurgeableTable); ok && purge {
		err = p.PurgeTable(ctx, ident)
	} else {
		err = c.cat.DropTable(ctx, ident)
	}
	if err != nil && !errors.Is(err, catalog.ErrNoSuchTable) {
		return fmt.Errorf("iceberg: drop table %s: %w", identString(ident), err)
	}
	return nil
}

func identString(ident table.Identifier) string { return strings.Join(ident, ".") }
