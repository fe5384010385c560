// Command ledgerstream streams financial transactions from Kafka into an Apache Iceberg
// ledger table exactly once. Run `ledgerstream demo` for the whole pipeline with nothing
// installed; `ledgerstream --help` lists the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
)

// globals are the flags every command shares (docs/design.md §5).
type globals struct {
	brokers   string
	topic     string
	table     string
	dataDir   string
	catalog   string
	warehouse string
	logFormat string
	logLevel  string
	sec       securityFlags // TLS, SASL, secrets, REST and S3 settings: security.go
}

// exitError carries a process exit code without printing more than its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := explainKafkaError(newRoot().ExecuteContext(ctx))
	stop()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "ledgerstream:", ee.msg)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "ledgerstream:", err)
	os.Exit(1)
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "ledgerstream",
		Short:         "Stream financial transactions from Kafka into an Iceberg ledger, exactly once",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd); err != nil {
				return err
			}
			if err := g.setupLogging(); err != nil {
				return err
			}
			return g.sec.resolve(g.catalog)
		},
	}
	f := root.PersistentFlags()
	f.String("config", "", "YAML file of flag values (keys are flag names); env LEDGERSTREAM_CONFIG")
	f.StringVar(&g.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	f.StringVar(&g.topic, "topic", "financial_transactions", "Kafka topic of the transactions")
	f.StringVar(&g.table, "table", "demo.transactions_ledger", "ledger table as namespace.table")
	f.StringVar(&g.dataDir, "data-dir", "./ledgerstream-data", "home of the default SQLite catalog (catalog.db) and warehouse/")
	f.StringVar(&g.catalog, "catalog", "", "Iceberg catalog: sqlite:PATH | postgres://… | http(s)://… (default sqlite:<data-dir>/catalog.db)")
	f.StringVar(&g.warehouse, "warehouse", "", "warehouse: a local path, file://…, or s3://bucket/prefix (default <data-dir>/warehouse)")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	addSecurityFlags(f, &g.sec)

	root.AddCommand(newBrokerCmd(g), newProduceCmd(g), newRunCmd(g), newReportCmd(g), newVerifyCmd(g), newHistoryCmd(g), newDemoCmd(g), newRejectsCmd(g), newBenchCmd(g),
		newMaintainCmd(g), newContractCmd(g))
	return root
}

// setupLogging installs the slog handler the flags ask for, on stderr.
func (g *globals) setupLogging() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", g.logFormat)
	}
	return nil
}

// kafkaConfig is the client configuration the flags describe.
func (g *globals) kafkaConfig() kafka.ClientConfig {
	var brokers []string
	for _, b := range strings.Split(g.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return kafka.ClientConfig{Brokers: brokers, Logger: slog.Default(), TLS: g.sec.kafkaTLSConfig, SASL: g.sec.kafkaSASL}
}

// icebergConfig is the catalog configuration the flags describe.
func (g *globals) icebergConfig() iceberg.Config {
	dir := g.dataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return iceberg.Config{CatalogURI: g.catalog, Warehouse: g.warehouse, DataDir: dir,
		Password: g.sec.catalogPass, REST: g.sec.rest, S3: iceberg.S3Config{Endpoint: g.sec.s3Endpoint, Region: g.sec.s3Region}}
}
