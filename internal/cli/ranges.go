package cli

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// rangeAnnotation marks a numeric or duration flag with its valid range, as "lo,hi"; an
// empty bound is open. checkRanges enforces every annotated flag of a command before it
// starts, whether the value came from the command line, the environment or --config:
// one rule, one message shape, for every count and duration.
const rangeAnnotation = "ledgerstream/range"

// Unbounded is the open end of a range.
const Unbounded = ""

// FlagRange gives flag name of f the range [lo, hi]: ints and floats as numbers, durations
// as Go durations ("1ms", "24h"). Either end may be Unbounded.
func FlagRange(f *pflag.FlagSet, name, lo, hi string) {
	if f.Lookup(name) == nil {
		panic("ledgerstream: range for unknown flag --" + name)
	}
	if err := f.SetAnnotation(name, rangeAnnotation, []string{lo, hi}); err != nil {
		panic(err)
	}
}

// CheckRanges checks every flag of cmd that has a range, those given on the command line
// first (two names for one setting, such as demo's --trigger and the notebook's
// --checkpoint-interval-seconds, then name the one the user typed).
func CheckRanges(cmd *cobra.Command) error {
	var first error
	for _, changed := range []bool{true, false} {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			r, ok := f.Annotations[rangeAnnotation]
			if !ok || first != nil || f.Changed != changed {
				return
			}
			first = checkRange(f, r[0], r[1])
		})
	}
	return first
}

func checkRange(f *pflag.Flag, lo, hi string) error {
	value := f.Value.String()
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	show := func(s string) string { return s }
	if f.Value.Type() == "duration" {
		parse = func(s string) (float64, error) {
			d, err := time.ParseDuration(s)
			return float64(d), err
		}
		show = func(s string) string {
			if d, err := time.ParseDuration(s); err == nil {
				return d.String()
			}
			return s
		}
	}
	v, err := parse(value)
	if err != nil || math.IsNaN(v) {
		return fmt.Errorf("--%s %s: not a number", f.Name, value)
	}
	var want string
	switch {
	case lo != Unbounded && hi != Unbounded:
		want = fmt.Sprintf("from %s to %s", show(lo), show(hi))
	case lo != Unbounded:
		want = "at least " + show(lo)
	default:
		want = "at most " + show(hi)
	}
	if lo != Unbounded {
		if l, _ := parse(lo); v < l {
			return fmt.Errorf("--%s %s: out of range, want %s", f.Name, show(value), want)
		}
	}
	if hi != Unbounded {
		if h, _ := parse(hi); v > h {
			return fmt.Errorf("--%s %s: out of range, want %s", f.Name, show(value), want)
		}
	}
	return nil
}

// MaxPartitions bounds a topic's partition count where ledgerstream creates one.
const MaxPartitions = 10_000

// Ranges shared by several commands.
const (
	minTrigger = "10ms" // a batch interval below this is a busy loop on the catalog
	maxTrigger = "24h"
)

// LimitDurations gives batch interval flags their range.
func LimitDurations(f *pflag.FlagSet, names ...string) {
	for _, n := range names {
		FlagRange(f, n, minTrigger, maxTrigger)
	}
}

// limitRunFlags gives run's flags their ranges.
func limitRunFlags(f *pflag.FlagSet) {
	LimitDurations(f, "trigger")
	for name, r := range map[string][2]string{
		"duration":                {"0s", Unbounded},
		"max-offsets-per-trigger": {"0", Unbounded},
		"max-batch-records":       {"1", "100000000"},
		"session-timeout":         {"1s", "30m"},
		"max-message-bytes":       {"1", strconv.Itoa(1 << 30)},
		"memory-limit-mib":        {"-1", Unbounded},
		"stage-ahead-rows":        {"0", Unbounded},
		"maintain-every":          {"0s", Unbounded},
		"maintain-every-commits":  {"0", Unbounded},
	} {
		if f.Lookup(name) != nil {
			FlagRange(f, name, r[0], r[1])
		}
	}
}

// CheckReason refuses a --reason that is not a reason code, listing the codes; "" (no
// filter) passes.
func CheckReason(reason string) error {
	if reason == "" || slices.Contains(ledger.Reasons, ledger.Reason(reason)) {
		return nil
	}
	codes := make([]string, len(ledger.Reasons))
	for i, r := range ledger.Reasons {
		codes[i] = string(r)
	}
	return fmt.Errorf("--reason %q: no such reason code; the codes are %s", reason, strings.Join(codes, ", "))
}
