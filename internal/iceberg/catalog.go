// Package iceberg is ledgerstream's adapter to Apache Iceberg (through iceberg-go): it opens
// catalogs from a URI, creates and checks the ledger table, converts ledger rows to Arrow,
// implements engine.Table with the exactly-once protocol of docs/design.md §4 (data files staged first,
// then one conditional commit whose snapshot summary carries the pipeline's offsets), and reads
// the table back for report and verify.
//
// The package is named iceberg like the library it wraps; import iceberg-go under an alias
// (this package uses ice) when both are needed.
package iceberg

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	iceio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers the s3:// (s3a, s3n) FileIO
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" database/sql driver
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
	// Properties are extra catalog and FileIO properties, passed through. S3 credentials
	// (s3.access-key-id, s3.secret-access-key, s3.session-token) are refused here: they come
	// from the AWS environment and credential chain only, never from configuration that
	// could be logged or persisted.
	Properties map[string]string

	// Password is the PostgreSQL catalog's password. When set it replaces any password in
	// CatalogURI; when empty, pgx's own sources apply (the URI, PGPASSWORD, ~/.pgpass).
	Password string
	// REST configures an Iceberg REST catalog (CatalogURI http(s)://…).
	REST RESTConfig
	// S3 configures an s3:// warehouse.
	S3 S3Config

	// ReadOnly is for commands that only read (report, verify, rejects list, a dry run):
	// Open then creates nothing. A SQLite catalog file that does not exist is
	// ErrNoLedger instead of a new empty catalog, and no warehouse folder is made.
	ReadOnly bool
}

// ErrNoLedger reports a read-only Open of a SQLite catalog that does not exist.
var ErrNoLedger = errors.New("no ledger")

// RESTConfig is the REST catalog's authentication, routing and TLS. Token and Credential
// are secrets: the CLI reads them from files or the environment, never from flags.
type RESTConfig struct {
	// Token is a bearer token sent as "Authorization: Bearer <token>".
	Token string
	// Credential is an OAuth2 client credential, "client_id:client_secret" (or a bare
	// secret), exchanged for a token at OAuth2URI (default <uri>/v1/oauth/tokens) with the
	// client-credentials grant. At most one of Token and Credential may be set.
	Credential string
	// OAuth2URI is the token endpoint, when it is not the catalog's own.
	OAuth2URI string
	// Scope is the OAuth2 scope requested ("catalog" when empty).
	Scope string
	// Warehouse is sent to GET /v1/config as ?warehouse=… (Polaris, Lakekeeper and
	// Gravitino take a warehouse or catalog name there; the server answers with the prefix
	// to use). Empty means Config.Warehouse when that is set.
	Warehouse string
	// Prefix is the path prefix after /v1/, for servers that need it set by the client
	// rather than returned by /v1/config.
	Prefix string
	// TLS, when non-nil, is the client TLS configuration for the catalog (and its OAuth2
	// endpoint).
	TLS *tls.Config
}

// S3Config locates an S3-compatible object store. Credentials are deliberately absent:
// the AWS SDK finds them (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the
// shared config files, web identity, container and instance roles).
type S3Config struct {
	// Endpoint is the S3 API endpoint (e.g. http://127.0.0.1:7070 for a local gateway).
	// Empty means AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS itself. With an
	// endpoint, path-style addressing is used (http://host/bucket/key).
	Endpoint string
	// Region is the signing region. Empty means the AWS environment's (AWS_REGION,
	// AWS_DEFAULT_REGION, the profile), or us-east-1 for a custom endpoint when none is set.
	Region string
}

// secretPropertyKeys are FileIO properties that hold credentials; Open refuses them in
// Config.Properties (see there).
var secretPropertyKeys = []string{iceio.S3AccessKeyID, iceio.S3SecretAccessKey, iceio.S3SessionToken}

// s3Properties turns S3Config (and the AWS SDK's endpoint variables, which iceberg-go's
// S3 FileIO does not read itself) into FileIO properties.
func s3Properties(c S3Config, props ice.Properties) {
	endpoint := c.Endpoint
	for _, env := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if endpoint == "" {
			endpoint = os.Getenv(env)
		}
	}
	if endpoint != "" {
		// Setting it explicitly (rather than leaving it to the SDK) also turns on
		// path-style addressing, which S3-compatible servers on an IP address need.
		props[iceio.S3EndpointURL] = endpoint
	}
	region := c.Region
	if region == "" && endpoint != "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" && os.Getenv("AWS_PROFILE") == "" {
		region = "us-east-1"
	}
	if region != "" {
		props[iceio.S3Region] = region
	}
}

// Catalog is an open Iceberg catalog.
type Catalog struct {
	cat       catalog.Catalog
	kind      string // "sqlite", "postgres" or "rest"
	warehouse string
	close     func() error

	// SQL catalogs: the database, the catalog's name in it and the FileIO properties,
	// to find the metadata file of a table that does not load (metadataDamage).
	db    *sql.DB
	name  string
	props ice.Properties
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
	warehouse, err := warehouseLocation(cfg, !cfg.ReadOnly)
	if err != nil {
		return nil, err
	}
	props := ice.Properties{}
	for k, v := range cfg.Properties {
		props[k] = v
	}
	for _, k := range secretPropertyKeys {
		if _, ok := props[k]; ok {
			return nil, fmt.Errorf("iceberg: open catalog: property %s refused: S3 credentials come from the AWS environment or credential chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, …)", k)
		}
	}
	if strings.HasPrefix(warehouse, "s3") || cfg.S3 != (S3Config{}) {
		s3Properties(cfg.S3, props)
	}
	if err := checkWarehouse(ctx, warehouse, props); err != nil {
		return nil, err
	}

	switch {
	case strings.HasPrefix(uri, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(uri, "sqlite:"), "//")
		if path == "" {
			return nil, fmt.Errorf("iceberg: open catalog %q: empty SQLite path", uri)
		}
		if cfg.ReadOnly {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w at %s: run `ledgerstream run` first, or pass --data-dir (or --catalog) to point at one", ErrNoLedger, path)
			}
		} else if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("iceberg: open catalog %q: %w", uri, explainNotWritable(filepath.Dir(path), err))
		}
		if warehouse == "" {
			return nil, fmt.Errorf("iceberg: open catalog %q: no warehouse (set Warehouse or DataDir)", uri)
		}
		db, err := sql.Open(sqliteshim.ShimName, path+"?"+sqlitePragmas)
		if err != nil {
			return nil, fmt.Errorf("iceberg: open SQLite catalog %s: %w", path, err)
		}
		c, err := newSQLCatalog(db, name, sqlcat.SQLite, "sqlite", warehouse, props)
		if err != nil {
			// SQLite writes a lock file and a write-ahead log beside the catalog, readers too.
			return nil, explainNotWritable(filepath.Dir(path), err)
		}
		return c, nil

	case strings.HasPrefix(uri, "postgres://"), strings.HasPrefix(uri, "postgresql://"):
		if warehouse == "" {
			return nil, fmt.Errorf("iceberg: open catalog %s: no warehouse (set Warehouse or DataDir)", redact(uri))
		}
		// Parse with pgx rather than handing the URI to database/sql, so that a password
		// from the environment or a file never has to be spliced into a connection string.
		pgcfg, err := pgx.ParseConfig(uri)
		if err != nil {
			return nil, fmt.Errorf("iceberg: open PostgreSQL catalog %s: %w", redact(uri), redactErr(err, uri, cfg.Password))
		}
		if cfg.Password != "" {
			pgcfg.Password = cfg.Password
		}
		db := stdlib.OpenDB(*pgcfg)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("iceberg: open PostgreSQL catalog %s: %w", redact(uri), redactErr(err, uri, cfg.Password))
		}
		return newSQLCatalog(db, name, sqlcat.Postgres, "postgres", warehouse, props)

	case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
		opts, err := restOptions(cfg, props)
		if err != nil {
			return nil, fmt.Errorf("iceberg: open REST catalog %s: %w", redact(uri), err)
		}
		rc, err := rest.NewCatalog(ctx, name, uri, opts...)
		if err != nil {
			return nil, fmt.Errorf("iceberg: open REST catalog %s: %w", redact(uri), redactErr(err, uri, cfg.REST.Token, cfg.REST.Credential))
		}
		return &Catalog{cat: rc, kind: "rest", warehouse: cfg.Warehouse, close: rc.Close}, nil
	}
	return nil, fmt.Errorf("iceberg: open catalog %q: unsupported URI (want sqlite:PATH, postgres://… or http(s)://…)", redact(uri))
}

func newSQLCatalog(db *sql.DB, name string, dialect sqlcat.SupportedDialect, kind, warehouse string, props ice.Properties) (*Catalog, error) {
	props["warehouse"] = warehouse
	c, err := sqlcat.NewCatalog(name, db, dialect, props)
	for attempt := 1; err != nil && attempt < createRaceAttempts && lostCreateRace(err); attempt++ {
		// Several workers started at once on a database without the catalog's tables all
		// create them (CREATE TABLE IF NOT EXISTS), and PostgreSQL lets all but one fail on
		// the type the table implies. The winner's tables are there now: open again.
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
		c, err = sqlcat.NewCatalog(name, db, dialect, props)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("iceberg: open %s catalog: %w", kind, err)
	}
	// NewCatalog leaves a caller-supplied *sql.DB to the caller: close both.
	return &Catalog{cat: c, kind: kind, warehouse: warehouse, close: func() error {
		return errors.Join(c.Close(), db.Close())
	}, db: db, name: name, props: props}, nil
}

// createRaceAttempts bounds how often opening a SQL catalog is tried again after losing
// the race to create its tables (lostCreateRace).
const createRaceAttempts = 5

// lostCreateRace reports whether err is PostgreSQL refusing a CREATE TABLE IF NOT EXISTS
// because another session created the same table meanwhile: a unique violation on the
// catalog of types (23505), the table's type (42710) or the table itself (42P07), all
// seen; opening again gets past it.
func lostCreateRace(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "42710" || pg.Code == "42P07")
}

// warehouseLocation resolves the warehouse to an absolute local path (iceberg-go's local
// FileIO takes plain paths), or passes other schemes (s3://…) through.
func warehouseLocation(cfg Config, create bool) (string, error) {
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
	if !create {
		return abs, nil
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("iceberg: warehouse %q: %w", w, explainNotWritable(abs, err))
	}
	return abs, nil
}

// explainNotWritable adds to err, when dir (or its nearest existing parent) cannot be
// written to, which folder and why: a read-only file system or missing permission.
func explainNotWritable(dir string, err error) error {
	for d := dir; ; d = filepath.Dir(d) {
		if _, serr := os.Stat(d); serr == nil {
			if aerr := syscall.Access(d, 2 /* W_OK */); aerr != nil {
				return fmt.Errorf("%w (the folder %s is not writable: %v; ledgerstream keeps its catalog's lock and log files there: use a writable --data-dir)", err, d, aerr)
			}
			return err
		}
		if parent := filepath.Dir(d); parent == d {
			return err
		}
	}
}

// restOptions are the iceberg-go REST options cfg asks for.
func restOptions(cfg Config, props ice.Properties) ([]rest.Option, error) {
	rc := cfg.REST
	opts := []rest.Option{rest.WithAdditionalProps(props)}
	if rc.Token != "" && rc.Credential != "" {
		return nil, errors.New("both a bearer token and an OAuth2 client credential are set: choose one")
	}
	if rc.Token != "" {
		opts = append(opts, rest.WithOAuthToken(rc.Token))
	}
	if rc.Credential != "" {
		opts = append(opts, rest.WithCredential(rc.Credential))
	}
	if rc.OAuth2URI != "" {
		u, err := url.Parse(rc.OAuth2URI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("OAuth2 token endpoint %q: want an http(s):// URL", redact(rc.OAuth2URI))
		}
		opts = append(opts, rest.WithAuthURI(u))
	}
	if rc.Scope != "" {
		opts = append(opts, rest.WithScope(rc.Scope))
	}
	wh := rc.Warehouse
	if wh == "" {
		wh = cfg.Warehouse
	}
	if wh != "" {
		opts = append(opts, rest.WithWarehouseLocation(wh))
	}
	if rc.Prefix != "" {
		opts = append(opts, rest.WithPrefix(strings.Trim(rc.Prefix, "/")))
	}
	if rc.TLS != nil {
		opts = append(opts, rest.WithTLSConfig(rc.TLS.Clone()))
	}
	return opts, nil
}

// secretQueryParams are URI query parameters whose values Redact hides (pgx accepts
// password and sslpassword in the query string).
var secretQueryParams = []string{"password", "sslpassword", "token", "credential", "secret", "client_secret", "access_token"}

// Redact returns uri with its password (user:password@) and any secret query parameter
// replaced by "xxxxx", for logs and error messages. A string that does not parse as a URL
// is returned as "(unparseable URI)" when it might hold a secret.
func Redact(uri string) string { return redact(uri) }

func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		if strings.Contains(uri, "@") || strings.Contains(strings.ToLower(uri), "password") {
			return "(unparseable URI)"
		}
		return uri
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			for _, s := range secretQueryParams {
				if strings.EqualFold(k, s) {
					q[k] = []string{"xxxxx"}
					changed = true
				}
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// redactErr returns err with every given secret (and the raw URI, which may carry one)
// replaced, for the rare library error that quotes its input.
func redactErr(err error, uri string, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := msg
	if uri != "" && uri != redact(uri) {
		out = strings.ReplaceAll(out, uri, redact(uri))
	}
	if u, perr := url.Parse(uri); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	for _, s := range secrets {
		if s != "" {
			out = strings.ReplaceAll(out, s, "xxxxx")
		}
	}
	if out == msg {
		return err
	}
	return redactedError{msg: out, err: err}
}

// redactedError keeps the wrapped error for errors.Is while printing the redacted text.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

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

// LoadTable loads a table. A metadata file that cannot be read is a *DamageError naming
// it (marked retry.Permanent).
func (c *Catalog) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	tbl, err := c.loadTable(ctx, ident)
	if err != nil {
		if _, ok := AsDamage(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("iceberg: load table %s: %w", identString(ident), err)
	}
	return tbl, nil
}

// loadTable is the catalog's LoadTable, with its error as the catalog gave it, unless the
// table's metadata file is damaged: then a *DamageError naming it, marked permanent.
func (c *Catalog) loadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	tbl, err := c.cat.LoadTable(ctx, ident)
	if err != nil {
		if d := c.metadataDamage(ctx, ident, err); d != nil {
			return nil, d
		}
		return nil, err
	}
	return tbl, nil
}

// metadataDamage tells whether loading ident failed with err because its metadata file
// is damaged (missing, or not a metadata document), by reading the file the catalog names
// itself. Only SQL catalogs say where that file is; a REST catalog reads it on its side.
func (c *Catalog) metadataDamage(ctx context.Context, ident table.Identifier, err error) error {
	if c.db == nil || errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || len(ident) < 2 {
		return nil
	}
	// The JDBC catalog schema (iceberg-go's sql catalog): one row per table, with the
	// current and the previous metadata location.
	q := "SELECT metadata_location, previous_metadata_location FROM iceberg_tables " +
		"WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?"
	if c.kind == "postgres" {
		q = "SELECT metadata_location, previous_metadata_location FROM iceberg_tables " +
			"WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3"
	}
	var loc, prev sql.NullString
	ns, name := strings.Join(ident[:len(ident)-1], "."), ident[len(ident)-1]
	if qerr := c.db.QueryRowContext(ctx, q, c.name, ns, name).Scan(&loc, &prev); qerr != nil || !loc.Valid {
		return nil
	}
	fsys, ferr := iceio.LoadFS(ctx, c.props, loc.String)
	if ferr != nil {
		return nil
	}
	de := &DamageError{Table: identString(ident), Kind: FileMetadata, Path: loc.String, Records: -1, Previous: prev.String}
	if prev.Valid && prev.String != "" {
		de.Rollback = fmt.Sprintf("in the %s catalog: UPDATE iceberg_tables SET metadata_location = '%s', previous_metadata_location = NULL "+
			"WHERE catalog_name = '%s' AND table_namespace = '%s' AND table_name = '%s'", c.kind, prev.String, c.name, ns, name)
	}
	data, rerr := readFile(fsys, loc.String)
	if rerr != nil {
		data, rerr = readFile(fsys, loc.String) // once more: a read cut short on the way is not a file cut short
	}
	if rerr != nil {
		return damaged(fsys, de, -1, rerr)
	}
	if strings.HasSuffix(loc.String, ".gz.metadata.json") {
		return nil // compressed: not read here
	}
	if _, perr := table.ParseMetadataBytes(data); perr != nil {
		de.Problem, de.Err = fmt.Sprintf("not a metadata document (%v)", perr), perr
		return permanentDamage(de)
	}
	return nil // the file reads: the failure was elsewhere
}

// readFile reads the whole file at path through fsys.
func readFile(fsys iceio.IO, path string) ([]byte, error) {
	if rf, ok := fsys.(iceio.ReadFileIO); ok {
		return rf.ReadFile(path)
	}
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
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
