package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// commit writes the batch to the ledger, then to the rejects table, settling conflicts and
// unknown outcomes by reading the tables back (docs/design.md §4.5). The ledger goes first because
// it decides: a batch's rejects are final only once its ledger commit has succeeded (a
// record refused as a duplicate is refused because of what the ledger holds).
func (e *Engine) commit(ctx context.Context, src Source, b *batch) error {
	if seek := e.dropLost(ctx, b, src.Assigned()); seek != nil {
		src.Seek(seek)
		return nil
	}
	// A topic re-created while the batch was read must not have its records committed
	// under the old topic's offsets.
	if err := e.checkTopic(ctx, src); err != nil {
		return err
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
	return nil
}

// ledgerCommit is one batch on its way to the ledger: the claim Settle judges, the files
// staged for it, and what its failed attempts leave open. Owned by the loop's goroutine.
type ledgerCommit struct {
	b     *batch
	claim Claim
	// staged holds the batch's rows as written, nil until they are (and again after a
	// re-classification changed them).
	staged Staged
	// attempts counts the commit attempts made, conflicts those refused because the table
	// moved (bounded by Config.CommitAttempts), and unknown those whose outcome is unknown
	// in a row (bounded by the retry policy's outage timeout).
	attempts, conflicts, unknown int
	// conflictSince is when the batch's first conflict happened (see conflictsExhausted).
	conflictSince time.Time
	// mayHaveLanded is set once an attempt's outcome is unknown: from then on a table that
	// shows the batch's ends may show that attempt (Settle's Landed), not someone else's.
	mayHaveLanded bool
	// stagedInFlight is set when staged went out in an attempt of unknown outcome: the table
	// may reference those files (now, or once a later commit builds on that attempt), so
	// the engine never deletes them; maintain's orphan removal does when nothing does.
	stagedInFlight bool
	// planned is the ledger snapshot the last plan settled the claim on: an attempt
	// commits only on that state (see attemptLedger).
	planned int64
}

// commitLedger commits the batch's rows with the merged offsets map, conditional on the
// ledger's state. It returns the offsets to seek to when the batch was fenced. The steps,
// repeated until Settle decides or an attempt succeeds:
//
//  1. plan (e.mu): settle the claim against the ledger's last known state (Settle); while
//     the batch may commit, bring its classification up to that state (the index and a
//     re-classification, which may change its rows);
//  2. stage (no lock): write the rows not written yet, as Parquet;
//  3. attempt (e.mu): the conditional commit on that state, or back to 1 when a Resume
//     reloaded the ledger since the plan (the verdict holds for the state it was taken on);
//  4. after a failure: back off on the clock (no lock), read the ledger back (e.mu), plan
//     again.
//
// e.mu is held where the tables' known states, the index and the read positions must
// change together, because Resume (on the source's group goroutine) reads and reloads
// them; it is not held while Parquet is written or while the commit backs off. The
// catalog commit and the read-back do hold it: a Resume in between would otherwise load a
// state the commit is about to replace, and sync the index past the batch's rows.
func (e *Engine) commitLedger(ctx context.Context, b *batch) (_ Offsets, err error) {
	lc := &ledgerCommit{b: b, claim: b.ledgerClaim()}
	if len(lc.claim) == 0 {
		return nil, nil // a replay for the rejects table only
	}
	defer func() {
		// A batch given up (the worker hands its partitions off) takes its files with it,
		// unless the storage is what is down: maintain's orphan removal collects those.
		var h *retry.HandOffError
		if errors.As(err, &h) && lc.staged != nil {
			if e.cfg.Retry.Track().State(retry.Storage).Up {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Retry.Timeout(retry.Storage))
				e.dropStaged(dctx, lc, "the dropped batch's files")
				cancel()
			}
		}
	}()
	table := e.sinks.Ledger
	for {
		outcome, moved, err := e.planLedger(ctx, lc)
		if err != nil {
			return nil, err
		}
		switch outcome {
		case Landed:
			e.log.Info("an earlier commit attempt had landed", "table", table.Name(), "attempts", lc.attempts)
			return nil, nil
		case Fenced:
			e.log.Warn("batch fenced: another writer moved its partitions; dropping it and re-seeking",
				"table", table.Name(), "partitions", fmt.Sprint(moved), "rows", len(b.rows))
			e.dropStaged(ctx, lc, "the fenced batch's files")
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.rewindLocked(b), nil
		}
		if lc.staged == nil {
			if lc.staged, err = e.stageBatch(ctx, b); err != nil {
				return nil, err
			}
		}
		done, err := e.attemptLedger(ctx, lc)
		if done || err != nil {
			return nil, err
		}
	}
}

// planLedger is step 1 of commitLedger: the verdict of Settle on the ledger's last known
// state, and, when it is Retry, the batch's rows classified against the index as of that
// state. A Landed batch is accounted for here.
func (e *Engine) planLedger(ctx context.Context, lc *ledgerCommit) (Outcome, []Partition, error) {
	b := lc.b
	waited := false
	// Held while the verdict is taken and the rows are classified again: both read the
	// ledger's state and the index, which Resume moves. Released only to wait for a part.
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		base := e.ledger
		outcome, moved := Settle(lc.claim, base.Offsets, lc.mayHaveLanded)
		switch outcome {
		case Landed:
			e.stats.Accepted.Add(int64(len(b.rows)))
			if e.sinks.Index != nil {
				if err := e.sinks.Index.Sync(ctx, base); err != nil {
					return 0, nil, fmt.Errorf("sync the transaction id index: %w", err)
				}
			}
			return Landed, nil, nil
		case Fenced:
			e.stats.Fenced.Add(1)
			return Fenced, moved, nil
		}
		// The rows were classified against the index as of the snapshot prepare synced it
		// to (e.indexed), but the commit is conditional on base, which a read-back or a
		// partition assignment during the batch (Resume) may have moved on: commits made in
		// between, another worker's with ids this batch holds too, must be checked.
		lc.planned = base.SnapshotID
		if e.sinks.Index == nil || e.indexed == base.SnapshotID {
			return Retry, nil, nil
		}
		if lc.staged == nil && !waited {
			// Re-classification rewrites the rows a part staged ahead may be reading: wait
			// for it, without the lock (Parquet writing is slow), then plan again.
			e.mu.Unlock()
			b.stage.wait()
			e.mu.Lock()
			waited = true
			continue
		}
		if err := e.retryIndex(ctx, "sync the transaction id index", func() error { return e.sinks.Index.Sync(ctx, base) }); err != nil {
			return 0, nil, fmt.Errorf("sync the transaction id index: %w", err)
		}
		e.indexed = base.SnapshotID
		changed, err := e.reclassify(b)
		if err != nil {
			return 0, nil, err
		}
		if changed {
			// The files hold rows that are duplicates now: write the batch again.
			e.mu.Unlock()
			e.dropStaged(ctx, lc, "superseded files")
			e.mu.Lock()
		}
		return Retry, nil, nil
	}
}

// dropStaged deletes the batch's staged files, best effort, unless an attempt of unknown
// outcome carried them (see ledgerCommit.stagedInFlight). Files left behind are orphans
// for maintain.
func (e *Engine) dropStaged(ctx context.Context, lc *ledgerCommit, what string) {
	var err error
	switch {
	case lc.staged == nil:
		err = lc.b.stage.discard(ctx) // parts staged ahead, not taken yet
	case lc.stagedInFlight:
		e.log.Info("keeping files an attempt of unknown outcome carried; maintain collects them if unreferenced",
			"table", e.sinks.Ledger.Name())
	default:
		err = e.sinks.Ledger.Discard(ctx, lc.staged)
	}
	if err != nil {
		e.log.Warn("could not delete "+what+"; maintain will collect them", "error", err)
	}
	lc.staged, lc.stagedInFlight = nil, false
}

// attemptLedger is step 3 of commitLedger, and step 4 after a failure. It reports whether
// the batch is committed; false with no error means plan again.
func (e *Engine) attemptLedger(ctx context.Context, lc *ledgerCommit) (bool, error) {
	table := e.sinks.Ledger
	b := lc.b
	// Held across the catalog commit: the ledger's state and the index change together
	// with it, and Resume reads both (see commitLedger). Released before the back-off.
	e.mu.Lock()
	if e.fatal != nil {
		err := e.fatal
		e.mu.Unlock()
		return false, fmt.Errorf("resume partitions: %w", err) // no commit on a table found damaged
	}
	base := e.ledger
	if base.SnapshotID != lc.planned {
		// A Resume reloaded the ledger while the batch was being staged. The verdict and
		// the classification were taken on the state planned on; a commit conditional on
		// the new one would succeed without them (over another worker's commit of these
		// partitions, say). Plan again.
		e.mu.Unlock()
		return false, nil
	}
	c := Commit{Pipeline: e.cfg.Pipeline, Batch: base.Batch + 1,
		Offsets: Merge(base.Offsets, lc.claim), Clean: e.cleanLocked(b, base.Clean), TopicIDs: e.topicIDsLocked(base.TopicIDs)}
	lc.attempts++
	began := e.clock.Now()
	cctx, cancel := context.WithTimeout(ctx, e.cfg.Retry.Timeout(retry.Catalog))
	next, err := table.Commit(cctx, base, lc.staged, c)
	cancel()
	if err == nil {
		e.committed()
		e.ledger = next
		e.indexed = next.SnapshotID
		e.stats.Accepted.Add(int64(len(b.rows)))
		if e.sinks.Index != nil {
			if err := e.sinks.Index.Add(b.rows, next); err != nil {
				if !retry.IsTemporary(err) {
					e.mu.Unlock()
					return false, fmt.Errorf("index the batch's transaction ids: %w", err)
				}
				// The batch is committed; the index is derived from the ledger and the next
				// batch's sync (under the retry policy) reads the batch back into it.
				e.cfg.Retry.Track().Failed(retry.Storage, "index the batch's transaction ids", err)
				e.log.Warn("could not index the committed batch's transaction ids; the next sync reads them back from the ledger",
					"error", err)
				e.indexed = 0
			}
		}
		e.mu.Unlock()
		return true, nil
	}
	e.mu.Unlock()
	op := fmt.Sprintf("commit batch %d to %s", c.Batch, table.Name())
	if errors.Is(err, ErrConflict) {
		e.cfg.Retry.Track().Succeeded(retry.Catalog) // it answered
		lc.conflicts, lc.unknown = lc.conflicts+1, 0
		if lc.conflicts == 1 {
			lc.conflictSince = e.clock.Now()
		}
		e.stats.Conflicts.Add(1)
		e.log.Info("commit conflict; re-reading the table", "table", table.Name(), "batch", c.Batch, "attempt", lc.attempts)
		if e.conflictsExhausted(lc.conflicts, lc.conflictSince) {
			return false, fmt.Errorf("%s: gave up after %d conflicts in %s: %w", op, lc.conflicts,
				e.clock.Now().Sub(lc.conflictSince).Round(time.Millisecond), err)
		}
		if err := e.clock.Sleep(ctx, e.backoff(lc.conflicts)); err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
	} else {
		lc.mayHaveLanded, lc.stagedInFlight = true, true
		lc.unknown++
		e.stats.Unknown.Add(1)
		e.log.Warn("commit outcome unknown; re-reading the table", "table", table.Name(),
			"batch", c.Batch, "attempt", lc.attempts, "error", err)
		// Unknown because the catalog or the storage failed: wait it out (a permanent
		// failure, or an outage longer than the timeout, ends the run here).
		if err := e.cfg.Retry.WaitSince(ctx, dependencyOf(err, retry.Catalog), op, lc.unknown, err, began); err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
	}
	// The read-back that settles the attempt is retried like any catalog operation: an
	// outage here must not end the run (the batch and its files are kept meanwhile).
	err = e.do(ctx, retry.Catalog, "re-read "+table.Name()+" after a failed commit", func(ctx context.Context) error {
		e.mu.Lock() // the read-back replaces the state Resume reads
		defer e.mu.Unlock()
		st, err := table.Load(ctx)
		if err == nil {
			e.ledger = st
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("re-read %s after a failed commit: %w", table.Name(), err)
	}
	return false, nil
}

// retryIndex runs fn, an operation on the local transaction id index, until it works: a
// full or failing local disk is waited out like any storage outage (retry.Policy.Wait),
// where the caller must keep its place (the lock it holds, the batch half classified).
func (e *Engine) retryIndex(ctx context.Context, op string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				e.cfg.Retry.Track().Succeeded(retry.Storage)
			}
			return nil
		}
		if werr := e.cfg.Retry.Wait(ctx, retry.Storage, op, attempt, err); werr != nil {
			return werr
		}
	}
}

// committed records that a commit worked: the catalog and the storage answered.
func (e *Engine) committed() {
	t := e.cfg.Retry.Track()
	t.Succeeded(retry.Catalog)
	t.Succeeded(retry.Storage)
}

// dependencyOf is the dependency an error names (retry.Tag), else def.
func dependencyOf(err error, def retry.Dependency) retry.Dependency {
	if d, ok := retry.DependencyOf(err); ok {
		return d
	}
	return def
}

// stageBatch writes the batch's rows not yet written (stageRest). When that fails for a
// reason that heals (a full disk, an unreachable object store), the parts written are
// dropped and the whole batch is written again under the retry policy: the batch is kept
// through the outage.
func (e *Engine) stageBatch(ctx context.Context, b *batch) (Staged, error) {
	staged, err := e.stageRest(ctx, b)
	if err == nil {
		return staged, nil
	}
	op := fmt.Sprintf("stage %d rows in %s", len(b.rows), e.sinks.Ledger.Name())
	if werr := e.cfg.Retry.Wait(ctx, dependencyOf(err, retry.Storage), op, 1, err); werr != nil {
		return nil, werr
	}
	if derr := b.stage.discard(ctx); derr != nil {
		e.log.Warn("could not delete the parts of a failed stage; maintain will collect them", "error", derr)
	}
	err = e.do(ctx, retry.Storage, op, func(ctx context.Context) error {
		var err error
		staged, err = e.sinks.Ledger.Stage(ctx, b.rows, b.processed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return staged, nil
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

// cleanLocked is the ledger's Clean map after this batch (CleanAfter); unchanged without a
// rejects table.
func (e *Engine) cleanLocked(b *batch, current Offsets) Offsets {
	if e.sinks.Rejects == nil {
		return current
	}
	read := make(map[Partition]CleanRead, len(b.spans))
	for p, s := range b.spans {
		read[p] = CleanRead{First: s.first, End: s.end, Rejects: s.hasRejects, RejectsKnown: s.rejects.HasFrom}
	}
	return CleanAfter(current, read)
}

// commitRejects brings the rejects table up to the batch's end on every partition the
// batch read. Its commits never fence: the ledger commit already decided the batch, and a
// record's classification is the same whoever makes it, so on conflict it re-reads the
// table and writes only what is still missing. The steps and the locking are those of
// commitLedger: plan (e.mu), stage (no lock), attempt (e.mu), back off (no lock), read back
// (e.mu).
func (e *Engine) commitRejects(ctx context.Context, b *batch) error {
	table := e.sinks.Rejects
	if table == nil {
		e.stats.addRejects(b.rejects)
		return nil
	}
	conflicts, unknown := 0, 0
	var conflictSince time.Time // the first conflict (see conflictsExhausted)
	for {
		e.mu.Lock()
		claim, rows := e.planRejectsLocked(b)
		planned, plannedLedger := e.reject.SnapshotID, e.ledger.SnapshotID
		e.mu.Unlock()
		if len(claim) == 0 {
			return nil
		}
		var staged Staged
		op := fmt.Sprintf("stage %d rejects in %s", len(rows), table.Name())
		if err := e.do(ctx, retry.Storage, op, func(ctx context.Context) error {
			var err error
			staged, err = table.Stage(ctx, rows, b.processed)
			return err
		}); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		e.mu.Lock()
		if e.reject.SnapshotID != planned || e.ledger.SnapshotID != plannedLedger {
			// A Resume reloaded the tables while the rejects were being staged: what is
			// missing was decided on the old states, and a commit conditional on the new
			// one could write rejects another worker has written since. Plan again.
			e.mu.Unlock()
			if err := table.Discard(ctx, staged); err != nil {
				e.log.Warn("could not delete superseded files; maintain will collect them", "error", err)
			}
			continue
		}
		base := e.reject
		c := Commit{Pipeline: e.cfg.Pipeline, Batch: base.Batch + 1, Offsets: Merge(base.Offsets, claim)}
		began := e.clock.Now()
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Retry.Timeout(retry.Catalog))
		next, err := table.Commit(cctx, base, staged, c)
		cancel()
		if err == nil {
			e.reject = next
		}
		e.mu.Unlock()
		if err == nil {
			e.committed()
			e.stats.addRejects(rows)
			return nil
		}
		op = fmt.Sprintf("commit rejects to %s", table.Name())
		// Whether it landed or not, the next round re-reads the table and writes only what
		// is still missing. Files of an attempt that did not land are orphans for maintain.
		if errors.Is(err, ErrConflict) {
			e.cfg.Retry.Track().Succeeded(retry.Catalog)
			conflicts, unknown = conflicts+1, 0
			if conflicts == 1 {
				conflictSince = e.clock.Now()
			}
			e.stats.Conflicts.Add(1)
			if e.conflictsExhausted(conflicts, conflictSince) {
				return fmt.Errorf("%s: gave up after %d conflicts in %s: %w", op, conflicts,
					e.clock.Now().Sub(conflictSince).Round(time.Millisecond), err)
			}
			if err := e.clock.Sleep(ctx, e.backoff(conflicts)); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		} else {
			unknown++
			e.stats.Unknown.Add(1)
			e.log.Warn("rejects commit outcome unknown; re-reading the table", "table", table.Name(), "error", err)
			if err := e.cfg.Retry.WaitSince(ctx, dependencyOf(err, retry.Catalog), op, unknown, err, began); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		err = e.do(ctx, retry.Catalog, "re-read "+table.Name()+" after a failed commit", func(ctx context.Context) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			st, err := table.Load(ctx)
			if err == nil {
				e.reject = st
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("re-read %s after a failed commit: %w", table.Name(), err)
		}
	}
}

// planRejectsLocked is what the rejects table still lacks of the batch: the claim (ClaimOf
// from where the table is complete to the batch's end) and the batch's rejects at or above
// where the table is complete on their partitions.
func (e *Engine) planRejectsLocked(b *batch) (Claim, []ledger.RejectRow) {
	pr := e.progressLocked()
	read := make(map[Partition]Span, len(b.spans))
	for p, s := range b.spans {
		from, ok := pr.RejectsFrom(p)
		read[p] = Span{From: from, HasFrom: ok, To: s.end}
	}
	claim := ClaimOf(read)
	var rows []ledger.RejectRow
	for _, r := range b.rejects {
		s, ok := claim[Partition{Topic: r.SourceTopic, Partition: r.SourcePartition}]
		if !ok || (s.HasFrom && r.SourceOffset < s.From) {
			continue // already there
		}
		rows = append(rows, r)
	}
	return claim, rows
}
