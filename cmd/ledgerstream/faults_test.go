package main

import (
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/cli"
)

// The product binary has no fault injection: only a build with -tags faults (the one the
// end-to-end tests drive) knows run's --fault and --stage-ahead-rows.
func TestFaultFlagsOnlyInFaultsBuild(t *testing.T) {
	run, _, err := newRoot(&cli.Globals{}).Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fault", "stage-ahead-rows"} {
		if got := run.Flags().Lookup(name) != nil; got != faultsBuild {
			t.Errorf("run --%s defined = %v in a build with faults = %v", name, got, faultsBuild)
		}
	}
}
