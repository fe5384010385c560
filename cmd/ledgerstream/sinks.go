package main

import (
	"context"
	"errors"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
)

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
