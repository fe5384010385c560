package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

func newContractCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contract",
		Short: "Check a ledger contract (your own message fields, checks, hash and partitioning)",
	}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a contract and print the table schema and partition spec it implies",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cli.LoadContract(args[0])
			if err != nil {
				return err
			}
			return iceberg.WriteContract(cmd.OutOrStdout(), args[0], c)
		},
	}
	def := &cobra.Command{
		Use:   "default",
		Short: "Print the default contract (the notebook's transactions), a starting point for your own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), ledger.DefaultContractYAML())
			return err
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the contract the ledger (--table) is written with, and its current schema",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ident, cat, err := g.OpenLedger(cmd.Context())
			if err != nil {
				return err
			}
			defer cat.Close()
			tbl, err := cat.LoadTable(cmd.Context(), ident)
			if err != nil {
				return err
			}
			return iceberg.WriteTableContract(cmd.OutOrStdout(), g.Table, tbl)
		},
	}
	cmd.AddCommand(check, def, show)
	return cmd
}
