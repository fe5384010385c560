package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// Globals are the flags every command shares (docs/design.md §5), and the configuration
// they describe.
type Globals struct {
	Brokers   string
	Topic     string
	Table     string
	DataDir   string
	Catalog   string
	Warehouse string
	LogFormat string
	LogLevel  string
	// ConnectTimeout bounds the first contact with Kafka for commands a person waits on
	// (produce, verify, run --available-now, rejects republish); a streaming run waits.
	ConnectTimeout time.Duration
	// ReadOnly: the command only reads the catalog and must create nothing (report,
	// verify, rejects, maintain --dry-run); see MarkReadOnly.
	ReadOnly bool
	Contract string // --contract: a contract file, "" for the table's own
	Security Security

	// Set by Setup from Security.
	kafkaSec   kafka.ClientConfig // TLS and SASL
	catalogSec iceberg.Config     // Password and REST
}

// AddFlags registers g's flags on f (the root command's persistent flags).
func (g *Globals) AddFlags(f *pflag.FlagSet) {
	f.String("config", "", "YAML file of flag values (keys are flag names); env LEDGERSTREAM_CONFIG")
	f.StringVar(&g.Brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	f.StringVar(&g.Topic, "topic", "financial_transactions", "Kafka topic of the transactions")
	f.StringVar(&g.Table, "table", "demo.transactions_ledger", "ledger table as namespace.table")
	f.StringVar(&g.DataDir, "data-dir", "./ledgerstream-data", "home of the default SQLite catalog (catalog.db) and warehouse/")
	f.StringVar(&g.Catalog, "catalog", "", "Iceberg catalog: sqlite:PATH | postgres://… | http(s)://… (default sqlite:<data-dir>/catalog.db)")
	f.StringVar(&g.Warehouse, "warehouse", "", "warehouse: a local path, file://…, or s3://bucket/prefix (default <data-dir>/warehouse)")
	f.StringVar(&g.Contract, "contract", "", "YAML file of the ledger contract: your messages' fields, checks, key, hash and partitioning (default: the table's own; the notebook's for a new table); see `ledgerstream contract`")
	f.StringVar(&g.LogFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&g.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&g.ConnectTimeout, "connect-timeout", 30*time.Second, "produce, verify, run --available-now and rejects republish fail when no Kafka broker answers within this")
	FlagRange(f, "connect-timeout", "100ms", "1h")
	g.Security.AddFlags(f)
}

// Setup runs before every command: it fills the flags from the environment and --config,
// checks their ranges, sets up logging and reads the secrets the security settings name.
func (g *Globals) Setup(cmd *cobra.Command) error {
	if err := ApplyConfig(cmd); err != nil {
		return err
	}
	if err := CheckRanges(cmd); err != nil {
		return err
	}
	g.ReadOnly = cmd.Annotations[readOnlyAnnotation] == "true"
	if err := g.setupLogging(); err != nil {
		return err
	}
	// After logging: the warnings go where the user asked.
	if err := g.Security.Kafka.Apply(&g.kafkaSec); err != nil {
		return err
	}
	g.catalogSec.CatalogURI = g.Catalog
	return g.Security.Catalog.Apply(&g.catalogSec)
}

// readOnlyAnnotation marks a command that only reads the catalog: it opens it read-only,
// so that a mistyped --data-dir is an error rather than a new empty ledger.
const readOnlyAnnotation = "ledgerstream/read-only"

// MarkReadOnly marks the named subcommands of root, and theirs (rejects republish writes
// to Kafka, never to the catalog), as only reading the catalog.
func MarkReadOnly(root *cobra.Command, names ...string) {
	var mark func(*cobra.Command)
	mark = func(c *cobra.Command) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[readOnlyAnnotation] = "true"
		for _, sub := range c.Commands() {
			mark(sub)
		}
	}
	for _, c := range root.Commands() {
		if slices.Contains(names, c.Name()) {
			mark(c)
		}
	}
}

// setupLogging installs the slog handler the flags ask for, on stderr.
func (g *Globals) setupLogging() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.LogFormat {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", g.LogFormat)
	}
	return nil
}

// KafkaConfig is the client configuration the flags describe.
func (g *Globals) KafkaConfig() kafka.ClientConfig {
	var brokers []string
	for _, b := range strings.Split(g.Brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return kafka.ClientConfig{Brokers: brokers, Logger: slog.Default(), TLS: g.kafkaSec.TLS, SASL: g.kafkaSec.SASL}
}

// KafkaConfigBounded is KafkaConfig for a command a person waits on: it fails after
// --connect-timeout when no broker answers, instead of retrying for ever.
func (g *Globals) KafkaConfigBounded() kafka.ClientConfig {
	c := g.KafkaConfig()
	c.ConnectTimeout = g.ConnectTimeout
	return c
}

// IcebergConfig is the catalog configuration the flags describe.
func (g *Globals) IcebergConfig() iceberg.Config {
	return iceberg.Config{CatalogURI: g.Catalog, Warehouse: g.Warehouse, DataDir: g.DataPath(""),
		Password: g.catalogSec.Password, REST: g.catalogSec.REST,
		S3:       iceberg.S3Config{Endpoint: g.Security.S3Endpoint, Region: g.Security.S3Region},
		ReadOnly: g.ReadOnly}
}

// DataPath is a folder under the data directory, as an absolute path.
func (g *Globals) DataPath(sub string) string {
	dir := g.DataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Join(dir, sub)
}

// OpenLedger parses --table and opens the catalog the flags describe. Close the catalog.
func (g *Globals) OpenLedger(ctx context.Context) (table.Identifier, *iceberg.Catalog, error) {
	ident, err := iceberg.ParseIdent(g.Table)
	if err != nil {
		return nil, nil, err
	}
	cat, err := iceberg.Open(ctx, g.IcebergConfig())
	if err != nil {
		return nil, nil, err
	}
	return ident, cat, nil
}

// ContractFlag returns the contract --contract names, or nil without one.
func (g *Globals) ContractFlag() (*ledger.Contract, error) {
	if g.Contract == "" {
		return nil, nil
	}
	return LoadContract(g.Contract)
}

// LedgerContract returns the contract the ledger ident is written with (the default one
// when the table does not exist yet). A --contract that says otherwise is an error for the
// commands that only read: the table's contract is the one its rows were decoded with.
func (g *Globals) LedgerContract(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier) (*ledger.Contract, error) {
	given, err := g.ContractFlag()
	if err != nil {
		return nil, err
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		if given != nil && errors.Is(err, catalog.ErrNoSuchTable) {
			return given, nil
		}
		if errors.Is(err, catalog.ErrNoSuchTable) {
			return ledger.DefaultContract(), nil
		}
		return nil, err
	}
	have, err := iceberg.TableContract(tbl)
	if err != nil {
		return nil, err
	}
	if given != nil && string(given.YAML()) != string(have.YAML()) {
		return nil, fmt.Errorf("ledger %s is written with another contract than --contract %s (`ledgerstream contract show` prints the table's; `run --contract` applies a new one)", g.Table, g.Contract)
	}
	return have, nil
}

// LoadContract reads and validates a contract file.
func LoadContract(path string) (*ledger.Contract, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	c, err := ledger.ParseContract(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
