package iceberg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// OtherLedgers lists the tables of ident's namespace other than rejects tables (ident
// itself included when it exists), sorted: what a mistyped --table was meant to be.
func (c *Catalog) OtherLedgers(ctx context.Context, ident table.Identifier) ([]string, error) {
	ns := ident[:len(ident)-1]
	var out []string
	for id, err := range c.cat.ListTables(ctx, ns) {
		if err != nil {
			// A namespace that did not exist when listed held no ledger (workers that start
			// together may create it a moment later: they then create the same table).
			if errors.Is(err, catalog.ErrNoSuchNamespace) {
				return nil, nil
			}
			if exists, nerr := c.cat.CheckNamespaceExists(ctx, ns); nerr == nil && !exists {
				return nil, nil
			}
			return nil, fmt.Errorf("list the tables of %s: %w", strings.Join(ns, "."), err)
		}
		n := strings.Join(id, ".")
		if !strings.HasSuffix(n, "_rejects") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// DropTables drops the ledger ident and its rejects table, purging their files.
func (c *Catalog) DropTables(ctx context.Context, ident table.Identifier) error {
	return errors.Join(c.DropTable(ctx, ident, true), c.DropTable(ctx, RejectsIdent(ident), true))
}
