package pipeline

import (
	"context"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// Progress is how far a run has come, for a progress line.
type Progress struct {
	// Records, Accepted and Rejected are the engine's totals so far.
	Records, Accepted, Rejected int64
	// Elapsed is the time since the progress began.
	Elapsed time.Duration
	// Lag is the records of the topic not yet in the ledger, when LagKnown.
	Lag      int64
	LagKnown bool
	// Final marks the last report, when the run ends.
	Final bool
}

// runProgress reports the progress of a run to show every second until ctx ends, then
// once more with Final set.
func runProgress(ctx context.Context, show func(Progress), st *engine.Stats, obs *observer) error {
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	now := func(final bool) Progress {
		p := Progress{Records: st.Records.Load(), Accepted: st.Accepted.Load(), Rejected: st.Rejected.Load(),
			Elapsed: time.Since(start), Final: final}
		p.Lag, p.LagKnown = obs.lag()
		return p
	}
	for {
		select {
		case <-ctx.Done():
			show(now(true))
			return nil
		case <-t.C:
			show(now(false))
		}
	}
}
