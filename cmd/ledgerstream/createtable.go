package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// createTableModes are run's --create-table values.
var createTableModes = []string{"auto", "yes", "no"}

// ensureLedgerTable makes sure run has a ledger to write to, creating it as mode allows,
// and says so when it does: a mistyped --table would otherwise start a second ledger in
// silence and reprocess the whole topic into it.
//
//   - "yes" creates a missing table;
//   - "no" refuses (production: the table is provisioned, a typo must fail);
//   - "auto" (the default) creates it only when its namespace holds no other ledger: the
//     first run on a fresh catalog works as the README shows, and a name that differs from
//     an existing ledger is refused, naming it.
//
// Kafka Connect's Iceberg sink leaves auto-create off by default because a connector is
// provisioned once and a typo must not create tables; run is also a first-contact command,
// where "no" would make the first run fail, hence auto.
func ensureLedgerTable(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier, mode string, contract *ledger.Contract, outage time.Duration, out io.Writer) error {
	if mode == "" {
		mode = "auto"
	}
	if !slices.Contains(createTableModes, mode) {
		return fmt.Errorf("--create-table %q: want one of %s", mode, strings.Join(createTableModes, ", "))
	}
	name := strings.Join(ident, ".")
	var exists bool
	err := waitOutCatalog(ctx, outage, "check table "+name, func(ctx context.Context) (err error) {
		exists, err = cat.TableExists(ctx, ident)
		return err
	})
	if err != nil {
		return fmt.Errorf("check table %s: %w", name, err)
	}
	if exists {
		return nil
	}
	switch mode {
	case "no":
		return fmt.Errorf("table %s does not exist and --create-table=no forbids creating it: check --table, or pass --create-table=yes", name)
	case "auto":
		others, err := otherLedgers(ctx, cat, ident)
		if err != nil {
			return err
		}
		if slices.Contains(others, name) {
			// Another worker of the pipeline created it since TableExists looked.
			return nil
		}
		if len(others) > 0 {
			return fmt.Errorf("table %s does not exist, but %s does: a typo in --table? Pass --table %s, or --create-table=yes to start a second ledger (it would read the topic from --starting-offsets)",
				name, strings.Join(others, ", "), others[0])
		}
	}
	err = waitOutCatalog(ctx, outage, "create table "+name, func(ctx context.Context) error {
		_, _, err := cat.EnsureLedger(ctx, ident, contract)
		return err
	})
	if err != nil {
		return err
	}
	where := cat.Kind() + " catalog"
	if w := cat.Warehouse(); w != "" {
		where += ", warehouse " + w
	}
	fmt.Fprintf(out, "Created ledger table %s (and %s for its rejects) in the %s\n", name, strings.Join(iceberg.RejectsIdent(ident), "."), where)
	return nil
}

// waitOutCatalog runs fn under the retry policy for at most one outage of outage (0: for
// ever). Workers that start together contend for a SQLite catalog's write lock, and a
// catalog may be briefly away when a worker starts: those are waited out, loudly, like an
// outage mid-stream. Anything fn's error does not itself call temporary (a refused
// evolution, a schema mismatch) returns at once.
func waitOutCatalog(ctx context.Context, outage time.Duration, op string, fn func(context.Context) error) error {
	p := &retry.Policy{OutageTimeout: outage, Logger: slog.Default()}
	var refused error
	err := p.Do(ctx, retry.Catalog, op, func(ctx context.Context) error {
		err := fn(ctx)
		if err != nil && !retry.IsKnownTemporary(err) {
			refused = err
			return retry.MarkPermanent(err)
		}
		return err
	})
	var perm *retry.PermanentError
	if refused != nil && errors.As(err, &perm) {
		return refused // fn's own message, which says what to do
	}
	return err
}

// otherLedgers lists the tables of ident's namespace other than rejects tables.
func otherLedgers(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier) ([]string, error) {
	ns := ident[:len(ident)-1]
	var out []string
	for id, err := range cat.Unwrap().ListTables(ctx, ns) {
		if err != nil {
			// A namespace that does not exist yet holds no ledger.
			if exists, nerr := cat.Unwrap().CheckNamespaceExists(ctx, ns); nerr == nil && !exists {
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
