package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
)

// Schedule is when a worker maintains its tables between batches: every Every and/or
// every EveryCommits committed batches (either zero is off), with Options.
type Schedule struct {
	Every        time.Duration
	EveryCommits int64
	Options      iceberg.MaintainOptions
}

// MaintainTables maintains the ledger, then its rejects table when it exists. A ledger
// that does not exist is an error naming the ledgers the catalog has beside it (a
// mistyped --table), and nothing is done.
func MaintainTables(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier, opts iceberg.MaintainOptions) ([]*iceberg.MaintainResult, error) {
	var results []*iceberg.MaintainResult
	for i, id := range []table.Identifier{ident, iceberg.RejectsIdent(ident)} {
		ok, err := cat.TableExists(ctx, id)
		switch {
		case err != nil && i == 0:
			return nil, err
		case err != nil:
			return results, fmt.Errorf("maintain: %w", err)
		case !ok && i == 0:
			others, _ := cat.OtherLedgers(ctx, ident)
			hint := "check --table and --data-dir"
			if len(others) > 0 {
				hint = "the catalog has " + strings.Join(others, ", ")
			}
			return nil, fmt.Errorf("maintain: no table %s in the catalog (%s); nothing was done", identName(ident), hint)
		case !ok:
			continue
		}
		r, err := cat.Maintain(ctx, id, opts)
		if r != nil {
			results = append(results, r)
		}
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// scheduler runs maintenance from the loop, between batches, on its Schedule. A failure
// is logged and counted, never fatal: the pipeline's correctness does not depend on it.
type scheduler struct {
	cat         *iceberg.Catalog
	ident       table.Identifier
	sched       Schedule
	obs         *observer // may be nil
	log         *slog.Logger
	last        time.Time
	lastBatches int64
	// refresh re-reads the tables for the engine after a run (Engine.Refresh), so that its
	// next commit plans on the maintained head instead of conflicting once.
	refresh func(context.Context) error
}

func newScheduler(cat *iceberg.Catalog, ident table.Identifier, sched Schedule, obs *observer, refresh func(context.Context) error, log *slog.Logger) *scheduler {
	return &scheduler{cat: cat, ident: ident, sched: sched, obs: obs, refresh: refresh, log: log}
}

// maybe maintains the tables if the schedule says it is time; batches is the engine's
// count of committed batches.
func (a *scheduler) maybe(ctx context.Context, batches int64) {
	now := time.Now()
	if a.last.IsZero() {
		a.last = now
	}
	due := (a.sched.Every > 0 && now.Sub(a.last) >= a.sched.Every) ||
		(a.sched.EveryCommits > 0 && batches-a.lastBatches >= a.sched.EveryCommits)
	if !due {
		return
	}
	a.last, a.lastBatches = now, batches
	_, err := MaintainTables(ctx, a.cat, a.ident, a.sched.Options)
	took := time.Since(now)
	if a.obs != nil {
		a.obs.maintRuns.Add(1)
		a.obs.maintDur.ObserveDuration(took)
		if err != nil {
			a.obs.maintErrs.Add(1)
		}
	}
	if err != nil {
		a.log.Warn("automatic maintenance failed; the pipeline goes on", "error", err, "took", took.Round(time.Millisecond))
	} else {
		a.log.Debug("automatic maintenance done", "took", took.Round(time.Millisecond))
	}
	if a.refresh != nil {
		if err := a.refresh(ctx); err != nil {
			// Harmless: the next commit conflicts once and re-reads the table itself.
			a.log.Warn("could not re-read the tables after maintenance", "error", err)
		}
	}
}
