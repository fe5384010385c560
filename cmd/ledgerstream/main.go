// Command ledgerstream streams financial transactions from Kafka into an Apache Iceberg
// ledger table exactly once. Run `ledgerstream demo` for the whole pipeline with nothing
// installed; `ledgerstream --help` lists the commands.
//
// This package defines the commands, their help and what they print; the flags several
// commands share, the configuration layering and the range rule are internal/cli.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
)

func main() {
	ctx, stop := cli.SignalContext()
	g := &cli.Globals{}
	cmd, err := newRoot(g).ExecuteContextC(ctx)
	// An authentication hint when SASL is on and the error looks like a dropped one.
	err = kafka.ExplainError(err, g.KafkaConfig())
	stop()
	if err == nil {
		return
	}
	if cli.WantsJSON(cmd) {
		cli.WriteJSONError(os.Stdout, err)
	}
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		if ee.Msg != "" {
			fmt.Fprintln(os.Stderr, "ledgerstream:", ee.Msg)
		}
		os.Exit(ee.Code)
	}
	fmt.Fprintln(os.Stderr, "ledgerstream:", err)
	os.Exit(1)
}

// newRoot is the command tree, its shared flags in g.
func newRoot(g *cli.Globals) *cobra.Command {
	root := &cobra.Command{
		Use:               "ledgerstream",
		Short:             "Stream financial transactions from Kafka into an Iceberg ledger, exactly once",
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           cli.VersionText(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return g.Setup(cmd) },
	}
	root.SetVersionTemplate("{{.Version}}")
	g.AddFlags(root.PersistentFlags())
	root.AddCommand(newBrokerCmd(g), newProduceCmd(g), newRunCmd(g), newReportCmd(g), newVerifyCmd(g), newHistoryCmd(g), newDemoCmd(g), newRejectsCmd(g), newBenchCmd(g),
		newMaintainCmd(g), newContractCmd(g))
	cli.MarkReadOnly(root, "report", "verify", "rejects", "history")
	return root
}
