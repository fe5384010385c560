//go:build faults

// The chaos and end-to-end tests build the binary with -tags faults (e2e_helpers_test.go):
// only that build has the hidden flags that make a worker die at a fault point or stage its
// batches in small parts. The product binary has neither (nofaults.go).

package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// faultsBuild says whether this binary has the fault-injection flags.
const faultsBuild = true

// faultFlags are run's fault-injection settings.
type faultFlags struct {
	fault          string
	stageAheadRows int
}

func addFaultFlags(f *pflag.FlagSet, t *faultFlags) {
	f.StringVar(&t.fault, "fault", "", "testing only: die like kill -9 at a fault point, as POINT or POINT@N (the Nth time)")
	_ = f.MarkHidden("fault")
	f.IntVar(&t.stageAheadRows, "stage-ahead-rows", 0, "testing only: accepted rows a batch gathers before writing them while it reads on (0 = 25,000)")
	_ = f.MarkHidden("stage-ahead-rows")
}

// apply sets the engine's fault hook and staging size from the flags.
func (t faultFlags) apply(cfg *engine.Config) error {
	fault, err := parseFault(t.fault)
	if err != nil {
		return err
	}
	cfg.Fault, cfg.StageAheadRows = fault, t.stageAheadRows
	return nil
}

// parseFault turns --fault POINT[@N] into a hook that kills the process, as kill -9 would,
// the Nth time the engine reaches POINT. Empty means no faults.
func parseFault(spec string) (func(string), error) {
	if spec == "" {
		return nil, nil
	}
	point, nth := spec, 1
	if i := strings.IndexByte(spec, '@'); i >= 0 {
		n, err := strconv.Atoi(spec[i+1:])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--fault %q: want POINT or POINT@N with N >= 1", spec)
		}
		point, nth = spec[:i], n
	}
	switch point {
	case engine.FaultAfterFetch, engine.FaultAfterStage, engine.FaultAfterCommit, engine.FaultInRebalance, engine.FaultAfterAdvised:
	default:
		return nil, fmt.Errorf("--fault: unknown fault point %q", point)
	}
	var seen atomic.Int64 // points are reached from the loop and from the rebalance callback
	return func(at string) {
		if at != point || seen.Add(1) < int64(nth) {
			return
		}
		slog.Warn("fault point reached: killing the process", "point", at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it
	}, nil
}
