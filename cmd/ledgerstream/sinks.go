package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
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

// contractFlag returns the contract --contract names, or nil without one.
func (g *globals) contractFlag() (*ledger.Contract, error) {
	if g.contract == "" {
		return nil, nil
	}
	return loadContract(g.contract)
}

// ledgerContract returns the contract the ledger ident is written with (the default one
// when the table does not exist yet). A --contract that says otherwise is an error for the
// commands that only read: the table's contract is the one its rows were decoded with.
func ledgerContract(ctx context.Context, g *globals, cat *iceberg.Catalog, ident table.Identifier) (*ledger.Contract, error) {
	given, err := g.contractFlag()
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
		return nil, fmt.Errorf("ledger %s is written with another contract than --contract %s (`ledgerstream contract show` prints the table's; `run --contract` applies a new one)", g.table, g.contract)
	}
	return have, nil
}
