package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// run --create-table: each mode against a fresh namespace, one that holds another ledger,
// and an existing table; the created ledger is announced once.
func TestEnsureLedgerCreateModes(t *testing.T) {
	ctx := context.Background()
	cat, err := iceberg.Open(ctx, iceberg.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	policy := &retry.Policy{OutageTimeout: time.Minute}
	ensure := func(table string, mode CreateMode) (created []Created, err error) {
		ident, err := iceberg.ParseIdent(table)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Catalog: cat, Table: ident, CreateTable: mode, OnCreated: func(c Created) { created = append(created, c) }}
		_, err = ensureLedger(ctx, cfg, policy)
		return created, err
	}
	if _, err := ensure("demo.ledger", CreateNever); err == nil || !strings.Contains(err.Error(), "--create-table=no forbids creating it") {
		t.Fatalf("no, missing table: %v", err)
	}
	created, err := ensure("demo.ledger", CreateIfAlone)
	if err != nil || len(created) != 1 || created[0].Table != "demo.ledger" || created[0].Rejects != "demo.ledger_rejects" || created[0].Catalog != "sqlite" {
		t.Fatalf("auto, fresh namespace: created %+v, %v", created, err)
	}

	// The tables come back loaded, and the sinks start on them.
	ident, _ := iceberg.ParseIdent("demo.ledger")
	tbls, err := ensureLedger(ctx, Config{Catalog: cat, Table: ident}, policy)
	if err != nil || tbls.ledger == nil || tbls.rejects == nil || !tbls.contract.IsDefault() {
		t.Fatalf("ensureLedger: %+v, %v", tbls, err)
	}
	if _, ok := tbls.rejects.Schema().FindFieldByName(iceberg.ColSourceOffsetLast); !ok {
		t.Errorf("the rejects table came back without its evolved columns: %s", tbls.rejects.Schema())
	}
	sinks, closeSinks, err := openSinks(Config{Catalog: cat, Table: ident, IndexDir: t.TempDir(), Engine: engine.Config{Pipeline: "p"}}, tbls, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer closeSinks()
	for _, c := range sinks.Checks {
		if err := c.CheckFiles(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range []CreateMode{CreateNever, CreateIfAlone, CreateAlways} {
		if created, err := ensure("demo.ledger", mode); err != nil || len(created) != 0 {
			t.Fatalf("%s, existing table: created %+v, %v", mode, created, err)
		}
	}
	if _, err := ensure("demo.ledgr", CreateIfAlone); err == nil || !strings.Contains(err.Error(), "table demo.ledgr does not exist, but demo.ledger does: a typo in --table?") {
		t.Fatalf("auto, a typo: %v", err)
	}
	if created, err := ensure("demo.second", CreateAlways); err != nil || len(created) != 1 {
		t.Fatalf("yes, beside another ledger: created %+v, %v", created, err)
	}
	if created, err := ensure("other.ledger", ""); err != nil || len(created) != 1 {
		t.Fatalf(`"", fresh namespace: created %+v, %v`, created, err)
	}
}

// A temporary failure (a creation race lost, a locked catalog) is waited out under the
// policy; a refusal returns at once with its own message.
func TestWaitOutCatalog(t *testing.T) {
	ctx := context.Background()
	policy := &retry.Policy{OutageTimeout: time.Minute, Initial: time.Millisecond, Max: time.Millisecond}
	calls := 0
	err := waitOutCatalog(ctx, policy, "create table t", func(context.Context) error {
		calls++
		if calls < 3 {
			return retry.MarkTemporary(errors.New("created elsewhere, not readable yet"))
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("temporary failures: %d calls, %v; want 3 calls and success", calls, err)
	}
	refusal := errors.New("contract change refused: another key")
	calls = 0
	err = waitOutCatalog(ctx, policy, "open table t", func(context.Context) error {
		calls++
		return refusal
	})
	if err != refusal || calls != 1 {
		t.Fatalf("a refusal: %d calls, %v; want 1 call and the refusal itself", calls, err)
	}
}
