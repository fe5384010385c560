package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// commit writes the batch to the ledger, then to the rejects table, settling conflicts and
// unknown outcomes by reading the tables back (DESIGN §4). The ledger goes first because
// it decides: a batch's rejects are final only once its ledger commit has succeeded (a
// record refused as a duplicate is refused because of what the ledger holds).
func (e *Engine) commit(ctx context.Context, src Source, b *batch) error {
	if seek := e.dropLost(ctx, b, src.Assigned()); seek != nil {
		src.Seek(seek)
		return nil
	}
	started := e.clock.Now()
	seek, err := e.commitLedger(ctx, b)
	if err != nil {
		return err
	}
	if seek != nil {
		src.Seek(seek)
		return nil
	}
	e.fault(FaultAfterCommit)
	if err := e.commitRejects(ctx, b); err != nil {
		return err
	}
	e.stats.Batches.Add(1)
	e.log.Info("batch committed", "batch", e.ledger.Batch, "rows", len(b.rows), "rejected", len(b.rejects),
		"partitions", len(b.spans), "took", e.clock.Now().Sub(started).Round(time.Millisecond))
	ends := Offsets{}
	for p, s := range b.spans {
		ends[p] = s.end
	}
	if err := src.CommitAdvisory(ctx, ends); err != nil {
		e.log.Warn("advisory Kafka offset commit failed (progress is safe in the tables)", "error", err)
	}
	e.fault(FaultAfterAdvised)
	return nil
}

// commitLedger commits the batch's rows with the merged offsets map, conditional on the
// ledger's state. It returns the offsets to seek to when the batch was fenced.
func (e *Engine) commitLedger(ctx context.Context, b *batch) (Offsets, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	claim := b.ledgerClaim()
	if len(claim) == 0 {
		return nil, nil // a replay for the rejects table only
	}
	// The rows were classified against the index as of the snapshot prepare synced it to,
	// but the commit is conditional on e.ledger, which a partition assignment during the
	// batch (Resume) may have reloaded: commits made in between, another worker's with ids
	// this batch holds too, would never be checked. Catch the index up and classify again.
	if e.sinks.Index != nil && e.indexed != e.ledger.SnapshotID {
		if err := e.sinks.Index.Sync(ctx, e.ledger); err != nil {
			return nil, fmt.Errorf("sync the transaction id index: %w", err)
		}
		e.indexed = e.ledger.SnapshotID
		b.stage.wait() // reclassify rewrites the rows a part may be reading
		changed, err := e.reclassify(b)
		if err != nil {
			return nil, err
		}
		if changed {
			if err := b.stage.discard(ctx); err != nil {
				e.log.Warn("could not delete superseded files; maintain will collect them", "error", err)
			}
		}
	}
	table := e.sinks.Ledger
	staged, err := e.stageRest(ctx, b)
	if err != nil {
		return nil, err
	}
	e.fault(FaultAfterStage)

	base := e.ledger
	unknown := false // the last attempt's outcome is unknown: it may have landed
	for attempt := 1; ; attempt++ {
		outcome, moved := Settle(claim, base.Offsets)
		if outcome == Landed && !unknown {
			// Our offsets, but not our commit: another worker did this work. Ours is surplus.
			outcome = Fenced
		}
		switch outcome {
		case Landed:
			e.log.Info("an earlier commit attempt had landed", "table", table.Name(), "batch", base.Batch)
			e.stats.Accepted.Add(int64(len(b.rows)))
			if e.sinks.Index != nil {
				if err := e.sinks.Index.Sync(ctx, base); err != nil {
					return nil, fmt.Errorf("sync the transaction id index: %w", err)
				}
			}
			return nil, nil
		case Fenced:
			e.stats.Fenced.Add(1)
			e.log.Warn("batch fenced: another writer moved its partitions; dropping it and re-seeking",
				"table", table.Name(), "partitions", fmt.Sprint(moved), "rows", len(b.rows))
			if err := table.Discard(ctx, staged); err != nil {
				e.log.Warn("could not delete the fenced batch's files; maintain will collect them", "error", err)
			}
			return e.rewindLocked(b), nil
		}
		c := Commit{Pipeline: e.cfg.Pipeline, Batch: base.Batch + 1,
			Offsets: Merge(base.Offsets, claim), Clean: e.cleanLocked(b, base.Clean)}
		next, err := table.Commit(ctx, base, staged, c)
		if err == nil {
			e.ledger = next
			e.stats.Accepted.Add(int64(len(b.rows)))
			if e.sinks.Index != nil {
				if err := e.sinks.Index.Add(b.rows, next); err != nil {
					return nil, fmt.Errorf("index the batch's transaction ids: %w", err)
				}
			}
			return nil, nil
		}
		unknown = !errors.Is(err, ErrConflict)
		if !unknown {
			e.stats.Conflicts.Add(1)
			e.log.Info("commit conflict; re-reading the table", "table", table.Name(), "batch", c.Batch, "attempt", attempt)
		} else {
			e.stats.Unknown.Add(1)
			e.log.Warn("commit outcome unknown; re-reading the table", "table", table.Name(),
				"batch", c.Batch, "attempt", attempt, "error", err)
		}
		if attempt >= e.cfg.CommitAttempts {
			return nil, fmt.Errorf("commit batch %d to %s: gave up after %d attempts: %w", c.Batch, table.Name(), attempt, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, fmt.Errorf("commit batch %d to %s: %w", c.Batch, table.Name(), err)
		}
		if base, err = table.Load(ctx); err != nil {
			return nil, fmt.Errorf("re-read %s after a failed commit: %w", table.Name(), err)
		}
		e.ledger = base
		// Commits made since may have accepted some of our ids (another worker, another
		// partition): bring the index up to date and classify the rows again.
		if outcome, _ := Settle(claim, base.Offsets); e.sinks.Index != nil && outcome == Retry {
			if err := e.sinks.Index.Sync(ctx, base); err != nil {
				return nil, fmt.Errorf("sync the transaction id index: %w", err)
			}
			changed, err := e.reclassify(b)
			if err != nil {
				return nil, err
			}
			if changed {
				if err := table.Discard(ctx, staged); err != nil {
					e.log.Warn("could not delete superseded files; maintain will collect them", "error", err)
				}
				if staged, err = table.Stage(ctx, b.rows, b.processed); err != nil {
					return nil, fmt.Errorf("stage %d rows in %s: %w", len(b.rows), table.Name(), err)
				}
			}
		}
	}
}

// stageRest writes the rows the stager has not written yet, beside a part still being
// written, and returns every part of the batch as one staged set, now the commit's to
// commit or discard.
func (e *Engine) stageRest(ctx context.Context, b *batch) (Staged, error) {
	table := e.sinks.Ledger
	parts, err := b.stage.finish(ctx, b.rows)
	if err != nil {
		return nil, fmt.Errorf("stage %d rows in %s: %w", len(b.rows), table.Name(), err)
	}
	b.stage.take()
	if len(parts) == 1 {
		return parts[0], nil
	}
	return table.Join(parts), nil // none: an empty set, a commit that only moves offsets
}

// cleanLocked is the ledger's Clean map after this batch: every partition the batch read
// without finding a reject is known complete in the rejects table up to the batch's end.
// A partition no table has seen gets the batch's first offset, so that a crash before the
// rejects commit resumes there rather than at the configured starting position.
func (e *Engine) cleanLocked(b *batch, current Offsets) Offsets {
	if e.sinks.Rejects == nil {
		return current
	}
	clean := current.Clone()
	for p, s := range b.spans {
		switch {
		case !s.hasRejects:
			clean[p] = s.end
		case !s.rejects.HasFrom:
			if _, ok := clean[p]; !ok {
				clean[p] = s.first
			}
		}
	}
	return clean
}

// commitRejects brings the rejects table up to the batch's end on every partition the
// batch read. Its commits never fence: the ledger commit already decided the batch, and a
// record's classification is the same whoever makes it, so on conflict it re-reads the
// table and writes only what is still missing.
func (e *Engine) commitRejects(ctx context.Context, b *batch) error {
	table := e.sinks.Rejects
	if table == nil {
		e.stats.addRejects(b.rejects)
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for attempt := 1; ; attempt++ {
		base := e.reject
		moves := Offsets{}
		for p, s := range b.spans {
			if from, ok := e.rejectsFrom(p); !ok || from < s.end {
				moves[p] = s.end
			}
		}
		if len(moves) == 0 {
			return nil
		}
		var rows []ledger.RejectRow
		for _, r := range b.rejects {
			p := Partition{Topic: r.SourceTopic, Partition: r.SourcePartition}
			if _, move := moves[p]; !move {
				continue
			}
			if from, ok := e.rejectsFrom(p); ok && r.SourceOffset < from {
				continue // already there
			}
			rows = append(rows, r)
		}
		staged, err := table.Stage(ctx, rows, b.processed)
		if err != nil {
			return fmt.Errorf("stage %d rejects in %s: %w", len(rows), table.Name(), err)
		}
		c := Commit{Pipeline: e.cfg.Pipeline, Batch: base.Batch + 1, Offsets: Merge(base.Offsets, claimTo(moves))}
		next, err := table.Commit(ctx, base, staged, c)
		if err == nil {
			e.reject = next
			e.stats.addRejects(rows)
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			e.stats.Unknown.Add(1)
			e.log.Warn("rejects commit outcome unknown; re-reading the table", "table", table.Name(), "error", err)
		} else {
			e.stats.Conflicts.Add(1)
		}
		// Whether it landed or not, the next round re-reads the table and writes only what
		// is still missing. Files of an attempt that did not land are orphans for maintain.
		if attempt >= e.cfg.CommitAttempts {
			return fmt.Errorf("commit rejects to %s: gave up after %d attempts: %w", table.Name(), attempt, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return fmt.Errorf("commit rejects to %s: %w", table.Name(), err)
		}
		if e.reject, err = table.Load(ctx); err != nil {
			return fmt.Errorf("re-read %s after a failed commit: %w", table.Name(), err)
		}
	}
}

// claimTo turns target offsets into a claim whose merge moves partitions there.
func claimTo(to Offsets) Claim {
	c := make(Claim, len(to))
	for p, off := range to {
		c[p] = Span{To: off}
	}
	return c
}
