package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// member is a worker's membership of its consumer group: *kafka.Source.
type member interface {
	// Leave gives every partition up and leaves the group; reason is sent to the group.
	Leave(ctx context.Context, reason string) error
	// Rejoin joins the group again.
	Rejoin() error
}

// outOfGroup is what the worker says while it is out of its group: why, and since when.
// Safe for concurrent use (the loop sets it, /readyz and the status page read it).
type outOfGroup struct {
	mu    sync.Mutex
	h     *retry.HandOffError // nil while a member
	since time.Time           // when the dependency went down (the hand-off's For before it)
	total int64               // hand-offs so far
}

// set records a hand-off at now; nil clears it.
func (g *outOfGroup) set(h *retry.HandOffError, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.h = h
	if h != nil {
		g.since = now.Add(-h.For)
		g.total++
	}
}

// reason is the one line /readyz gives while the worker is out of its group ("" when it is
// a member): "left the group: catalog unreachable for 35s".
func (g *outOfGroup) reason(now time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.h == nil {
		return ""
	}
	return fmt.Sprintf("left the group: %s unreachable for %s (longer than the session timeout, %s); it rejoins when the %s answers",
		g.h.Dependency, now.Sub(g.since).Round(time.Second), g.h.After, g.h.Dependency)
}

// member reports whether the worker is in its group, and the hand-offs so far.
func (g *outOfGroup) member() (bool, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.h == nil, g.total
}

// handOff carries out the engine's hand-off h (docs/design.md §7): the batch is already
// dropped; the worker leaves its group so that a worker that can reach the dependency takes
// its partitions, waits until the dependency answers (no longer than the outage timeout:
// that ends the run), and joins the group again, where its partitions start from the
// tables. Each step is logged once. It returns nil once rejoined or when ctx ends.
func handOff(ctx context.Context, h *retry.HandOffError, g member, eng *engine.Engine, out *outOfGroup, log *slog.Logger) error {
	dep := string(h.Dependency)
	out.set(h, time.Now())
	log.Error("leaving the consumer group so that another worker can take the partitions: the "+dep+" has been unreachable for longer than the session timeout",
		"dependency", dep, "unreachable_for", h.For.Round(time.Second), "session_timeout", h.After, "op", h.Op, "error", h.Err)
	left := time.Now()
	if err := g.Leave(ctx, fmt.Sprintf("ledgerstream: %s unreachable for %s", dep, h.For.Round(time.Second))); err != nil {
		log.Warn("could not leave the consumer group cleanly; the group moves the partitions once the session times out", "error", err)
	}
	if err := eng.WaitFor(ctx, h.Dependency); err != nil {
		if ctx.Err() != nil {
			return nil // stopping: nothing is held
		}
		return fmt.Errorf("out of the consumer group since the %s became unreachable: %w", dep, err)
	}
	down := time.Since(left) + h.For
	log.Warn("rejoining the consumer group: the "+dep+" answers again", "dependency", dep,
		"unreachable_for", down.Round(time.Second), "out_of_group_for", time.Since(left).Round(time.Second))
	if err := g.Rejoin(); err != nil {
		return fmt.Errorf("rejoin the consumer group after the %s came back: %w", dep, err)
	}
	out.set(nil, time.Now())
	return nil
}
