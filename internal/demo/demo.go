// Package demo is `ledgerstream demo`, the reference notebook in one command: an embedded
// broker over the data directory, the transactions produced, the pipeline streamed for a
// while, then the report, the validations and the cleanup, with what is said between them.
// The command line (cmd/ledgerstream) builds each step's configuration from its flags.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/audit"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
	"github.com/ledgerstream/ledgerstream/internal/produce"
)

// Config is one demo.
type Config struct {
	// DataDir holds the broker's log (kafka/), and the catalog and the warehouse unless
	// Catalog names others. Fresh says it is a new temporary directory: Cleanup removes it.
	DataDir string
	Fresh   bool
	// Partitions of the topic the embedded broker creates.
	Partitions int
	Topic      string
	Table      table.Identifier
	// Catalog opens the catalog the ledger is in.
	Catalog iceberg.Config
	// Kafka is the clients' configuration but the brokers, which are the embedded one's;
	// ConnectTimeout bounds the producer's first contact.
	Kafka          kafka.ClientConfig
	ConnectTimeout time.Duration
	// Produce is what to send; Worker the pipeline that streams it for Duration (its
	// catalog, table, Kafka client and topic are the demo's).
	Produce  produce.Options
	Worker   pipeline.Config
	Duration time.Duration
	// Validate, when set, prints the validations of the ledger, reconciled with the topic
	// the brokers kc serve, and fails when one fails.
	Validate func(ctx context.Context, kc kafka.ClientConfig, out io.Writer) error
	// Cleanup drops the ledger and its rejects table at the end (and removes a Fresh DataDir).
	Cleanup bool
}

// Run runs the demo, printing to out.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.Fresh && cfg.Cleanup {
		defer os.RemoveAll(cfg.DataDir) // after the broker stops (defers run last-in first-out)
	}
	broker, err := kafka.StartBroker(ctx, kafka.BrokerConfig{
		DataDir: filepath.Join(cfg.DataDir, "kafka"), Partitions: cfg.Partitions, Topics: []string{cfg.Topic}, Logger: slog.Default(),
	})
	if err != nil {
		return err
	}
	defer broker.Close()
	kc := cfg.Kafka
	kc.Brokers = []string{broker.Addr()}
	name := strings.Join(cfg.Table, ".")

	fmt.Fprintf(out, "Pattern: exactly-once streaming, Kafka -> ledgerstream -> Iceberg\n")
	fmt.Fprintf(out, "  broker      %s (embedded, %d partitions)\n", broker.Addr(), cfg.Partitions)
	fmt.Fprintf(out, "  data dir    %s\n", filepath.Join(cfg.DataDir, ""))
	fmt.Fprintf(out, "  table       %s\n  topic       %s\n\n", name, cfg.Topic)

	if existing := existing(ctx, cfg); existing != "" {
		fmt.Fprintf(out, "%s\n\n", existing)
	}
	pkc := kc
	pkc.ConnectTimeout = cfg.ConnectTimeout
	if _, err := produce.Run(ctx, pkc, cfg.Topic, cfg.Produce, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nExactly-once processing started\n")
	fmt.Fprintf(out, "   Trigger: a batch every %s; offsets committed atomically with each Iceberg snapshot\n", cfg.Worker.Engine.Trigger)
	fmt.Fprintf(out, "   Processing for %s...\n", cfg.Duration)
	st, err := stream(ctx, cfg, kc, out)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintln(out, "Streaming stopped")
	fmt.Fprintln(out, thisRun(st, cfg.Produce.Count))
	fmt.Fprintln(out)

	cat, err := iceberg.Open(ctx, cfg.Catalog)
	if err != nil {
		return err
	}
	defer cat.Close()
	v, err := audit.Open(ctx, cat, cfg.Table, audit.AsOf{})
	if err != nil {
		return err
	}
	rep, err := v.Report(ctx)
	if err != nil {
		return err
	}
	if err := rep.WriteText(out); err != nil {
		return err
	}
	if cfg.Validate != nil {
		fmt.Fprintln(out, "\nValidation:")
		if err := cfg.Validate(ctx, kc, out); err != nil {
			return err
		}
	}
	if cfg.Cleanup {
		if err := cat.DropTables(ctx, cfg.Table); err != nil {
			return err
		}
		fmt.Fprintln(out, "Cleanup completed: table dropped")
		if cfg.Fresh {
			fmt.Fprintln(out, "Cleanup completed: data directory removed")
		}
	}
	return nil
}

// stream runs the worker for cfg.Duration, serving the status page meanwhile, and prints
// its summary.
func stream(ctx context.Context, cfg Config, kc kafka.ClientConfig, out io.Writer) (*engine.Stats, error) {
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	cat, err := iceberg.Open(rctx, cfg.Catalog)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	w := cfg.Worker
	w.Catalog, w.Table, w.Kafka, w.Topic = cat, cfg.Table, kc, cfg.Topic
	w.OnListen = func(addr string) {
		fmt.Fprintf(out, "   Status page: http://%s/ (live while streaming; metrics at /metrics)\n", addr)
	}
	res, err := pipeline.Run(rctx, w)
	if res.Stats == nil {
		return nil, err
	}
	res.WriteSummary(out)
	return res.Stats, err
}

// existing describes what an existing data directory already holds, so that the report
// (of the whole ledger) is not mistaken for this run's; "" for a fresh one.
func existing(ctx context.Context, cfg Config) string {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "catalog.db")); err != nil || cfg.Catalog.CatalogURI != "" {
		return ""
	}
	cat, err := iceberg.Open(ctx, cfg.Catalog)
	if err != nil {
		return ""
	}
	defer cat.Close()
	v, err := audit.Open(ctx, cat, cfg.Table, audit.AsOf{})
	if err != nil {
		return "" // nothing there yet is not an error here
	}
	rep, err := v.Report(ctx)
	if err != nil || rep.Rows == 0 {
		return ""
	}
	return fmt.Sprintf("The data directory already holds a ledger of %d rows: this run adds new transactions (ids after the highest on the topic), and the report below covers the whole ledger.", rep.Rows)
}

// thisRun says what became of a run's records: rows committed, and rejects by reason.
func thisRun(st *engine.Stats, produced int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This run: %d transactions produced, %d records read, %d rows committed, %d rejected",
		produced, st.Records.Load(), st.Accepted.Load(), st.Rejected.Load())
	by := st.RejectedBy()
	reasons := slices.Sorted(maps.Keys(by))
	for i, r := range reasons {
		sep := ", "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(&b, "%s%d %s", sep, by[r], r)
	}
	if len(reasons) > 0 {
		b.WriteString("; `ledgerstream rejects list` shows them)")
	}
	if rest := int64(produced) - st.Records.Load(); rest > 0 {
		fmt.Fprintf(&b, "; %d not read within --duration", rest)
	}
	return b.String()
}
