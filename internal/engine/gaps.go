package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// This file carries out the rules of CheckTopic and CheckPosition (protocol.go): the
// pipeline's first assumption, that a record's offset names it forever and that records
// stay until processed, is checked instead of trusted, and a broken one ends in a refusal
// or a recorded gap, never in a silent skip.

// describeWait is how long the engine waits between attempts to describe the topic.
const describeWait = time.Second

// describe asks the source what its topic is now, waiting out failures (loudly) until ctx
// ends. ok is false for a source that cannot say (TopicDescriber not implemented).
func (e *Engine) describe(ctx context.Context, src Source) (st TopicState, ok bool, err error) {
	td, ok := src.(TopicDescriber)
	if !ok {
		return TopicState{}, false, nil
	}
	for attempt := 1; ; attempt++ {
		st, err = td.Topic(ctx)
		if err == nil {
			return st, true, nil
		}
		e.log.Warn("could not describe the topic; retrying", "attempt", attempt, "error", err)
		if serr := e.clock.Sleep(ctx, describeWait); serr != nil {
			return TopicState{}, true, fmt.Errorf("describe the topic to check it is the one the tables name: %w", err)
		}
	}
}

// checkTopic refuses to go on when the topic is not the one the tables' offsets were read
// from (CheckTopic), and otherwise remembers its id for the next commit to record. The
// offsets are taken before the topic is described: offsets committed later (by another
// worker) may lie past the end listed here without anything being wrong.
func (e *Engine) checkTopic(ctx context.Context, src Source) error {
	e.mu.Lock()
	offsets, ids := e.ledger.Offsets, e.ledger.TopicIDs
	e.mu.Unlock()
	st, ok, err := e.describe(ctx, src)
	if err != nil || !ok {
		return err
	}
	if cerr := CheckTopic(ids[st.Topic], offsets, st); cerr != nil {
		e.stats.TopicChanged.Store(true)
		return cerr
	}
	e.mu.Lock()
	e.topic, e.topicID = st.Topic, st.ID
	e.mu.Unlock()
	return nil
}

// topicIDsLocked is the topic ids a ledger commit records: the table's, with the topic's
// id as last checked.
func (e *Engine) topicIDsLocked(current map[string]string) map[string]string {
	if e.topicID == "" || current[e.topic] == e.topicID {
		return current
	}
	ids := maps.Clone(current)
	if ids == nil {
		ids = map[string]string{}
	}
	ids[e.topic] = e.topicID
	return ids
}

// outOfRange handles a fetch that found positions out of range: it describes the topic
// and applies CheckPosition to every owned partition's position. A gap is recorded in the
// batch (GapRecord) and its partition sought to the log start; otherwise the run stops
// with a GapError or a TopicChangedError. The fetch error is returned when no position is
// out of range any more (nothing to decide: the fetch is tried again).
func (e *Engine) outOfRange(ctx context.Context, src Source, b *batch, fetchErr error) error {
	st, ok, err := e.describe(ctx, src)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("fetch: %w", fetchErr)
	}
	e.mu.Lock()
	if cerr := CheckTopic(e.ledger.TopicIDs[st.Topic], nil, st); cerr != nil {
		e.mu.Unlock()
		e.stats.TopicChanged.Store(true)
		return cerr
	}
	onGap := e.cfg.OnGap
	if e.sinks.Rejects == nil {
		onGap = GapFail // nowhere to record a gap
	}
	seek := Offsets{}
	for _, p := range src.Assigned() {
		pos, known := e.pos[p]
		if !known {
			continue // not read yet, and no table has seen it: it starts where the log does
		}
		start, okS := st.Start[p]
		end, okE := st.End[p]
		if !okS || !okE {
			e.mu.Unlock()
			e.stats.TopicChanged.Store(true)
			return &TopicChangedError{Topic: st.Topic, What: fmt.Sprintf("partition %d, which this worker reads, no longer exists", p.Partition)}
		}
		switch v, g := CheckPosition(p, pos, start, end, onGap); v {
		case GapStop:
			e.mu.Unlock()
			e.stats.GapsRefused.Add(1)
			return &GapError{Gap: g, LogStart: start}
		case GapSkip:
			e.addGapLocked(b, g)
			seek[p] = start
		case Truncated:
			e.mu.Unlock()
			e.stats.TopicChanged.Store(true)
			return &TopicChangedError{Topic: st.Topic, What: fmt.Sprintf(
				"partition %d ends at offset %d, below offset %d where the pipeline reads on: it was re-created, or its log truncated",
				p.Partition, end, pos)}
		}
	}
	e.mu.Unlock()
	if len(seek) == 0 {
		return fmt.Errorf("fetch: %w", fetchErr)
	}
	src.Seek(seek)
	return nil
}

// addGapLocked takes a gap into the batch: its partition's span now reaches the log start,
// and the rejects row that records the gap goes with the batch's rejects, for the part of
// the gap the rejects table does not hold yet. The ledger's commit moves its offset past
// the gap and the rejects table's commit writes the row and moves its offset past it: a
// crash between the two resumes below the gap, finds it again, and writes the row once,
// since the rejects table's offset says it lacks it (planRejectsLocked).
func (e *Engine) addGapLocked(b *batch, g Gap) {
	p := g.Partition
	s := b.spans[p]
	if s == nil {
		s = &readSpan{first: g.First, assignment: e.assignments[p]}
		s.ledger.From, s.ledger.HasFrom = e.ledger.Offsets[p]
		s.rejects.From, s.rejects.HasFrom = e.progressLocked().RejectsFrom(p)
		b.spans[p] = s
	}
	s.end = g.Last + 1
	s.hasRejects = true // the ledger's Clean map must not move past an unrecorded gap
	e.pos[p] = g.Last + 1
	first := g.First
	if s.rejects.HasFrom && s.rejects.From > first {
		first = s.rejects.From
	}
	e.log.Warn("records were deleted before the pipeline read them; recording the gap (--on-gap record)",
		"partition", p.String(), "first_offset", g.First, "last_offset", g.Last, "offsets", g.Len())
	if first > g.Last {
		return // the rejects table holds it already
	}
	b.rejects = append(b.rejects, ledger.NewGapRow(p.Topic, p.Partition, first, g.Last, fmt.Sprintf(
		"offsets %d-%d of %s (%d) were deleted from the topic (retention or DeleteRecords) before the pipeline read them; "+
			"recorded by run --on-gap record", first, g.Last, p, g.Last-first+1)))
}

// isOutOfRange reports a fetch error that says a position is out of range (the net.Error
// idiom, so that the engine needs no import of the source's package).
func isOutOfRange(err error) bool {
	var oor interface{ OutOfRange() bool }
	return errors.As(err, &oor) && oor.OutOfRange()
}
