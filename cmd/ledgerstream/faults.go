//go:build faults

// The chaos and end-to-end tests build the binary with -tags faults (e2e_helpers_test.go):
// only that build has the hidden flags that make a worker die at a fault point
// (internal/faults decorates what the engine talks to) or stage its batches in small
// parts. The product binary has neither (nofaults.go).

package main

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/faults"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
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

// apply sets the engine's staging size from the flags and returns the decorator that
// kills the process, as kill -9 would, the Nth time the worker reaches the fault point.
func (t faultFlags) apply(cfg *engine.Config) ([]pipeline.Wrapper, error) {
	cfg.StageAheadRows = t.stageAheadRows
	if t.fault == "" {
		return nil, nil
	}
	in, err := faults.Parse(t.fault, func(at string) {
		slog.Warn("fault point reached: killing the process", "point", at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it
	})
	if err != nil {
		return nil, fmt.Errorf("--fault: %w", err)
	}
	return []pipeline.Wrapper{in}, nil
}
