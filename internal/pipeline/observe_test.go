package pipeline

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// While a dependency is down, /readyz says which, since when, doing what and why, in
// one line, and ledgerstream_dependency_up shows it; both recover with it.
func TestReadinessAndMetricsFollowTheDependencies(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	obs := newObserver(nil, []string{"demo", "ledger"}, time.Second, log)
	obs.deps = retry.NewTracker(log, nil)
	obs.step(time.Now(), false) // the loop is stepping: ready but for the dependencies
	reg := metrics.NewRegistry()
	reg.Register(obs)
	srv := httptest.NewServer(metrics.Handler(reg, obs.ready))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d %q with every dependency up", code, body)
	}
	obs.deps.Failed(retry.Catalog, "commit batch 7 to demo.ledger", errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"))
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || strings.Count(strings.TrimSpace(body), "\n") != 0 ||
		!strings.Contains(body, "catalog down for") || !strings.Contains(body, "commit batch 7") || !strings.Contains(body, "connection refused") {
		t.Fatalf("/readyz %d %q, want a 503 naming the catalog, the operation and the error on one line", code, body)
	}
	_, m := get("/metrics")
	for _, want := range []string{`ledgerstream_dependency_up{dependency="catalog"} 0`, `ledgerstream_dependency_up{dependency="kafka"} 1`,
		`ledgerstream_dependency_up{dependency="storage"} 1`, "ledgerstream_last_commit_age_seconds"} {
		if !strings.Contains(m, want) {
			t.Fatalf("metrics lack %q:\n%s", want, m)
		}
	}
	// The worker gives its partitions up: /readyz says it left the group and why, first.
	obs.group.set(&retry.HandOffError{Dependency: retry.Catalog, Op: "commit batch 7 to demo.ledger",
		For: 35 * time.Second, After: 30 * time.Second, Err: errors.New("connection refused")}, time.Now())
	code, body = get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready: left the group: catalog unreachable for 35s") {
		t.Fatalf("/readyz %d %q while out of the group", code, body)
	}
	if _, m := get("/metrics"); !strings.Contains(m, "ledgerstream_group_member 0") || !strings.Contains(m, "ledgerstream_handoffs_total 1") {
		t.Fatalf("metrics do not show the worker out of its group:\n%s", m)
	}
	obs.group.set(nil, time.Now())
	obs.deps.Succeeded(retry.Catalog)
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d %q after the catalog came back", code, body)
	}
	if _, m := get("/metrics"); !strings.Contains(m, `ledgerstream_dependency_up{dependency="catalog"} 1`) ||
		!strings.Contains(m, "ledgerstream_group_member 1") || !strings.Contains(m, "ledgerstream_handoffs_total 1") {
		t.Fatalf("catalog still down, or the worker out of its group, in the metrics:\n%s", m)
	}
}
