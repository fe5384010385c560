package retry

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// State is what is known of one dependency.
type State struct {
	Dependency Dependency `json:"dependency"`
	// Up is false from the first failure of an operation on the dependency until the next
	// success. A dependency nothing has used yet is up.
	Up bool `json:"up"`
	// Since is when the dependency went down (when Up is false), or when it came back.
	Since time.Time `json:"since"`
	// Op is the operation that failed last, Attempt how many times in a row it failed.
	Op      string `json:"op,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// LastError is the last failure's message, LastErrorAt when it happened; both stay
	// after recovery, for status pages.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at"`
	// Outages counts the times the dependency went down.
	Outages int64 `json:"outages"`
}

// DownFor is how long the dependency has been down at now (0 when up).
func (s State) DownFor(now time.Time) time.Duration {
	if s.Up || s.Since.IsZero() {
		return 0
	}
	return now.Sub(s.Since)
}

// Tracker keeps the State of each dependency: Failed when an operation fails with a
// temporary error, Succeeded when one works. It logs the moment a dependency goes down and
// once when it comes back, with the outage's duration. Safe for concurrent use; the zero
// value is not usable, call NewTracker.
type Tracker struct {
	log   *slog.Logger
	clock Clock

	mu   sync.Mutex
	deps map[Dependency]*State
}

// NewTracker returns a tracker with every dependency up. A nil logger discards, a nil
// clock is the system's.
func NewTracker(log *slog.Logger, clock Clock) *Tracker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = SystemClock{}
	}
	t := &Tracker{log: log, clock: clock, deps: map[Dependency]*State{}}
	for _, d := range Dependencies {
		t.deps[d] = &State{Dependency: d, Up: true}
	}
	return t
}

func (t *Tracker) state(dep Dependency) *State {
	s := t.deps[dep]
	if s == nil {
		s = &State{Dependency: dep, Up: true}
		t.deps[dep] = s
	}
	return s
}

// Failed records a temporary failure of op on dep and returns how long dep has been down.
func (t *Tracker) Failed(dep Dependency, op string, err error) time.Duration {
	return t.FailedSince(dep, op, err, time.Time{})
}

// FailedSince is Failed for an attempt that began at began: when it starts an outage, the
// outage starts then (not after the attempt's timeout: a dependency that did not answer
// for 10 s has been unreachable for 10 s when the attempt gives up), though never before
// the dependency last came back. A zero began is now.
func (t *Tracker) FailedSince(dep Dependency, op string, err error, began time.Time) time.Duration {
	now := t.clock.Now()
	if began.IsZero() || began.After(now) {
		began = now
	}
	t.mu.Lock()
	s := t.state(dep)
	wasUp := s.Up
	if wasUp {
		since := began
		if since.Before(s.Since) {
			since = s.Since
		}
		s.Up, s.Since, s.Attempt = false, since, 0
		s.Outages++
	}
	if s.Op != op {
		s.Attempt = 0
	}
	s.Op = op
	s.Attempt++
	s.LastError, s.LastErrorAt = errorLine(err), now
	down := now.Sub(s.Since)
	t.mu.Unlock()
	if wasUp {
		t.log.Warn("dependency down", "dependency", string(dep), "op", op, "error", errorLine(err))
	}
	return down
}

// Succeeded records that an operation on dep worked. The first success after an outage
// logs the recovery with the outage's duration.
func (t *Tracker) Succeeded(dep Dependency) {
	now := t.clock.Now()
	t.mu.Lock()
	s := t.state(dep)
	if s.Up {
		t.mu.Unlock()
		return
	}
	down := now.Sub(s.Since)
	op, attempts := s.Op, s.Attempt
	s.Up, s.Since, s.Op, s.Attempt = true, now, "", 0
	t.mu.Unlock()
	t.log.Info("dependency recovered", "dependency", string(dep), "outage", down.Round(time.Millisecond),
		"op", op, "failed_attempts", attempts)
}

// State returns the state of dep.
func (t *Tracker) State(dep Dependency) State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return *t.state(dep)
}

// States returns the state of every dependency, in Dependencies' order.
func (t *Tracker) States() []State {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]State, 0, len(t.deps))
	for _, d := range Dependencies {
		out = append(out, *t.state(d))
	}
	for d, s := range t.deps {
		if !isKnown(d) {
			out = append(out, *s)
		}
	}
	return out
}

// DownFor is how long dep has been down (0 when up).
func (t *Tracker) DownFor(dep Dependency) time.Duration {
	return t.State(dep).DownFor(t.clock.Now())
}

// Reason is one line naming every dependency that is down, for /readyz; "" when all are
// up. Example: "catalog down for 12s (commit demo.ledger, attempt 4): connection refused".
func (t *Tracker) Reason() string {
	now := t.clock.Now()
	var parts []string
	for _, s := range t.States() {
		if s.Up {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s down for %s (%s, attempt %d): %s", s.Dependency,
			s.DownFor(now).Round(time.Second), s.Op, s.Attempt, s.LastError))
	}
	return strings.Join(parts, "; ")
}

func isKnown(d Dependency) bool {
	for _, k := range Dependencies {
		if k == d {
			return true
		}
	}
	return false
}

// errorLine is err's message on one line, cut to a readable length.
func errorLine(err error) string {
	if err == nil {
		return ""
	}
	s := strings.Join(strings.Fields(err.Error()), " ")
	const max = 400
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
