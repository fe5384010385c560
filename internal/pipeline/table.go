package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// CreateMode says whether Run may create a missing ledger (run --create-table).
type CreateMode string

// The create modes. A mistyped --table would otherwise start a second ledger in silence
// and reprocess the whole topic into it. Kafka Connect's Iceberg sink leaves auto-create
// off by default because a connector is provisioned once and a typo must not create
// tables; run is also a first-contact command, where "no" would make the first run fail,
// hence CreateIfAlone as run's default.
const (
	// CreateIfAlone creates the ledger only when its namespace holds no other ledger: the
	// first run on a fresh catalog works, and a name that differs from an existing ledger
	// is refused, naming it.
	CreateIfAlone CreateMode = "auto"
	// CreateAlways creates a missing ledger (also the meaning of "").
	CreateAlways CreateMode = "yes"
	// CreateNever refuses a missing ledger (production: the table is provisioned).
	CreateNever CreateMode = "no"
)

// Created is what Run created: the ledger and its rejects table, in which catalog and
// warehouse (Config.OnCreated announces it).
type Created struct {
	Table, Rejects string
	// Catalog is the catalog's kind (sqlite, postgres, rest), Warehouse its location ("" when
	// the catalog chooses).
	Catalog, Warehouse string
}

// tables are the worker's tables as ensureLedger loaded them, for the sinks to start on.
type tables struct {
	ledger, rejects *table.Table
	contract        *ledger.Contract // the contract to write the ledger with
}

// ensureLedger makes sure the worker has a ledger and a rejects table to write to, creating
// them as cfg.CreateTable allows (and telling cfg.OnCreated), and returns them with the
// contract to write the ledger with (the table's, or cfg.Contract applied to it as an
// evolution: iceberg.EnsureLedger). It runs once, at the start, under the worker's retry
// policy: workers that start together contend for a SQLite catalog's write lock or race to
// create or evolve the tables, and a catalog may be briefly away when a worker starts;
// those are waited out, loudly, like an outage mid-stream. Each table is loaded once here,
// and the sinks start on what was loaded.
func ensureLedger(ctx context.Context, cfg Config, policy *retry.Policy) (tables, error) {
	cat, ident := cfg.Catalog, cfg.Table
	name := identName(ident)
	var exists bool
	err := waitOutCatalog(ctx, policy, "check table "+name, func(ctx context.Context) (err error) {
		exists, err = cat.TableExists(ctx, ident)
		return err
	})
	if err != nil {
		return tables{}, fmt.Errorf("check table %s: %w", name, err)
	}
	announce := false
	if !exists {
		switch cfg.CreateTable {
		case CreateNever:
			return tables{}, fmt.Errorf("table %s does not exist and --create-table=no forbids creating it: check --table, or pass --create-table=yes", name)
		case CreateIfAlone:
			var others []string
			err := waitOutCatalog(ctx, policy, "list the ledgers beside "+name, func(ctx context.Context) (err error) {
				others, err = cat.OtherLedgers(ctx, ident)
				return err
			})
			if err != nil {
				return tables{}, err
			}
			if len(others) > 0 && !slices.Contains(others, name) {
				return tables{}, fmt.Errorf("table %s does not exist, but %s does: a typo in --table? Pass --table %s, or --create-table=yes to start a second ledger (it would read the topic from --starting-offsets)",
					name, strings.Join(others, ", "), others[0])
			}
			// Another worker of the pipeline may have created it since TableExists looked:
			// then there is nothing to announce.
			announce = !slices.Contains(others, name)
		default:
			announce = true
		}
	}
	var t tables
	err = waitOutCatalog(ctx, policy, "open table "+name, func(ctx context.Context) (err error) {
		t.ledger, t.contract, err = cat.EnsureLedger(ctx, ident, cfg.Contract)
		return err
	})
	if err != nil {
		return tables{}, err
	}
	rejects := iceberg.RejectsIdent(ident)
	err = waitOutCatalog(ctx, policy, "open table "+identName(rejects), func(ctx context.Context) (err error) {
		t.rejects, err = cat.EnsureRejectsTable(ctx, rejects)
		return err
	})
	if err != nil {
		return tables{}, err
	}
	if announce && cfg.OnCreated != nil {
		cfg.OnCreated(Created{Table: name, Rejects: identName(rejects), Catalog: cat.Kind(), Warehouse: cat.Warehouse()})
	}
	return t, nil
}

// waitOutCatalog runs fn under the retry policy as an operation op on the catalog. Anything
// fn's error does not itself call temporary (a refused evolution, a schema mismatch)
// returns at once, with fn's own message, which says what to do.
func waitOutCatalog(ctx context.Context, p *retry.Policy, op string, fn func(context.Context) error) error {
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
		return refused
	}
	return err
}
