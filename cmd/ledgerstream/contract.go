package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

func newContractCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contract",
		Short: "Check a ledger contract (your own message fields, checks, hash and partitioning)",
	}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a contract and print the table schema and partition spec it implies",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadContract(args[0])
			if err != nil {
				return err
			}
			return printContract(cmd.OutOrStdout(), args[0], c)
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
			ident, cat, err := openLedger(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer cat.Close()
			tbl, err := cat.LoadTable(cmd.Context(), ident)
			if err != nil {
				return err
			}
			c, err := iceberg.TableContract(tbl)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			where := "kept in the table's property " + iceberg.PropertyContract
			if _, ok := tbl.Properties()[iceberg.PropertyContract]; !ok {
				where = "the default: the table has no " + iceberg.PropertyContract + " property"
			}
			fmt.Fprintf(w, "# The contract of %s (%s):\n%s\n", g.table, where, c.YAML())
			fmt.Fprintf(w, "# Its current schema (field ids are stable across evolutions):\n")
			for _, f := range tbl.Schema().Fields() {
				req := "optional"
				if f.Required {
					req = "required"
				}
				fmt.Fprintf(w, "#  %3d  %-20s %-16s %s\n", f.ID, f.Name, f.Type, req)
			}
			spec := tbl.Spec()
			for _, f := range spec.Fields() {
				src, _ := tbl.Schema().FindColumnName(f.SourceID())
				fmt.Fprintf(w, "# partition %d %s = %s(%s)\n", f.FieldID, f.Name, f.Transform, src)
			}
			return nil
		},
	}
	cmd.AddCommand(check, def, show)
	return cmd
}

// loadContract reads and validates a contract file.
func loadContract(path string) (*ledger.Contract, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	c, err := ledger.ParseContract(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// printContract prints what a contract implies: its key and hash, the table's columns with
// their field ids, types and sources, and the partition spec.
func printContract(w io.Writer, source string, c *ledger.Contract) error {
	schema := iceberg.ContractSchema(c)
	spec, err := iceberg.ContractPartitionSpec(c, schema)
	if err != nil {
		return err
	}
	var b strings.Builder
	what := "a custom contract"
	if c.IsDefault() {
		what = "the default contract (the notebook's transactions)"
	}
	fmt.Fprintf(&b, "%s: valid, %s\n", source, what)
	fmt.Fprintf(&b, "key: %s\nrow hash: sha256(%s)\nunknown fields: %s\n", c.Key, strings.Join(c.Hash, " | "), c.UnknownFields)
	fmt.Fprintf(&b, "report: by %s, amount %s, time %s\n\ntable schema:\n", strings.Join(c.Report.GroupBy, ", "), c.Report.Amount, c.Report.Time)
	fmt.Fprintf(&b, "  %3s  %-20s %-16s %-9s %s\n", "id", "column", "type", "", "from")
	for _, f := range schema.Fields() {
		req := "optional"
		if f.Required {
			req = "required"
		}
		from := ""
		switch fd := c.Field(f.Name); {
		case fd != nil:
			from = "message " + fd.PathString() + checks(fd)
		case f.Name == iceberg.ColTransactionHash:
			from = "row hash"
		case f.Name == iceberg.ColExtras:
			from = "unknown keys, as a JSON object"
		case f.Name == iceberg.ColProcessingTime:
			from = "time of the batch"
		default:
			from = "Kafka record position"
		}
		fmt.Fprintf(&b, "  %3d  %-20s %-16s %-9s %s\n", f.ID, f.Name, f.Type, req, from)
	}
	if spec.IsUnpartitioned() {
		b.WriteString("\npartition spec: unpartitioned\n")
	} else {
		b.WriteString("\npartition spec:\n")
		for _, f := range spec.Fields() {
			src, _ := schema.FindColumnName(f.SourceID())
			fmt.Fprintf(&b, "  %4d  %-24s %s(%s)\n", f.FieldID, f.Name, f.Transform, src)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// checks describes a field's checks for printContract.
func checks(f *ledger.Field) string {
	var c []string
	if f.Pattern != nil {
		c = append(c, "pattern "+f.Pattern.String())
	}
	if len(f.Enum) > 0 {
		c = append(c, "one of "+strings.Join(f.Enum, ", "))
	}
	for _, b := range []struct {
		op string
		d  *ledger.Decimal
	}{{">=", f.Min}, {"<=", f.Max}, {">", f.MinExclusive}, {"<", f.MaxExclusive}} {
		if b.d != nil {
			c = append(c, b.op+" "+b.d.String())
		}
	}
	if f.MinLength > 0 || f.MaxLength > 0 {
		c = append(c, fmt.Sprintf("%d to %d bytes", f.MinLength, f.MaxLength))
	}
	if len(c) == 0 {
		return ""
	}
	return " (" + strings.Join(c, "; ") + ")"
}
