package pipeline

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/metrics"
	"github.com/ledgerstream/ledgerstream/internal/status"
)

// statusState is what the status page shows beside the metrics: the worker, its recent
// commits and its dependencies. The observer owns it.
type statusState struct {
	workerID, pipeline, topic, table string
	started                          time.Time
	visible                          *metrics.Visible
	commits                          status.CommitLog

	// Read and written by the loop's goroutine only (step): the totals at the last commit.
	accepted, rejected int64
}

// handler serves the status page at / and the metrics endpoint's paths beside it, from
// one registry: the page's figures are those of /metrics.
func (o *observer) handler(reg *metrics.Registry) http.Handler {
	mux := http.NewServeMux()
	m := metrics.Handler(reg, o.ready)
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		mux.Handle(p, m)
	}
	mux.Handle("/", status.Handler(reg, o.statusInfo))
	return mux
}

// statusInfo is the page's Info now.
func (o *observer) statusInfo() status.Info {
	s := &o.status
	info := status.Info{WorkerID: s.workerID, Pipeline: s.pipeline, Topic: s.topic, Table: s.table,
		Started: s.started, Ready: o.ready(), Commits: s.commits.Recent(time.Now())}
	if o.source != nil {
		for _, p := range o.source.Assigned() {
			info.Owned = append(info.Owned, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
		}
		slices.Sort(info.Owned)
	}
	if o.deps != nil {
		info.Dependencies = o.deps.States()
	}
	return info
}

// recordCommit adds the batch just committed to the commit log; took is the batch's
// duration. Called from the loop's goroutine.
func (o *observer) recordCommit(now time.Time, took time.Duration) {
	s := &o.status
	var batch int64
	var commit float64
	if o.ledger != nil {
		if st := o.ledger.last.Load(); st != nil {
			batch = st.Batch
		}
		commit = time.Duration(o.ledger.lastTook.Load()).Seconds()
	}
	accepted, rejected := o.stats.Accepted.Load(), o.stats.Rejected.Load()
	s.commits.Add(status.Commit{At: now, Batch: batch, Rows: accepted - s.accepted, Rejects: rejected - s.rejected,
		BatchSeconds: took.Seconds(), CommitSeconds: commit})
	s.accepted, s.rejected = accepted, rejected
}
