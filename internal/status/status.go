// Package status serves the operator's status page: at a glance, whether the pipeline keeps
// up. Per partition the committed offset, the last stable offset, the lag and whether this
// worker owns it; the recent commits (rows per batch, batch duration, commit latency);
// produce-to-visible latency; rejects by reason; each dependency's state and last error;
// the worker's id, pipeline and uptime.
//
// The page's figures are those of /metrics at the same moment by construction: each
// request makes one scrape of the metrics registry and renders the page from its samples,
// beside what only the page shows (the commit log, the dependencies, the worker). Every
// asset is embedded in the binary (operators' networks are closed). Without JavaScript the
// page is plain tables that refresh themselves (meta refresh); with it, a small script
// replaces the page's body every two seconds and draws the commit charts as SVG.
package status

import (
	"bytes"
	"cmp"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

//go:embed assets
var assets embed.FS

// Commit is one committed batch, as the commit charts show it.
type Commit struct {
	At            time.Time `json:"at"`
	Batch         int64     `json:"batch"`
	Rows          int64     `json:"rows"`
	Rejects       int64     `json:"rejects"`
	BatchSeconds  float64   `json:"batch_seconds"`  // first fetch to last commit (trigger wait included)
	CommitSeconds float64   `json:"commit_seconds"` // the ledger's commit attempt(s)
}

// CommitLog keeps the commits of the last Window. Safe for concurrent use.
type CommitLog struct {
	Window time.Duration // 0: 10 minutes

	mu      sync.Mutex
	commits []Commit
}

// Add records a commit and forgets those older than the window.
func (l *CommitLog) Add(c Commit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commits = append(l.commits, c)
	l.trim(c.At)
}

func (l *CommitLog) trim(now time.Time) {
	window := cmp.Or(l.Window, 10*time.Minute)
	i := 0
	for i < len(l.commits) && now.Sub(l.commits[i].At) > window {
		i++
	}
	// Bound memory whatever the trigger: at most 2,000 points are drawn anyway.
	i = max(i, len(l.commits)-2000)
	if i > 0 {
		l.commits = append(l.commits[:0:0], l.commits[i:]...)
	}
}

// Recent returns the commits of the window before now, oldest first.
func (l *CommitLog) Recent(now time.Time) []Commit {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trim(now)
	return slices.Clone(l.commits)
}

// Info is what the page shows beside the metrics. The pipeline gives it at each request.
type Info struct {
	WorkerID string
	Pipeline string
	Topic    string
	Table    string
	Started  time.Time
	// Ready is nil when /readyz answers 200, else the reason it does not.
	Ready error
	// Owned are the partitions this worker owns now, as "topic/partition".
	Owned []string
	// Commits are the recent commits, oldest first.
	Commits []Commit
	// Dependencies are the states of Kafka, the catalog and the storage.
	Dependencies []retry.State
}

// Handler serves the page at "/" (and "/status" for the body alone, which the script
// fetches), "/status.json" (the same figures for programs), and the embedded assets under
// "/assets/". Each request scrapes reg once and asks info once.
func Handler(reg *metrics.Registry, info func() Info) http.Handler {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	render := func(w http.ResponseWriter, name string) {
		p, err := snapshot(reg, info())
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		var buf bytes.Buffer
		if err := pageTemplate.ExecuteTemplate(&buf, name, p); err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { render(w, "page") })
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { render(w, "body") })
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		p, err := snapshot(reg, info())
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = writeJSON(w, p)
	})
	return mux
}

// snapshot makes one scrape of reg and builds the page from it and info.
func snapshot(reg *metrics.Registry, info Info) (*Page, error) {
	var buf bytes.Buffer
	if _, err := reg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	samples, err := metrics.Parse(&buf)
	if err != nil {
		return nil, err
	}
	return Build(samples, info, time.Now()), nil
}

// Partition is one row of the partitions table.
type Partition struct {
	Name      string `json:"partition"` // topic/partition
	Owned     bool   `json:"owned"`
	Committed *int64 `json:"committed_offset"` // nil: the ledger has no offset for it yet
	End       *int64 `json:"last_stable_offset"`
	Lag       *int64 `json:"lag"`
}

// Reason is one row of the rejects table.
type Reason struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// Latency summarises a histogram of the scrape.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_seconds"`
	P50   float64 `json:"p50_seconds"` // bucket upper bounds: "at most"
	P99   float64 `json:"p99_seconds"`
	Last  float64 `json:"last_seconds"`
	Known bool    `json:"known"`
}

// Page is everything the page shows, from one scrape and one Info.
type Page struct {
	At       time.Time `json:"at"`
	WorkerID string    `json:"worker_id"`
	Pipeline string    `json:"pipeline"`
	Topic    string    `json:"topic"`
	Table    string    `json:"table"`
	Uptime   string    `json:"uptime"`
	Ready    bool      `json:"ready"`
	NotReady string    `json:"not_ready,omitempty"`

	Partitions []Partition `json:"partitions"`
	TotalLag   int64       `json:"total_lag"`
	LagKnown   bool        `json:"lag_known"`
	Owned      int         `json:"owned_partitions"`

	Consumed   int64     `json:"records_consumed"`
	Accepted   int64     `json:"records_accepted"`
	Rejected   int64     `json:"records_rejected"`
	Replayed   int64     `json:"records_replayed"`
	Batches    int64     `json:"batches"`
	Conflicts  int64     `json:"commit_conflicts"`
	Fenced     int64     `json:"batches_fenced"`
	LastCommit time.Time `json:"last_commit,omitzero"`

	Visible      Latency      `json:"produce_to_visible"`
	BatchTime    Latency      `json:"batch_duration"`
	CommitTime   Latency      `json:"commit_duration"`
	Rejects      []Reason     `json:"rejects_by_reason"`
	Gaps         Gaps         `json:"gaps"`
	Commits      []Commit     `json:"commits"`
	Dependencies []Dependency `json:"dependencies"`
}

// Gaps is what the worker found of records deleted from the topic before it read them,
// and of a topic that is no longer the one the tables name (run --on-gap).
type Gaps struct {
	Recorded     int64 `json:"recorded"`
	OffsetsLost  int64 `json:"offsets_lost_before_processing"`
	Refused      int64 `json:"refused"`
	TopicChanged bool  `json:"topic_changed"`
}

// Dependency is one row of the dependencies table.
type Dependency struct {
	retry.State
	DownFor string `json:"down_for,omitempty"`
}

// Build makes the page from a scrape's samples (metrics.Parse) and info, at now.
func Build(samples map[string]float64, info Info, now time.Time) *Page {
	p := &Page{At: now.UTC(), WorkerID: info.WorkerID, Pipeline: info.Pipeline, Topic: info.Topic, Table: info.Table,
		Ready: info.Ready == nil, Commits: info.Commits}
	if info.Ready != nil {
		p.NotReady = info.Ready.Error()
	}
	if !info.Started.IsZero() {
		p.Uptime = formatDuration(now.Sub(info.Started))
	}
	owned := map[string]bool{}
	for _, o := range info.Owned {
		owned[o] = true
	}
	p.Owned = len(info.Owned)
	parts := map[string]*Partition{}
	part := func(labels map[string]string) *Partition {
		name := labels["topic"] + "/" + labels["partition"]
		if parts[name] == nil {
			parts[name] = &Partition{Name: name, Owned: owned[name]}
		}
		return parts[name]
	}
	hist := map[string]map[string]float64{} // family{labels} -> le -> cumulative count
	for key, v := range samples {
		name, labels := splitSample(key)
		n := int64(v)
		switch name {
		case "ledgerstream_committed_offset":
			part(labels).Committed = &n
		case "ledgerstream_high_watermark":
			part(labels).End = &n
		case "ledgerstream_lag":
			part(labels).Lag = &n
			p.TotalLag += n
			p.LagKnown = true
		case "ledgerstream_records_consumed_total":
			p.Consumed = n
		case "ledgerstream_records_accepted_total":
			p.Accepted = n
		case "ledgerstream_records_replayed_total":
			p.Replayed = n
		case "ledgerstream_records_rejected_total":
			p.Rejected += n
			p.Rejects = append(p.Rejects, Reason{Reason: labels["reason"], Count: n})
		case "ledgerstream_gaps_recorded_total":
			p.Gaps.Recorded = n
		case "ledgerstream_offsets_lost_before_processing_total":
			p.Gaps.OffsetsLost = n
		case "ledgerstream_gaps_refused_total":
			p.Gaps.Refused = n
		case "ledgerstream_topic_changed":
			p.Gaps.TopicChanged = v != 0
		case "ledgerstream_batches_total":
			p.Batches = n
		case "ledgerstream_commit_conflicts_total":
			p.Conflicts = n
		case "ledgerstream_batches_fenced_total":
			p.Fenced = n
		case "ledgerstream_last_commit_timestamp_seconds":
			p.LastCommit = time.Unix(0, int64(v*1e9)).UTC()
		case "ledgerstream_produce_to_visible_last_seconds":
			p.Visible.Last = v
		default:
			base, ok := strings.CutSuffix(name, "_bucket")
			if !ok || labels["table"] == "rejects" {
				continue
			}
			if hist[base] == nil {
				hist[base] = map[string]float64{}
			}
			hist[base][labels["le"]] = v
		}
	}
	for _, pt := range parts {
		p.Partitions = append(p.Partitions, *pt)
	}
	slices.SortFunc(p.Partitions, func(a, b Partition) int { return comparePartition(a.Name, b.Name) })
	slices.SortFunc(p.Rejects, func(a, b Reason) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	summarise := func(l *Latency, family string) {
		l.Count = int64(samples[family+"_count"])
		if ts, ok := samples[family+`_count{table="ledger"}`]; ok {
			l.Count = int64(ts)
			l.Mean = samples[family+`_sum{table="ledger"}`] / max(ts, 1)
		} else if l.Count > 0 {
			l.Mean = samples[family+"_sum"] / float64(l.Count)
		}
		l.Known = l.Count > 0
		l.P50, l.P99 = quantile(hist[family], 0.5), quantile(hist[family], 0.99)
	}
	last := p.Visible.Last
	summarise(&p.Visible, "ledgerstream_produce_to_visible_seconds")
	p.Visible.Last = last
	summarise(&p.BatchTime, "ledgerstream_batch_duration_seconds")
	summarise(&p.CommitTime, "ledgerstream_commit_duration_seconds")
	for _, d := range info.Dependencies {
		dep := Dependency{State: d}
		if !d.Up {
			dep.DownFor = formatDuration(d.DownFor(now))
		}
		p.Dependencies = append(p.Dependencies, dep)
	}
	return p
}

// quantile estimates the q quantile of a cumulative histogram (le -> count) as the upper
// bound of the bucket it falls in (+Inf: the largest finite bound is reported).
func quantile(buckets map[string]float64, q float64) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for le, n := range buckets {
		f, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			f, err = math.Inf(1), nil
		}
		if err == nil {
			bs = append(bs, bucket{f, n})
		}
	}
	if len(bs) == 0 {
		return 0
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	total := bs[len(bs)-1].n
	if total == 0 {
		return 0
	}
	for i, b := range bs {
		if b.n >= q*total {
			if math.IsInf(b.le, 1) && i > 0 {
				return bs[i-1].le
			}
			return b.le
		}
	}
	return bs[len(bs)-1].le
}

// splitSample splits `name{a="x",b="y"}` into its name and labels.
func splitSample(key string) (string, map[string]string) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key, nil
	}
	labels := map[string]string{}
	rest := key[open+1 : len(key)-1]
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
			break
		}
		name := rest[:eq]
		var val strings.Builder
		i := eq + 2
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(rest[i])
				}
				continue
			}
			val.WriteByte(rest[i])
		}
		labels[name] = val.String()
		rest = strings.TrimPrefix(rest[min(i+1, len(rest)):], ",")
	}
	return key[:open], labels
}

// comparePartition orders topic/partition names by topic, then partition number.
func comparePartition(a, b string) int {
	at, ap, _ := strings.Cut(a, "/")
	bt, bp, _ := strings.Cut(b, "/")
	an, _ := strconv.Atoi(ap)
	bn, _ := strconv.Atoi(bp)
	return cmp.Or(strings.Compare(at, bt), cmp.Compare(an, bn))
}

// formatDuration prints d to the second (to the millisecond below a second).
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
