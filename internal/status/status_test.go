package status

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// testRegistry serves what a pipeline's registry does, with fixed figures.
func testRegistry() *metrics.Registry {
	reg := metrics.NewRegistry()
	commits := metrics.NewHistogram(metrics.DurationBuckets)
	for _, d := range []float64{0.004, 0.006, 0.02} {
		commits.Observe(d)
	}
	visible := metrics.NewHistogram(metrics.VisibleBuckets)
	visible.Observe(0.8)
	reg.Register(metrics.CollectorFunc(func(e *metrics.Emitter) {
		e.Counter("ledgerstream_records_consumed_total", "c", 1500)
		e.Counter("ledgerstream_records_accepted_total", "a", 1470)
		e.Counter("ledgerstream_records_rejected_total", "r", 20, metrics.L("reason", "malformed_json")...)
		e.Counter("ledgerstream_records_rejected_total", "r", 10, metrics.L("reason", "duplicate")...)
		e.Counter("ledgerstream_batches_total", "b", 7)
		e.Counter("ledgerstream_gaps_recorded_total", "g", 2)
		e.Counter("ledgerstream_offsets_lost_before_processing_total", "o", 600)
		e.Counter("ledgerstream_gaps_refused_total", "r", 0)
		e.Gauge("ledgerstream_topic_changed", "t", 1)
		e.Histogram("ledgerstream_commit_duration_seconds", "d", commits, metrics.L("table", "ledger")...)
		e.Histogram("ledgerstream_produce_to_visible_seconds", "v", visible)
		e.Gauge("ledgerstream_produce_to_visible_last_seconds", "v", 0.8)
		for i, lag := range []int64{0, 250, 12} {
			ls := metrics.L("topic", "tx", "partition", string(rune('0'+i)))
			e.Gauge("ledgerstream_committed_offset", "c", float64(1000*(i+1)), ls...)
			e.Gauge("ledgerstream_high_watermark", "h", float64(1000*(i+1))+float64(lag), ls...)
			e.Gauge("ledgerstream_lag", "l", float64(lag), ls...)
		}
		// A partition with an end offset but nothing committed yet has no lag sample.
		e.Gauge("ledgerstream_high_watermark", "h", 9, metrics.L("topic", "tx", "partition", "10")...)
	}))
	return reg
}

func testInfo() Info {
	t0 := time.Now().Add(-(3*time.Minute + 12*time.Second))
	return Info{WorkerID: "w-1", Pipeline: "p", Topic: "tx", Table: "demo.ledger", Started: t0,
		Owned:   []string{"tx/0", "tx/2"},
		Commits: []Commit{{At: t0.Add(time.Minute), Batch: 6, Rows: 700, BatchSeconds: 1.2, CommitSeconds: 0.006}, {At: t0.Add(2 * time.Minute), Batch: 7, Rows: 770, Rejects: 3, BatchSeconds: 1.1, CommitSeconds: 0.02}},
		Dependencies: []retry.State{
			{Dependency: retry.Kafka, Up: true},
			{Dependency: retry.Catalog, Up: false, Since: time.Now().Add(-42 * time.Second), LastError: "dial tcp 127.0.0.1:5432: connection refused", LastErrorAt: time.Now(), Outages: 2},
		},
		Ready: errors.New("no batch completed for 45s"),
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (string, http.Header) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
	}
	return string(b), resp.Header
}

// TestPageMatchesMetrics: the page's figures are the scrape's.
func TestPageMatchesMetrics(t *testing.T) {
	reg := testRegistry()
	srv := httptest.NewServer(Handler(reg, testInfo))
	defer srv.Close()

	body, _ := get(t, srv, "/status.json")
	var p Page
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.TotalLag != 262 || !p.LagKnown || p.Accepted != 1470 || p.Rejected != 30 || p.Batches != 7 || p.Consumed != 1500 {
		t.Errorf("figures: lag %d (known %v), accepted %d, rejected %d, batches %d, consumed %d", p.TotalLag, p.LagKnown, p.Accepted, p.Rejected, p.Batches, p.Consumed)
	}
	if len(p.Partitions) != 4 || p.Partitions[3].Name != "tx/10" || p.Partitions[3].Lag != nil || *p.Partitions[1].Lag != 250 ||
		!p.Partitions[0].Owned || p.Partitions[1].Owned || *p.Partitions[2].Committed != 3000 || *p.Partitions[2].End != 3012 {
		t.Errorf("partitions: %s", body)
	}
	if len(p.Rejects) != 2 || p.Rejects[0] != (Reason{"malformed_json", 20}) {
		t.Errorf("rejects: %+v", p.Rejects)
	}
	if p.CommitTime.Count != 3 || p.CommitTime.P50 != 0.01 || p.CommitTime.P99 != 0.025 || p.Visible.Last != 0.8 || p.Visible.P50 != 1 {
		t.Errorf("latencies: commit %+v, visible %+v", p.CommitTime, p.Visible)
	}
	if p.Uptime != "3m12s" || p.Ready || p.NotReady != "no batch completed for 45s" || len(p.Dependencies) != 2 || p.Dependencies[1].DownFor != "42s" {
		t.Errorf("worker: uptime %q, ready %v %q, deps %+v", p.Uptime, p.Ready, p.NotReady, p.Dependencies)
	}
}

// TestPagePlainHTML: without JavaScript the page is tables with the figures, refreshed by
// a meta refresh, and every asset comes from the binary.
func TestPagePlainHTML(t *testing.T) {
	srv := httptest.NewServer(Handler(testRegistry(), testInfo))
	defer srv.Close()
	page, h := get(t, srv, "/")
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("content type %q", h.Get("Content-Type"))
	}
	for _, want := range []string{
		`<noscript><meta http-equiv="refresh" content="5"></noscript>`,
		`id="total-lag" data-value="262">262<`,
		`<tr data-partition="tx/1"><td>tx/1</td><td class="n lag warn">250</td><td>other</td><td class="n committed">2,000</td><td class="n end">2,250</td></tr>`,
		`<tr data-partition="tx/10"><td>tx/10</td><td class="n lag">–</td><td>other</td><td class="n committed">–</td><td class="n end">9</td></tr>`,
		`<b>this worker</b>`,
		`<td>malformed_json</td><td class="n">20</td>`,
		`dial tcp 127.0.0.1:5432: connection refused`,
		`down 42s`,
		`not ready: no batch completed for 45s`,
		`<td class="n">7</td><td class="n">770</td><td class="n">3</td><td class="n">1.10 s</td><td class="n">20 ms</td>`,
		`"batch":7,"rows":770`, // the chart data
		`worker <b id="worker">w-1</b>`,
		`<td>offsets lost before processing, recorded</td><td class="n warn">600</td>`,
		`<td>gaps recorded in the rejects table</td><td class="n">2</td>`,
		`<td>topic re-created or truncated</td><td class="n"><span class="bad">yes: stopped</span></td>`,
		`name="viewport"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing is fetched from elsewhere.
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(page); m != "" {
		t.Errorf("page loads %s from outside the binary", m)
	}
	for path, typ := range map[string]string{"/assets/status.js": "javascript", "/assets/status.css": "text/css"} {
		body, h := get(t, srv, path)
		if !strings.Contains(h.Get("Content-Type"), typ) || len(body) < 100 {
			t.Errorf("%s: %q, %d bytes", path, h.Get("Content-Type"), len(body))
		}
		if strings.Contains(body, "https://") || strings.Contains(body, "import ") {
			t.Errorf("%s loads something from outside", path)
		}
	}
	// The body alone, for the script.
	if body, _ := get(t, srv, "/status"); strings.Contains(body, "<html") || !strings.Contains(body, `id="partitions"`) {
		t.Errorf("/status is not the body alone")
	}
}

func TestCommitLog(t *testing.T) {
	l := CommitLog{Window: time.Minute}
	t0 := time.Now()
	for i := range 5 {
		l.Add(Commit{At: t0.Add(time.Duration(i) * 20 * time.Second), Batch: int64(i)})
	}
	got := l.Recent(t0.Add(100 * time.Second))
	if len(got) != 3 || got[0].Batch != 2 {
		t.Errorf("recent: %+v", got)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := formatInt(n); got != want {
			t.Errorf("formatInt(%d) = %q", n, got)
		}
	}
	for s, want := range map[float64]string{0.0123: "12 ms", 1.234: "1.23 s", 200: "3m20s"} {
		if got := formatSeconds(s); got != want {
			t.Errorf("formatSeconds(%v) = %q", s, got)
		}
	}
}
