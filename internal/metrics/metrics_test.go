package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// memSource serves a fixed list of records from one partition, then nothing.
type memSource struct {
	mu   sync.Mutex
	recs []engine.Record
	next int
}

func (s *memSource) Fetch(ctx context.Context, max int) ([]engine.Record, error) {
	s.mu.Lock()
	if s.next < len(s.recs) {
		n := min(len(s.recs)-s.next, max)
		out := s.recs[s.next : s.next+n]
		s.next += n
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return nil, nil
}
func (s *memSource) Seek(engine.Offsets) {}
func (s *memSource) Assigned() []engine.Partition {
	return []engine.Partition{{Topic: "t", Partition: 0}}
}
func (s *memSource) Release() {}
func (s *memSource) CommitAdvisory(context.Context, engine.Offsets) error {
	return nil
}
func (s *memSource) Ends(context.Context) (engine.Offsets, engine.Offsets, error) {
	p := engine.Partition{Topic: "t", Partition: 0}
	return engine.Offsets{p: 0}, engine.Offsets{p: int64(len(s.recs))}, nil
}

// memTable is an in-memory engine.Table.
type memTable struct {
	mu sync.Mutex
	st engine.TableState
}

type memStaged int

func (m memStaged) Rows() int64 { return int64(m) }

func (t *memTable) Name() string { return "mem" }
func (t *memTable) Load(context.Context) (engine.TableState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st, nil
}
func (t *memTable) Stage(_ context.Context, rows []ledger.Row, _ time.Time) (engine.Staged, error) {
	return memStaged(len(rows)), nil
}
func (t *memTable) Commit(_ context.Context, base engine.TableState, _ engine.Staged, c engine.Commit) (engine.TableState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if base.SnapshotID != t.st.SnapshotID {
		return engine.TableState{}, engine.ErrConflict
	}
	t.st = engine.TableState{SnapshotID: t.st.SnapshotID + 1, Offsets: c.Offsets.Clone(), Batch: c.Batch}
	return t.st, nil
}
func (t *memTable) Discard(context.Context, engine.Staged) error { return nil }
func (t *memTable) Join(parts []engine.Staged) engine.Staged {
	var n memStaged
	for _, p := range parts {
		n += p.(memStaged)
	}
	return n
}

func TestEngineMetricsMatchStats(t *testing.T) {
	gen := ledger.NewGenerator(7, ledger.GeneratorOptions{Malformed: 0.2})
	src := &memSource{}
	for i := 0; i < 300; i++ {
		m := gen.Next(time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC))
		src.recs = append(src.recs, engine.Record{Partition: engine.Partition{Topic: "t"}, Offset: int64(i), Key: m.Key, Value: m.Value})
	}
	eng := engine.New(engine.Config{Pipeline: "p", Trigger: 50 * time.Millisecond, MaxBatchRecords: 40, AvailableNow: true},
		engine.Sinks{Ledger: &memTable{}})
	for {
		done, err := eng.Step(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	st := eng.Stats()
	if st.Rejected.Load() == 0 || st.Accepted.Load() == 0 {
		t.Fatalf("want both accepted and rejected records, got %d and %d", st.Accepted.Load(), st.Rejected.Load())
	}

	reg := NewRegistry()
	reg.Register(Engine(st))
	h := NewHistogram(DurationBuckets)
	for _, d := range []float64{0.0005, 0.003, 0.003, 0.2, 100} {
		h.Observe(d)
	}
	reg.Register(CollectorFunc(func(e *Emitter) {
		e.Histogram("ledgerstream_commit_duration_seconds", "Commit durations.", h, Label{"table", `we"ird\name`})
	}))
	srv, err := Listen("127.0.0.1:0", Handler(reg, func() error { return errors.New("no partitions") }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, text := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	got, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	want := map[string]int64{
		"ledgerstream_records_consumed_total": st.Records.Load(),
		"ledgerstream_records_accepted_total": st.Accepted.Load(),
		"ledgerstream_batches_total":          st.Batches.Load(),
		"ledgerstream_commit_conflicts_total": st.Conflicts.Load(),
		"ledgerstream_batches_fenced_total":   st.Fenced.Load(),
	}
	var sumReasons int64
	for r, n := range st.RejectedBy() {
		want[fmt.Sprintf(`ledgerstream_records_rejected_total{reason="%s"}`, r)] = n
		sumReasons += n
	}
	if sumReasons != st.Rejected.Load() {
		t.Fatalf("reasons sum to %d, rejected %d", sumReasons, st.Rejected.Load())
	}
	for k, v := range want {
		if got[k] != float64(v) {
			t.Errorf("%s = %v, want %d", k, got[k], v)
		}
	}
	lbl := `table="we\"ird\\name"`
	for k, v := range map[string]float64{
		`ledgerstream_commit_duration_seconds_bucket{` + lbl + `,le="0.001"}`: 1,
		`ledgerstream_commit_duration_seconds_bucket{` + lbl + `,le="0.005"}`: 3,
		`ledgerstream_commit_duration_seconds_bucket{` + lbl + `,le="60"}`:    4,
		`ledgerstream_commit_duration_seconds_bucket{` + lbl + `,le="+Inf"}`:  5,
		`ledgerstream_commit_duration_seconds_count{` + lbl + `}`:             5,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v\n%s", k, got[k], v, text)
		}
	}
	if strings.Count(text, "# TYPE ledgerstream_records_rejected_total counter") != 1 {
		t.Errorf("rejected family not grouped:\n%s", text)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "no partitions") {
		t.Errorf("/readyz: %d %q", code, body)
	}
}

// TestEngineGapMetrics: gaps recorded, offsets lost, refusals and a changed topic show.
func TestEngineGapMetrics(t *testing.T) {
	var st engine.Stats
	st.Gaps.Add(2)
	st.LostOffsets.Add(116)
	st.GapsRefused.Add(1)
	st.TopicChanged.Store(true)
	reg := NewRegistry()
	reg.Register(Engine(&st))
	var b strings.Builder
	if _, err := reg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{
		"ledgerstream_gaps_recorded_total":                  2,
		"ledgerstream_offsets_lost_before_processing_total": 116,
		"ledgerstream_gaps_refused_total":                   1,
		"ledgerstream_topic_changed":                        1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
