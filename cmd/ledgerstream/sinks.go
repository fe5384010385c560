package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/dedup"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
)

// openSinks opens what a worker writes to: the ledger, its rejects table (both created if
// missing), and this worker's transaction-id index file, <index-dir>/<table>~<pipeline>[~<worker>].idx.
// The index file is locked: two workers on one machine need distinct --worker-id values (or
// --index-dir). Close the returned func when done.
func openSinks(ctx context.Context, cat *iceberg.Catalog, g *globals, ident table.Identifier, r runFlags) (engine.Sinks, func() error, error) {
	sink, err := cat.NewSink(ctx, ident, r.pipeline)
	if err != nil {
		return engine.Sinks{}, nil, err
	}
	rejects, err := cat.NewRejectSink(ctx, ident, r.pipeline)
	if err != nil {
		return engine.Sinks{}, nil, err
	}
	dir := r.indexDir
	if dir == "" {
		dir = dataPath(g, "index")
	}
	path := filepath.Join(dir, dedup.FileName(g.table, r.pipeline, r.workerID))
	idx, err := dedup.Open(path, cat.NewLedgerIDs(ident, sink), dedup.Options{Logger: slog.Default()})
	if err != nil {
		return engine.Sinks{}, nil, err
	}
	st := idx.Stats()
	slog.Info("transaction id index opened", "path", path, "ids", st.Rows, "bloom_bytes", st.BloomBytes)
	return engine.Sinks{Ledger: sink, Rejects: rejects, Index: idx}, idx.Close, nil
}

// openLedger parses --table and opens the catalog the flags describe. Close the catalog.
func openLedger(ctx context.Context, g *globals) (table.Identifier, *iceberg.Catalog, error) {
	ident, err := iceberg.ParseIdent(g.table)
	if err != nil {
		return nil, nil, err
	}
	cat, err := iceberg.Open(ctx, g.icebergConfig())
	if err != nil {
		return nil, nil, err
	}
	return ident, cat, nil
}

// dropTables drops the ledger and its rejects table, purging their files.
func dropTables(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier) error {
	return errors.Join(cat.DropTable(ctx, ident, true), cat.DropTable(ctx, iceberg.RejectsIdent(ident), true))
}
