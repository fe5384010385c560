package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/metrics"
)

// opsFlags are run's operational settings: metrics, progress and automatic maintenance.
type opsFlags struct {
	metricsListen  string
	progress       bool
	maintainEvery  time.Duration
	maintainEveryN int64
	maintain       maintainFlags
}

func addOpsFlags(f *pflag.FlagSet, o *opsFlags) {
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464; empty = off)")
	f.BoolVar(&o.progress, "progress", true, "with --available-now, show a progress line on stderr (rewritten in place on a terminal)")
	f.DurationVar(&o.maintainEvery, "maintain-every", 0, "run maintenance between batches this often (0 = off; see `ledgerstream maintain`)")
	f.Int64Var(&o.maintainEveryN, "maintain-every-commits", 0, "run maintenance between batches every N committed batches (0 = off)")
	addMaintainFlags(f, &o.maintain, "maintain-")
}

// runOps runs the engine's loop with the metrics endpoint, the progress line and automatic
// maintenance around it, and stops them when the loop ends.
func runOps(ctx context.Context, r runFlags, topic string, cat *iceberg.Catalog, ident table.Identifier, eng *engine.Engine, src *kafka.Source, obs *observer) error {
	obs.stats = eng.Stats()
	obs.assigned, obs.client, obs.topic = src.Assigned, src.Client(), topic

	var auto *autoMaintainer
	if r.ops.maintainEvery > 0 || r.ops.maintainEveryN > 0 {
		opts, err := r.ops.maintain.options(false)
		if err != nil {
			return err
		}
		auto = &autoMaintainer{cat: cat, ident: ident, opts: opts, every: r.ops.maintainEvery, everyN: r.ops.maintainEveryN, obs: obs,
			refresh: eng.Refresh}
	}
	progress := r.availableNow && r.ops.progress

	// The helpers live as long as the loop; they end with it, and the group waits for them.
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(bg)
	if r.ops.metricsListen != "" {
		reg := metrics.NewRegistry()
		reg.Register(metrics.Engine(obs.stats))
		reg.Register(obs)
		srv, err := metrics.Listen(r.ops.metricsListen, metrics.Handler(reg, obs.ready))
		if err != nil {
			return err
		}
		slog.Info("metrics endpoint listening", "address", "http://"+srv.Addr()+"/metrics")
		g.Go(func() error {
			<-gctx.Done()
			return srv.Close()
		})
	}
	if r.ops.metricsListen != "" || progress {
		period := 5 * time.Second
		if progress {
			period = time.Second
		}
		g.Go(func() error { return obs.pollLoop(gctx, period) })
	}
	if progress {
		g.Go(func() error { return runProgress(gctx, os.Stderr, obs.stats, obs) })
	}
	err := runLoop(ctx, eng, src, obs, auto)
	cancel()
	return errors.Join(err, g.Wait())
}
