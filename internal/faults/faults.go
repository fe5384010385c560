// Package faults makes a worker die at a fault point: one of the moments of a batch where
// a crash is most interesting (docs/design.md §4.8). An Injector decorates what the engine
// talks to (the ledger table, the source, and the callback that resumes newly assigned
// partitions) and calls its die function there. The engine knows nothing of it; only the
// end-to-end tests' build of the binary (-tags faults, run --fault) and the engine's own
// tests use it, so the product binary holds none of it.
package faults

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// The fault points.
const (
	// AfterFetch: a fetch returned records; nothing of them is written.
	AfterFetch = "after-fetch"
	// AfterStage: the batch's data files are written and its ledger commit is about to be
	// attempted; nothing is committed.
	AfterStage = "after-stage"
	// AfterCommit: the ledger committed the batch; the rejects table and Kafka's group
	// offsets not yet.
	AfterCommit = "after-commit"
	// InRebalance: partitions are being assigned; the engine has not resumed them yet.
	InRebalance = "in-rebalance"
	// AfterAdvised: everything done for the batch, Kafka's group offsets included.
	AfterAdvised = "after-advised"
)

// Points are the fault points, in the order a batch reaches them (InRebalance apart).
var Points = []string{AfterFetch, AfterStage, AfterCommit, InRebalance, AfterAdvised}

// Injector calls die the nth time (and every time after) the worker reaches its point.
// Safe for concurrent use: points are reached from the loop and from the source's group
// goroutine.
type Injector struct {
	point string
	nth   int64
	seen  atomic.Int64
	die   func(point string)
}

// New returns an Injector that calls die at the nth time point is reached (nth >= 1).
func New(point string, nth int, die func(point string)) (*Injector, error) {
	known := false
	for _, p := range Points {
		known = known || p == point
	}
	if !known {
		return nil, fmt.Errorf("unknown fault point %q (the points are %s)", point, strings.Join(Points, ", "))
	}
	if nth < 1 {
		return nil, fmt.Errorf("fault point %s@%d: want N >= 1", point, nth)
	}
	return &Injector{point: point, nth: int64(nth), die: die}, nil
}

// Parse reads POINT or POINT@N (the Nth time; 1 when absent) into an Injector calling die.
func Parse(spec string, die func(point string)) (*Injector, error) {
	point, nth := spec, 1
	if i := strings.IndexByte(spec, '@'); i >= 0 {
		n, err := strconv.Atoi(spec[i+1:])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want POINT or POINT@N with N >= 1", spec)
		}
		point, nth = spec[:i], n
	}
	return New(point, nth, die)
}

func (in *Injector) reach(point string) {
	if point == in.point && in.seen.Add(1) >= in.nth {
		in.die(point)
	}
}

// Sinks decorates the ledger of s (AfterStage, AfterCommit).
func (in *Injector) Sinks(s engine.Sinks) engine.Sinks {
	s.Ledger = &ledgerTable{Table: s.Ledger, in: in}
	return s
}

// Source decorates src (AfterFetch, AfterAdvised), keeping its engine.TopicDescriber.
func (in *Injector) Source(src engine.Source) engine.Source {
	s := &source{Source: src, in: in}
	if td, ok := src.(engine.TopicDescriber); ok {
		return &describingSource{source: s, td: td}
	}
	return s
}

// Resume decorates the resume callback (InRebalance).
func (in *Injector) Resume(f engine.ResumeFunc) engine.ResumeFunc {
	return func(ctx context.Context, parts []engine.Partition) (engine.Offsets, error) {
		in.reach(InRebalance)
		return f(ctx, parts)
	}
}

// ledgerTable is the ledger with AfterStage before each commit attempt and AfterCommit
// after a successful one.
type ledgerTable struct {
	engine.Table[ledger.Row]
	in *Injector
}

func (t *ledgerTable) Commit(ctx context.Context, base engine.TableState, staged engine.Staged, c engine.Commit) (engine.TableState, error) {
	t.in.reach(AfterStage)
	st, err := t.Table.Commit(ctx, base, staged, c)
	if err == nil {
		t.in.reach(AfterCommit)
	}
	return st, err
}

// source is the source with AfterFetch after a fetch that returned records and
// AfterAdvised after the advisory offset commit.
type source struct {
	engine.Source
	in *Injector
}

func (s *source) Fetch(ctx context.Context, max int) ([]engine.Record, error) {
	recs, err := s.Source.Fetch(ctx, max)
	if len(recs) > 0 {
		s.in.reach(AfterFetch)
	}
	return recs, err
}

func (s *source) CommitAdvisory(ctx context.Context, offsets engine.Offsets) error {
	err := s.Source.CommitAdvisory(ctx, offsets)
	s.in.reach(AfterAdvised)
	return err
}

// describingSource is source for a source that describes its topic.
type describingSource struct {
	*source
	td engine.TopicDescriber
}

func (s *describingSource) Topic(ctx context.Context) (engine.TopicState, error) {
	return s.td.Topic(ctx)
}
