// Package metrics exposes ledgerstream's figures in the Prometheus text format (version
// 0.0.4) with /healthz and /readyz beside them.
//
// It is a small hand-written registry rather than prometheus/client_golang: the figures
// already live elsewhere (the engine's atomic counters, the tables, Kafka), so the registry
// only reads them at scrape time through collectors, and the format is a page of code. The
// one stateful type is Histogram, for durations nothing else records.
package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Label is one name="value" pair of a sample.
type Label struct{ Name, Value string }

// L builds labels from alternating names and values.
func L(nameValues ...string) []Label {
	ls := make([]Label, 0, len(nameValues)/2)
	for i := 0; i+1 < len(nameValues); i += 2 {
		ls = append(ls, Label{nameValues[i], nameValues[i+1]})
	}
	return ls
}

// Collector adds samples to a scrape.
type Collector interface {
	Collect(e *Emitter)
}

// CollectorFunc adapts a function to Collector.
type CollectorFunc func(e *Emitter)

// Collect calls f.
func (f CollectorFunc) Collect(e *Emitter) { f(e) }

// Registry is the set of collectors one endpoint serves. Safe for concurrent use.
type Registry struct {
	mu         sync.Mutex
	collectors []Collector
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds c; its samples appear in every later scrape.
func (r *Registry) Register(c Collector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, c)
}

// WriteTo writes one scrape of every collector to w in the text format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	cs := slices.Clone(r.collectors)
	r.mu.Unlock()
	e := &Emitter{byName: map[string]*family{}}
	for _, c := range cs {
		c.Collect(e)
	}
	cw := &countingWriter{w: bufio.NewWriter(w)}
	for _, f := range e.order {
		fmt.Fprintf(cw, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
		for _, s := range f.samples {
			cw.WriteString(s)
		}
	}
	err := cw.w.Flush()
	return cw.n, errors.Join(cw.err, err)
}

type countingWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

func (c *countingWriter) WriteString(s string) { _, _ = c.Write([]byte(s)) }

type family struct {
	name, help, typ string
	samples         []string
}

// Emitter gathers the samples of one scrape, grouping them by metric family whatever the
// order collectors emit them in (the format wants a family's samples together).
type Emitter struct {
	order  []*family
	byName map[string]*family
}

func (e *Emitter) family(name, help, typ string) *family {
	f, ok := e.byName[name]
	if !ok {
		f = &family{name: name, help: help, typ: typ}
		e.byName[name] = f
		e.order = append(e.order, f)
	}
	return f
}

// Counter emits a sample of a counter (a total that only grows; its name ends in _total).
func (e *Emitter) Counter(name, help string, v float64, labels ...Label) {
	f := e.family(name, help, "counter")
	f.samples = append(f.samples, sample(name, labels, v))
}

// Gauge emits a sample of a gauge.
func (e *Emitter) Gauge(name, help string, v float64, labels ...Label) {
	f := e.family(name, help, "gauge")
	f.samples = append(f.samples, sample(name, labels, v))
}

// Histogram emits h's cumulative buckets, sum and count.
func (e *Emitter) Histogram(name, help string, h *Histogram, labels ...Label) {
	f := e.family(name, help, "histogram")
	counts, sum, count := h.snapshot()
	var cum uint64
	for i, ub := range h.bounds {
		cum += counts[i]
		f.samples = append(f.samples, sample(name+"_bucket", append(slices.Clone(labels), Label{"le", formatFloat(ub)}), float64(cum)))
	}
	f.samples = append(f.samples,
		sample(name+"_bucket", append(slices.Clone(labels), Label{"le", "+Inf"}), float64(count)),
		sample(name+"_sum", labels, sum),
		sample(name+"_count", labels, float64(count)))
}

func sample(name string, labels []Label, v float64) string {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.Name)
			b.WriteString(`="`)
			b.WriteString(escapeLabel(l.Value))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
	return b.String()
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, +1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

// Histogram counts observations in fixed buckets. Observe is lock-free.
type Histogram struct {
	bounds []float64 // upper bounds, ascending
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// DurationBuckets suit commit and batch durations in seconds: 1 ms to about 1 minute.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewHistogram returns a histogram with the given ascending upper bounds.
func NewHistogram(bounds []float64) *Histogram {
	b := slices.Clone(bounds)
	sort.Float64s(b)
	return &Histogram{bounds: b, counts: make([]atomic.Uint64, len(b))}
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v: the le bucket of v
	if i < len(h.bounds) {
		h.counts[i].Add(1)
	}
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

func (h *Histogram) snapshot() (counts []uint64, sum float64, count uint64) {
	// Read without a lock while Observe runs: the count is raised to the buckets' total so
	// that the +Inf bucket is never below a finite one.
	count = h.count.Load()
	counts = make([]uint64, len(h.counts))
	var total uint64
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	if total > count {
		count = total
	}
	return counts, math.Float64frombits(h.sum.Load()), count
}

// Handler serves /metrics from reg, /healthz (the process answers) and /readyz (ready
// returns nil; its error is the reason it is not).
func Handler(reg *Registry, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = reg.WriteTo(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

// Server is a started metrics endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen starts serving h on addr (host:port; port 0 picks a free one).
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	s := &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ln: ln, done: make(chan error, 1)}
	go func() { // owned by Server: Close waits for it
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, letting scrapes in flight finish for up to 2 seconds, and waits
// for its goroutine.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-s.done)
}

// Parse reads the samples of a text-format scrape into a map keyed by the sample as written
// before its value (name{labels}). It is for tests and for the soak, which compares the
// endpoint with the tables.
func Parse(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		i := strings.LastIndexByte(t, ' ')
		if i <= 0 {
			return nil, fmt.Errorf("metrics: line %d: no value: %q", line, t)
		}
		v, err := strconv.ParseFloat(t[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: line %d: %w", line, err)
		}
		key := t[:i]
		if open := strings.IndexByte(key, '{'); open >= 0 && !strings.HasSuffix(key, "}") {
			return nil, fmt.Errorf("metrics: line %d: unbalanced labels: %q", line, t)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("metrics: line %d: sample %s twice", line, key)
		}
		out[key] = v
	}
	return out, sc.Err()
}
