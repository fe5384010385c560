package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

func TestParse(t *testing.T) {
	for _, bad := range []string{"", "nowhere", "after-fetch@0", "after-fetch@x", "after-fetch@-1", "@2"} {
		if _, err := Parse(bad, nil); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	for _, p := range Points {
		if _, err := Parse(p+"@3", nil); err != nil {
			t.Errorf("Parse(%q): %v", p+"@3", err)
		}
	}
}

// Each point is reached at its call, and the Nth time only (then every time after).
func TestPointsAreReachedAtTheirCalls(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		point string
		call  func(s engine.Sinks, src engine.Source, resume engine.ResumeFunc)
	}{
		{AfterFetch, func(_ engine.Sinks, src engine.Source, _ engine.ResumeFunc) { _, _ = src.Fetch(ctx, 0) }},
		{AfterStage, func(s engine.Sinks, _ engine.Source, _ engine.ResumeFunc) {
			_, _ = s.Ledger.Commit(ctx, engine.TableState{}, nil, engine.Commit{})
		}},
		{AfterCommit, func(s engine.Sinks, _ engine.Source, _ engine.ResumeFunc) {
			_, _ = s.Ledger.Commit(ctx, engine.TableState{}, nil, engine.Commit{})
		}},
		{InRebalance, func(_ engine.Sinks, _ engine.Source, resume engine.ResumeFunc) { _, _ = resume(ctx, nil) }},
		{AfterAdvised, func(_ engine.Sinks, src engine.Source, _ engine.ResumeFunc) { _ = src.CommitAdvisory(ctx, nil) }},
	} {
		var died []string
		in, err := New(tc.point, 2, func(at string) { died = append(died, at) })
		if err != nil {
			t.Fatal(err)
		}
		tbl := &table{}
		sinks := in.Sinks(engine.Sinks{Ledger: tbl})
		src := in.Source(fakeSource{})
		resume := in.Resume(func(context.Context, []engine.Partition) (engine.Offsets, error) { return nil, nil })
		tc.call(sinks, src, resume)
		if len(died) != 0 {
			t.Errorf("%s@2: died at the 1st time", tc.point)
		}
		tc.call(sinks, src, resume)
		if len(died) != 1 || died[0] != tc.point {
			t.Errorf("%s@2: died %v after the 2nd time", tc.point, died)
		}
	}
}

// A failed commit attempt is no AfterCommit; a fetch of nothing is no AfterFetch.
func TestNoPointWithoutTheEvent(t *testing.T) {
	ctx := context.Background()
	var died []string
	die := func(at string) { died = append(died, at) }
	commit, _ := New(AfterCommit, 1, die)
	sinks := commit.Sinks(engine.Sinks{Ledger: &table{err: engine.ErrConflict}})
	if _, err := sinks.Ledger.Commit(ctx, engine.TableState{}, nil, engine.Commit{}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("commit: %v", err)
	}
	fetch, _ := New(AfterFetch, 1, die)
	if _, err := fetch.Source(fakeSource{empty: true}).Fetch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if len(died) != 0 {
		t.Errorf("died at %v", died)
	}
}

// The decorated source still describes its topic when the source does (the engine's gap
// and re-created topic checks depend on it), and does not pretend to otherwise.
func TestSourceKeepsTopicDescriber(t *testing.T) {
	in, _ := New(AfterFetch, 1, func(string) {})
	if _, ok := in.Source(fakeSource{}).(engine.TopicDescriber); !ok {
		t.Error("a describing source lost engine.TopicDescriber")
	}
	if _, ok := in.Source(plainSource{}).(engine.TopicDescriber); ok {
		t.Error("a plain source gained engine.TopicDescriber")
	}
}

type table struct {
	engine.Table[ledger.Row]
	err error
}

func (t *table) Commit(context.Context, engine.TableState, engine.Staged, engine.Commit) (engine.TableState, error) {
	return engine.TableState{}, t.err
}

type plainSource struct{ engine.Source }

type fakeSource struct {
	engine.Source
	empty bool
}

func (s fakeSource) Fetch(context.Context, int) ([]engine.Record, error) {
	if s.empty {
		return nil, nil
	}
	return []engine.Record{{Offset: 1, Timestamp: time.Now()}}, nil
}

func (fakeSource) CommitAdvisory(context.Context, engine.Offsets) error { return nil }

func (fakeSource) Topic(context.Context) (engine.TopicState, error) { return engine.TopicState{}, nil }
