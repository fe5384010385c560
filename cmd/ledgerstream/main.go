// Command ledgerstream streams financial transactions from Kafka into an Apache Iceberg
// ledger table exactly once. Run `ledgerstream demo` for the whole pipeline with nothing
// installed; `ledgerstream --help` lists the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

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
	// connectTimeout bounds the first contact with Kafka for commands a person waits on
	// (produce, verify, run --available-now, rejects republish); a streaming run waits.
	connectTimeout time.Duration
	// readOnly: the command only reads the catalog and must create nothing (report,
	// verify, rejects, maintain --dry-run); see markReadOnly.
	readOnly bool
	contract string        // --contract: a contract file, "" for the table's own
	sec      securityFlags // TLS, SASL, secrets, REST and S3 settings: security.go
}

// exitError carries a process exit code without printing more than its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signalContext()
	cmd, err := newRoot().ExecuteContextC(ctx)
	err = explainKafkaError(err)
	stop()
	if err == nil {
		return
	}
	if wantsJSON(cmd) {
		writeJSONError(os.Stdout, err)
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

// wantsJSON says whether cmd was asked for a JSON document (--json).
func wantsJSON(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// jsonError is the document a --json command prints on stdout when it fails before its
// own document: scripts parse stdout whatever happened.
type jsonError struct {
	Error struct {
		// What is the error message (on stderr in full); for a damaged file, which file
		// and how, without the hint.
		What string `json:"what"`
		// Path is the file the error is about, when it names one (a damaged table file).
		Path string `json:"path"`
		// Hint says what to do, when known.
		Hint string `json:"hint"`
	} `json:"error"`
}

// writeJSONError prints err as a jsonError, unless the command already printed its
// document (an *exitError: a failed check, a report with missing rows).
func writeJSONError(w io.Writer, err error) {
	var ee *exitError
	if errors.As(err, &ee) {
		return
	}
	var doc jsonError
	doc.Error.What = err.Error()
	if d, ok := iceberg.AsDamage(err); ok {
		doc.Error.What, doc.Error.Path, doc.Error.Hint = d.What(), d.Path, d.Hint()
	}
	_ = writeJSONDoc(w, doc)
}

// signalCause is the cause of a context cancelled by a signal.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string { return "interrupted by " + s.sig.String() }

// signalContext is cancelled by the first SIGINT or SIGTERM, with the signal as its cause
// (interruptedCode reads it); a second one has its default effect, so that a stuck stop can
// still be forced. Call the returned func when done.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(signalCause{s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// interruptedCode is the exit status of a command that a signal stopped before it was
// done: 128 + the signal's number, as shells report it (130 for SIGINT, 143 for SIGTERM);
// 130 when ctx was cancelled otherwise.
func interruptedCode(ctx context.Context) int {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		if n, ok := sc.sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return 130
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "ledgerstream",
		Short:         "Stream financial transactions from Kafka into an Iceberg ledger, exactly once",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionText(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd); err != nil {
				return err
			}
			if err := checkRanges(cmd); err != nil {
				return err
			}
			g.readOnly = cmd.Annotations[readOnlyAnnotation] == "true"
			if err := g.setupLogging(); err != nil {
				return err
			}
			return g.sec.resolve(g.catalog)
		},
	}
	root.SetVersionTemplate("{{.Version}}")
	f := root.PersistentFlags()
	f.String("config", "", "YAML file of flag values (keys are flag names); env LEDGERSTREAM_CONFIG")
	f.StringVar(&g.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	f.StringVar(&g.topic, "topic", "financial_transactions", "Kafka topic of the transactions")
	f.StringVar(&g.table, "table", "demo.transactions_ledger", "ledger table as namespace.table")
	f.StringVar(&g.dataDir, "data-dir", "./ledgerstream-data", "home of the default SQLite catalog (catalog.db) and warehouse/")
	f.StringVar(&g.catalog, "catalog", "", "Iceberg catalog: sqlite:PATH | postgres://… | http(s)://… (default sqlite:<data-dir>/catalog.db)")
	f.StringVar(&g.warehouse, "warehouse", "", "warehouse: a local path, file://…, or s3://bucket/prefix (default <data-dir>/warehouse)")
	f.StringVar(&g.contract, "contract", "", "YAML file of the ledger contract: your messages' fields, checks, key, hash and partitioning (default: the table's own; the notebook's for a new table); see `ledgerstream contract`")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&g.connectTimeout, "connect-timeout", 30*time.Second, "produce, verify, run --available-now and rejects republish fail when no Kafka broker answers within this")
	flagRange(f, "connect-timeout", "100ms", "1h")
	addSecurityFlags(f, &g.sec)

	root.AddCommand(newBrokerCmd(g), newProduceCmd(g), newRunCmd(g), newReportCmd(g), newVerifyCmd(g), newHistoryCmd(g), newDemoCmd(g), newRejectsCmd(g), newBenchCmd(g),
		newMaintainCmd(g), newContractCmd(g))
	markReadOnly(root, "report", "verify", "rejects", "history")
	return root
}

// readOnlyAnnotation marks a command that only reads the catalog: it opens it read-only,
// so that a mistyped --data-dir is an error rather than a new empty ledger.
const readOnlyAnnotation = "ledgerstream/read-only"

// markReadOnly marks the named subcommands of root, and theirs (rejects republish writes
// to Kafka, never to the catalog), as only reading the catalog.
func markReadOnly(root *cobra.Command, names ...string) {
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

// kafkaConfigBounded is kafkaConfig for a command a person waits on: it fails after
// --connect-timeout when no broker answers, instead of retrying for ever.
func (g *globals) kafkaConfigBounded() kafka.ClientConfig {
	c := g.kafkaConfig()
	c.ConnectTimeout = g.connectTimeout
	return c
}

// icebergConfig is the catalog configuration the flags describe.
func (g *globals) icebergConfig() iceberg.Config {
	dir := g.dataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return iceberg.Config{CatalogURI: g.catalog, Warehouse: g.warehouse, DataDir: dir,
		Password: g.sec.catalogPass, REST: g.sec.rest, S3: iceberg.S3Config{Endpoint: g.sec.s3Endpoint, Region: g.sec.s3Region},
		ReadOnly: g.readOnly}
}
