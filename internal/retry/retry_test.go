package retry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeClock advances only when slept on.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// brokerDead is what franz-go returns when a connection dies under a request: the same
// message, and (like kgo's) it unwraps to nothing we know but is retryable per kgo.
func dialRefused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"connection refused", fmt.Errorf("load table: %w", dialRefused()), Temporary},
		{"connection reset", fmt.Errorf("put: %w", syscall.ECONNRESET), Temporary},
		{"disk full", &fs.PathError{Op: "write", Path: "/w/data/x.parquet", Err: syscall.ENOSPC}, Temporary},
		{"I/O error", &fs.PathError{Op: "write", Path: "/w/x", Err: syscall.EIO}, Temporary},
		{"permission denied", &fs.PathError{Op: "open", Path: "/w/x", Err: syscall.EACCES}, Permanent},
		{"read-only file system", &fs.PathError{Op: "open", Path: "/w/x", Err: syscall.EROFS}, Permanent},
		{"file gone", &fs.PathError{Op: "open", Path: "/w/x", Err: syscall.ENOENT}, Permanent},
		{"attempt timeout", fmt.Errorf("commit: %w", context.DeadlineExceeded), Temporary},
		{"caller stopped", fmt.Errorf("commit: %w", context.Canceled), Permanent},
		{"S3 no such bucket", &smithy.GenericAPIError{Code: "NoSuchBucket", Fault: smithy.FaultClient}, Permanent},
		{"S3 access denied", fmt.Errorf("blob: %w", &smithy.GenericAPIError{Code: "AccessDenied", Fault: smithy.FaultClient}), Permanent},
		{"S3 bad signature", &smithy.GenericAPIError{Code: "SignatureDoesNotMatch", Fault: smithy.FaultClient}, Permanent},
		{"S3 slow down", &smithy.GenericAPIError{Code: "SlowDown", Fault: smithy.FaultClient}, Temporary},
		{"S3 internal error", &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}, Temporary},
		{"S3 request never answered", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject",
			Err: &smithyhttp.RequestSendError{Err: fmt.Errorf("send: %w", fs.ErrNotExist)}}, Temporary}, // no answer: whatever the cause says
		{"PostgreSQL auth", &pgconn.PgError{Code: "28P01", Message: "password authentication failed"}, Permanent},
		{"PostgreSQL missing database", &pgconn.PgError{Code: "3D000"}, Permanent},
		{"PostgreSQL undefined column", &pgconn.PgError{Code: "42703"}, Permanent},
		{"PostgreSQL shutting down", &pgconn.PgError{Code: "57P01"}, Temporary},
		{"PostgreSQL cannot connect now", &pgconn.PgError{Code: "57P03"}, Temporary},
		{"PostgreSQL disk full", &pgconn.PgError{Code: "53100"}, Temporary},
		{"Kafka dead broker", fmt.Errorf("kafka: fetch: %w", &kgo.ErrGroupSession{Err: errors.New("the broker connection has died and the request will be retried on a new connection")}), Temporary},
		{"Kafka dial in group", &kgo.ErrGroupSession{Err: dialRefused()}, Temporary},
		{"Kafka rebalance", &kgo.ErrGroupSession{Err: kerr.RebalanceInProgress}, Temporary},
		{"Kafka not coordinator", kerr.NotCoordinator, Temporary},
		{"Kafka SASL refused", fmt.Errorf("join: %w", kerr.SaslAuthenticationFailed), Permanent},
		{"Kafka topic authorization", kerr.TopicAuthorizationFailed, Permanent},
		{"Kafka invalid session timeout", &kgo.ErrGroupSession{Err: kerr.InvalidSessionTimeout}, Permanent},
		{"Kafka client closed", kgo.ErrClientClosed, Permanent},
		{"damaged metadata", fmt.Errorf("invalid metadata: %w", &json.SyntaxError{}), Permanent},
		{"marked permanent", MarkPermanent(fmt.Errorf("schema mismatch: %w", dialRefused())), Permanent},
		{"marked temporary", MarkTemporary(fs.ErrNotExist), Temporary},
		{"tag keeps the class", Tag(Storage, &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), Temporary},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %s, want %s", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestDependencyOf(t *testing.T) {
	err := fmt.Errorf("commit: %w", Tag(Storage, errors.New("put manifest")))
	if d, ok := DependencyOf(err); !ok || d != Storage {
		t.Fatalf("DependencyOf = %q, %v; want storage", d, ok)
	}
	joined := errors.Join(errors.New("a"), Tag(Catalog, errors.New("b")))
	if d, ok := DependencyOf(fmt.Errorf("x: %w", joined)); !ok || d != Catalog {
		t.Fatalf("DependencyOf(joined) = %q, %v; want catalog", d, ok)
	}
	if _, ok := DependencyOf(errors.New("plain")); ok {
		t.Fatal("an untagged error has no dependency")
	}
}

func TestBackoffIsCappedExponentialWithJitter(t *testing.T) {
	for _, jitter := range []float64{0, 0.5, 0.999} {
		p := &Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: func() float64 { return jitter }}
		prevHigh := time.Duration(0)
		for attempt := 1; attempt <= 40; attempt++ {
			full := min(100*time.Millisecond<<(attempt-1), 2*time.Second)
			if attempt > 20 {
				full = 2 * time.Second
			}
			got := p.Backoff(attempt)
			lo, hi := full/2, full
			if got < lo || got > hi {
				t.Fatalf("jitter %v attempt %d: backoff %s outside [%s, %s]", jitter, attempt, got, lo, hi)
			}
			if hi < prevHigh {
				t.Fatalf("attempt %d: bound shrank", attempt)
			}
			prevHigh = hi
		}
	}
	p := &Policy{Jitter: func() float64 { return 0 }}
	if a, b := p.Backoff(1), p.Backoff(2); b != 2*a {
		t.Fatalf("backoff not doubling: %s then %s", a, b)
	}
}

func TestDoRetriesTemporaryUntilItWorks(t *testing.T) {
	clock := newFakeClock()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tr := NewTracker(log, clock)
	p := &Policy{Clock: clock, Tracker: tr, Logger: log, Jitter: func() float64 { return 0 }}
	calls := 0
	err := p.Do(context.Background(), Catalog, "commit demo.ledger", func(ctx context.Context) error {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("an attempt has no deadline")
		}
		if calls < 5 {
			if st := tr.State(Catalog); calls > 1 && st.Up {
				t.Error("catalog up while it fails")
			}
			return dialRefused()
		}
		return nil
	})
	if err != nil || calls != 5 {
		t.Fatalf("Do = %v after %d calls; want nil after 5", err, calls)
	}
	if st := tr.State(Catalog); !st.Up || st.Outages != 1 || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("state after recovery: %+v", st)
	}
	if n := strings.Count(logs.String(), "dependency recovered"); n != 1 {
		t.Fatalf("recovery logged %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "outage=") {
		t.Fatalf("recovery does not give the outage's duration:\n%s", logs.String())
	}
	// 50, 100, 200, 400 ms with jitter 0 (half of 100, 200, 400, 800).
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	if fmt.Sprint(clock.sleeps) != fmt.Sprint(want) {
		t.Fatalf("pauses %v, want %v", clock.sleeps, want)
	}
}

func TestDoFailsFastOnPermanent(t *testing.T) {
	clock := newFakeClock()
	p := &Policy{Clock: clock}
	calls := 0
	denied := &fs.PathError{Op: "open", Path: "/w/ledger/data/x.parquet", Err: syscall.EACCES}
	err := p.Do(context.Background(), Storage, "stage 10 rows", func(context.Context) error { calls++; return denied })
	var perm *PermanentError
	if !errors.As(err, &perm) || calls != 1 || len(clock.sleeps) != 0 {
		t.Fatalf("Do = %v after %d calls and %d pauses; want a PermanentError at once", err, calls, len(clock.sleeps))
	}
	if !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "/w/ledger/data/x.parquet") ||
		!strings.Contains(err.Error(), "retrying cannot fix") {
		t.Fatalf("error does not say what and why: %v", err)
	}
	if !p.Track().State(Storage).Up {
		t.Fatal("a permanent error is not an outage")
	}
}

func TestOutageTimeoutNamesDependencyAndLastError(t *testing.T) {
	clock := newFakeClock()
	var logs bytes.Buffer
	p := &Policy{Clock: clock, OutageTimeout: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Jitter: func() float64 { return 0.5 }}
	calls := 0
	err := p.Do(context.Background(), Storage, "write manifest", func(context.Context) error {
		calls++
		return fmt.Errorf("put s3://lake/m%d.avro: %w", calls, syscall.ECONNREFUSED)
	})
	var out *OutageError
	if !errors.As(err, &out) {
		t.Fatalf("Do = %v, want an OutageError", err)
	}
	if out.Dependency != Storage || out.For < time.Minute || out.For > time.Minute+DefaultMax {
		t.Fatalf("outage error %+v", out)
	}
	msg := err.Error()
	if !strings.Contains(msg, "storage") || !strings.Contains(msg, fmt.Sprintf("m%d.avro", calls)) || !strings.Contains(msg, "write manifest") {
		t.Fatalf("message does not name the dependency, the operation and the last error: %s", msg)
	}
	// A warning at the first failure, then one at the first attempt 10 s or more after the
	// last (3.75 s apart at most here): 6 in the minute.
	if n := strings.Count(logs.String(), "waiting for a dependency"); n < 5 || n > 7 {
		t.Fatalf("%d waiting warnings in a minute, want one per 10 s:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "down_for=") || !strings.Contains(logs.String(), "attempt=") {
		t.Fatalf("warnings do not say the attempt and for how long:\n%s", logs.String())
	}
}

func TestOutageSpansOperations(t *testing.T) {
	// One outage, seen by two operations in turn, is one outage: the second does not
	// restart the count.
	clock := newFakeClock()
	p := &Policy{Clock: clock, OutageTimeout: 30 * time.Second}
	tr := p.Track()
	tr.Failed(Catalog, "commit", dialRefused())
	clock.advance(29 * time.Second)
	err := p.Do(context.Background(), Catalog, "load table", func(context.Context) error { return dialRefused() })
	var out *OutageError
	if !errors.As(err, &out) || clock.Now().Sub(tr.State(Catalog).Since) > 31*time.Second {
		t.Fatalf("Do = %v after %d pauses; the outage began 29 s earlier", err, len(clock.sleeps))
	}
	if tr.Reason() == "" || !strings.Contains(tr.Reason(), "catalog down for") {
		t.Fatalf("reason %q", tr.Reason())
	}
}

func TestZeroOutageTimeoutWaitsForever(t *testing.T) {
	clock := newFakeClock()
	p := &Policy{Clock: clock}
	calls := 0
	err := p.Do(context.Background(), Kafka, "list offsets", func(context.Context) error {
		calls++
		if clock.Now().Sub(newFakeClock().now) < 24*time.Hour {
			return dialRefused()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do = %v, want success after a day", err)
	}
}

func TestAttemptTimeoutTurnsAHangIntoARetry(t *testing.T) {
	p := &Policy{Timeouts: map[Dependency]time.Duration{Catalog: 50 * time.Millisecond}, Initial: time.Millisecond, Max: time.Millisecond}
	calls := 0
	start := time.Now()
	err := p.Do(context.Background(), Catalog, "load table", func(ctx context.Context) error {
		calls++
		if calls == 1 {
			<-ctx.Done() // a black hole: no answer until our deadline
			return fmt.Errorf("query: %w", context.Canceled)
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Do = %v after %d calls; want success on the second", err, calls)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a hang took %s to be retried", took)
	}
	st := p.Track().State(Catalog)
	if !strings.Contains(st.LastError, "no answer within 50ms") || st.Outages != 1 {
		t.Fatalf("state %+v does not record the timeout", st)
	}
}

func TestDoStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Policy{Initial: time.Millisecond, Max: time.Millisecond}
	calls := 0
	err := p.Do(ctx, Storage, "put", func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return dialRefused()
	})
	if err == nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls; want to stop at the cancel", err, calls)
	}
}

func TestTaggedFailureCountsAgainstItsDependency(t *testing.T) {
	clock := newFakeClock()
	p := &Policy{Clock: clock}
	calls := 0
	err := p.Do(context.Background(), Catalog, "commit", func(context.Context) error {
		calls++
		if calls == 1 {
			if !p.Track().State(Storage).Up {
				t.Error("storage down before it failed")
			}
			return Tag(Storage, fmt.Errorf("write manifest: %w", syscall.ENOSPC))
		}
		if p.Track().State(Storage).Up || !p.Track().State(Catalog).Up {
			t.Error("a manifest write failure must count against storage, not the catalog")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Track().State(Storage).Up {
		t.Fatal("storage still down after the commit worked")
	}
}

func TestHandOff(t *testing.T) {
	const session = 10 * time.Second
	for _, tc := range []struct {
		dep         Dependency
		down, after time.Duration
		want        bool
	}{
		{Catalog, 0, session, false},
		{Catalog, session - time.Millisecond, session, false},
		{Catalog, session, session, true},
		{Catalog, time.Hour, session, true},
		{Storage, session, session, true},
		{Storage, 3 * time.Second, session, false},
		// Kafka: the session ends by itself when heartbeats stop; nothing to hand off.
		{Kafka, time.Hour, session, false},
		// Hand-off off (0 or negative): never, however long.
		{Catalog, time.Hour, 0, false},
		{Storage, time.Hour, -time.Second, false},
		{Dependency("other"), time.Hour, session, false},
	} {
		if got := HandOff(tc.dep, tc.down, tc.after); got != tc.want {
			t.Errorf("HandOff(%s, down %s, after %s) = %v, want %v", tc.dep, tc.down, tc.after, got, tc.want)
		}
	}
}

// A catalog that does not answer: the attempt times out after its own bound, and the
// outage counts from when that attempt began, so a 3 s session is reached at the first
// timeout of a 5 s attempt, not one attempt later. The wait ends in a hand-off naming the
// dependency, the operation and for how long; the policy without hand-off waits on.
func TestHandOffAfterSessionTimeout(t *testing.T) {
	clock := newFakeClock()
	p := &Policy{Clock: clock, OutageTimeout: time.Minute, HandOffAfter: 3 * time.Second,
		Timeouts: map[Dependency]time.Duration{Catalog: -1}}
	calls := 0
	err := p.Do(context.Background(), Catalog, "commit batch 7", func(context.Context) error {
		calls++
		clock.advance(5 * time.Second) // the attempt's bound, as a black hole lets it run out
		return MarkTemporary(fmt.Errorf("commit: %w (no answer within 5s)", context.Canceled))
	})
	var h *HandOffError
	if !errors.As(err, &h) || calls != 1 || h.Dependency != Catalog || h.For != 5*time.Second || h.After != 3*time.Second {
		t.Fatalf("Do = %v after %d calls (%+v), want a hand-off after the first 5 s attempt", err, calls, h)
	}
	if msg := err.Error(); !strings.Contains(msg, "catalog unreachable for 5s") || !strings.Contains(msg, "commit batch 7") {
		t.Fatalf("hand-off message %q", msg)
	}
	// Kafka never hands off; the same outage on the storage does.
	err = p.Do(context.Background(), Kafka, "fetch", func(context.Context) error {
		if calls++; calls < 5 {
			clock.advance(5 * time.Second)
			return dialRefused()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Kafka: Do = %v", err)
	}
	// Waiting for the dependency after the hand-off: the same outage, no hand-off, and the
	// outage timeout still applies.
	q := p.WithoutHandOff()
	if q.Track() != p.Track() || q.HandOffAfter != 0 || q.OutageTimeout != time.Minute {
		t.Fatalf("WithoutHandOff = %+v", q)
	}
	err = q.Do(context.Background(), Catalog, "load the tables", func(context.Context) error { return dialRefused() })
	var out *OutageError
	if !errors.As(err, &out) {
		t.Fatalf("without hand-off: Do = %v, want the outage timeout", err)
	}
}

// An outage does not start before the dependency last came back, whenever the failed
// attempt began.
func TestFailedSinceNotBeforeRecovery(t *testing.T) {
	clock := newFakeClock()
	tr := NewTracker(nil, clock)
	began := clock.Now()
	tr.Failed(Storage, "put", dialRefused())
	clock.advance(time.Second)
	tr.Succeeded(Storage)
	clock.advance(time.Second)
	if down := tr.FailedSince(Storage, "put", dialRefused(), began); down != time.Second {
		t.Fatalf("down %s, want 1s (since the recovery)", down)
	}
}
