package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/produce"
)

// ProduceFlags are the producer's settings, shared by produce and demo.
type ProduceFlags struct {
	Count       int
	Rate        float64
	Seed        int64
	Duplicates  float64
	Malformed   float64
	FirstID     int  // -1: after the highest transaction_id already on the topic
	CreateTopic bool // create a missing topic instead of refusing
}

// LimitProduceFlags gives the producer's flags their ranges; count is the name of the
// transaction count flag (demo calls it --transactions).
func LimitProduceFlags(f *pflag.FlagSet, count string) {
	FlagRange(f, count, "1", strconv.Itoa(ledger.MaxTransactionNumber+1))
	if f.Lookup("rate") != nil {
		FlagRange(f, "rate", "0", Unbounded)
		FlagRange(f, "duplicates", "0", "1")
		FlagRange(f, "malformed", "0", "1")
	}
	if f.Lookup("first-id") != nil {
		FlagRange(f, "first-id", "-1", strconv.Itoa(ledger.MaxTransactionNumber))
	}
}

// Options are the producer's options the flags describe (the messages of --contract, when
// given), with progress lines on progress: a live line on a terminal, a plain line every
// ten seconds elsewhere.
func (p ProduceFlags) Options(g *Globals, progress *Progress) (produce.Options, error) {
	contract, err := g.ContractFlag()
	if err != nil {
		return produce.Options{}, err
	}
	return produce.Options{
		Contract: contract, ContractSource: g.Contract,
		Count: p.Count, Rate: p.Rate, Seed: p.Seed, Duplicates: p.Duplicates, Malformed: p.Malformed,
		FirstID: p.FirstID, CreateTopic: p.CreateTopic,
		ProgressEvery: progress.Period(),
		Progress: func(s kafka.ProduceStats) {
			rate := float64(s.Acked) / max(s.Elapsed.Seconds(), 1e-9)
			progress.Show(fmt.Sprintf("  sent %d/%d, acknowledged %d (%.0f/s), ETA %s", s.Sent, p.Count, s.Acked, rate,
				ETA(int64(p.Count)-s.Acked, rate)), s.Acked+s.Failed >= int64(p.Count))
		},
	}, nil
}
