package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Clock tells the time and sleeps; tests drive a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends, and then returns ctx's error.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Defaults of a Policy's zero fields.
const (
	DefaultInitial   = 100 * time.Millisecond
	DefaultMax       = 2 * time.Second
	DefaultWarnEvery = 10 * time.Second
	// DefaultOutageTimeout is run's --outage-timeout.
	DefaultOutageTimeout = 15 * time.Minute
)

// DefaultTimeouts bound one attempt of an operation on each dependency: long enough for
// the largest normal operation (a commit on a catalog under load, a batch's Parquet file
// uploaded), short enough that a dependency that stopped answering (a black hole) becomes
// a logged, retried failure within seconds rather than a silent stall.
var DefaultTimeouts = map[Dependency]time.Duration{
	Kafka:   15 * time.Second,
	Catalog: 10 * time.Second,
	Storage: 20 * time.Second,
}

// Policy retries operations on dependencies: temporary failures (Classify) are retried
// with capped exponential backoff and jitter, each attempt under its dependency's timeout,
// until the operation works or one outage of the dependency (as the Tracker sees it: from
// its first failure to its next success, whatever the operations in between) lasts longer
// than OutageTimeout. Permanent failures return at once. While it waits it warns every
// WarnEvery, naming the dependency, the operation, the attempt and for how long.
//
// A Policy is used through a pointer and is safe for concurrent use once set up.
type Policy struct {
	// Initial is the first pause, Max the longest (DefaultInitial, DefaultMax when zero).
	Initial, Max time.Duration
	// OutageTimeout ends the wait with an *OutageError once the dependency has been down
	// this long. 0 waits for ever.
	OutageTimeout time.Duration
	// Timeouts bound one attempt per dependency (DefaultTimeouts for a missing entry; a
	// negative entry means none).
	Timeouts map[Dependency]time.Duration
	// HandOffAfter, when positive, ends a wait on the catalog or the storage with a
	// *HandOffError once the dependency has been down this long (HandOff): the caller holds
	// partitions another worker could process, and gives them up (a worker sets it to its
	// group session timeout). 0: never. WithoutHandOff returns the policy without it.
	HandOffAfter time.Duration
	// WarnEvery is the interval of the waiting warnings (DefaultWarnEvery when zero).
	WarnEvery time.Duration
	// Tracker receives every failure and success. Nil keeps a private one.
	Tracker *Tracker
	// Logger receives the warnings. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source (SystemClock when nil); Jitter returns a number in [0, 1)
	// (math/rand when nil).
	Clock  Clock
	Jitter func() float64

	once     sync.Once
	mu       sync.Mutex
	lastWarn map[Dependency]time.Time
}

func (p *Policy) init() {
	p.once.Do(func() {
		if p.Initial <= 0 {
			p.Initial = DefaultInitial
		}
		if p.Max <= 0 {
			p.Max = DefaultMax
		}
		if p.Max < p.Initial {
			p.Max = p.Initial
		}
		if p.WarnEvery <= 0 {
			p.WarnEvery = DefaultWarnEvery
		}
		if p.Logger == nil {
			p.Logger = slog.New(slog.DiscardHandler)
		}
		if p.Clock == nil {
			p.Clock = SystemClock{}
		}
		if p.Jitter == nil {
			p.Jitter = rand.Float64
		}
		if p.Tracker == nil {
			p.Tracker = NewTracker(p.Logger, p.Clock)
		}
		p.lastWarn = map[Dependency]time.Time{}
	})
}

// Track returns the tracker the policy reports to.
func (p *Policy) Track() *Tracker {
	p.init()
	return p.Tracker
}

// Timeout is the bound of one attempt on dep (0: none).
func (p *Policy) Timeout(dep Dependency) time.Duration {
	d, ok := p.Timeouts[dep]
	if !ok {
		d = DefaultTimeouts[dep]
	}
	return max(d, 0)
}

// Backoff is the pause after the attempt-th consecutive failure: Initial doubled per
// attempt up to Max, of which a random half is taken off (so that workers that failed
// together do not retry together).
func (p *Policy) Backoff(attempt int) time.Duration {
	p.init()
	d := p.Max
	if attempt < 30 {
		d = min(p.Initial<<max(attempt-1, 0), p.Max)
	}
	return d/2 + time.Duration(p.Jitter()*float64(d/2))
}

// OutageError ends a wait that lasted longer than the policy's OutageTimeout.
type OutageError struct {
	Dependency Dependency
	Op         string
	For        time.Duration
	Limit      time.Duration
	Err        error // the last failure
}

func (e *OutageError) Error() string {
	return fmt.Sprintf("%s unavailable for %s, longer than the outage timeout (%s), during %s: last error: %v",
		e.Dependency, e.For.Round(time.Second), e.Limit, e.Op, e.Err)
}

// Unwrap returns the last failure.
func (e *OutageError) Unwrap() error { return e.Err }

// PermanentError is a failure retrying cannot fix.
type PermanentError struct {
	Dependency Dependency
	Op         string
	Err        error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("%s: %v (%s: retrying cannot fix this)", e.Op, e.Err, e.Dependency)
}

// Unwrap returns the failure.
func (e *PermanentError) Unwrap() error { return e.Err }

// WithoutHandOff returns a policy like p (the same tracker, clock, logger, timeouts and
// outage timeout) whose waits never end in a hand-off: for a worker that has already given
// its partitions up and waits for the dependency to come back.
func (p *Policy) WithoutHandOff() *Policy {
	p.init()
	return &Policy{Initial: p.Initial, Max: p.Max, OutageTimeout: p.OutageTimeout, Timeouts: p.Timeouts,
		WarnEvery: p.WarnEvery, Tracker: p.Tracker, Logger: p.Logger, Clock: p.Clock, Jitter: p.Jitter}
}

// Do runs fn, an operation op on dep, until it succeeds, fails permanently, ctx ends, or
// dep's outage outlasts OutageTimeout (or HandOffAfter). Each attempt gets a context
// bounded by dep's timeout. An error tagged with another dependency (Tag) is counted
// against that one.
func (p *Policy) Do(ctx context.Context, dep Dependency, op string, fn func(ctx context.Context) error) error {
	p.init()
	failed := map[Dependency]bool{}
	for attempt := 1; ; attempt++ {
		began := p.Clock.Now()
		err := p.attempt(ctx, dep, fn)
		if err == nil {
			p.Tracker.Succeeded(dep)
			for d := range failed {
				p.Tracker.Succeeded(d)
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		d := dep
		if tagged, ok := DependencyOf(err); ok {
			d = tagged
		}
		failed[d] = true
		if err := p.WaitSince(ctx, d, op, attempt, err, began); err != nil {
			return err
		}
	}
}

func (p *Policy) attempt(ctx context.Context, dep Dependency, fn func(ctx context.Context) error) error {
	t := p.Timeout(dep)
	if t <= 0 {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	err := fn(actx)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		// Our own bound, however the library reported it ("context canceled", "operation
		// was canceled"): the dependency did not answer in time.
		return MarkTemporary(fmt.Errorf("%w (no answer within %s)", err, t))
	}
	return err
}

// Wait handles the attempt-th consecutive failure err of op on dep, for callers that run
// their own loop: it returns err at once (as a *PermanentError) when retrying cannot fix
// it, an *OutageError when dep has been down longer than OutageTimeout, a *HandOffError
// when the caller should give its partitions up (HandOff), ctx's error when ctx ends;
// otherwise it records the failure, warns (at most every WarnEvery), pauses, and returns
// nil: try again.
func (p *Policy) Wait(ctx context.Context, dep Dependency, op string, attempt int, err error) error {
	return p.WaitSince(ctx, dep, op, attempt, err, time.Time{})
}

// WaitSince is Wait for a failed attempt that began at began (see Tracker.FailedSince).
func (p *Policy) WaitSince(ctx context.Context, dep Dependency, op string, attempt int, err error, began time.Time) error {
	p.init()
	if Classify(err) == Permanent {
		if ctx.Err() != nil {
			return err
		}
		return &PermanentError{Dependency: dep, Op: op, Err: err}
	}
	down := p.Tracker.FailedSince(dep, op, err, began)
	if p.OutageTimeout > 0 && down >= p.OutageTimeout {
		return &OutageError{Dependency: dep, Op: op, For: down, Limit: p.OutageTimeout, Err: err}
	}
	if HandOff(dep, down, p.HandOffAfter) {
		return &HandOffError{Dependency: dep, Op: op, For: down, After: p.HandOffAfter, Err: err}
	}
	pause := p.Backoff(attempt)
	if p.OutageTimeout > 0 {
		pause = max(min(pause, p.OutageTimeout-down), time.Millisecond)
	}
	now := p.Clock.Now()
	p.mu.Lock()
	warn := attempt == 1 || now.Sub(p.lastWarn[dep]) >= p.WarnEvery
	if warn {
		p.lastWarn[dep] = now
	}
	p.mu.Unlock()
	if warn {
		p.Logger.Warn("waiting for a dependency", "dependency", string(dep), "op", op, "attempt", attempt,
			"down_for", down.Round(100*time.Millisecond), "retry_in", pause.Round(time.Millisecond), "error", errorLine(err))
	}
	return p.Clock.Sleep(ctx, pause)
}

// Check is for a loop whose own calls do not fail while dep is down (a Kafka fetch
// returns nothing while the requests underneath time out; the tracker hears of them):
// while dep is down it warns, at most every WarnEvery, and once dep has been down longer
// than OutageTimeout it returns an *OutageError. It returns nil while dep is up.
func (p *Policy) Check(dep Dependency) error {
	p.init()
	st := p.Tracker.State(dep)
	now := p.Clock.Now()
	down := st.DownFor(now)
	if st.Up {
		return nil
	}
	if p.OutageTimeout > 0 && down >= p.OutageTimeout {
		return &OutageError{Dependency: dep, Op: st.Op, For: down, Limit: p.OutageTimeout, Err: errors.New(st.LastError)}
	}
	p.mu.Lock()
	warn := now.Sub(p.lastWarn[dep]) >= p.WarnEvery
	if warn {
		p.lastWarn[dep] = now
	}
	p.mu.Unlock()
	if warn {
		p.Logger.Warn("waiting for a dependency", "dependency", string(dep), "op", st.Op, "attempt", st.Attempt,
			"down_for", down.Round(100*time.Millisecond), "error", st.LastError)
	}
	return nil
}
