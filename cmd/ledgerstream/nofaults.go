//go:build !faults

package main

import (
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/pipeline"
)

// faultsBuild says whether this binary has the fault-injection flags (faults.go): the
// product binary does not.
const faultsBuild = false

type faultFlags struct{}

func addFaultFlags(*pflag.FlagSet, *faultFlags) {}

func (faultFlags) apply(*engine.Config) ([]pipeline.Wrapper, error) { return nil, nil }
