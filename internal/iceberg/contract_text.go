package iceberg

import (
	"fmt"
	"io"
	"strings"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// WriteTableContract prints the contract the ledger name (tbl) is written with, where it is
// kept, and the table's current schema and partition spec (`ledgerstream contract show`).
func WriteTableContract(w io.Writer, name string, tbl *table.Table) error {
	c, err := TableContract(tbl)
	if err != nil {
		return err
	}
	where := "kept in the table's property " + PropertyContract
	if _, ok := tbl.Properties()[PropertyContract]; !ok {
		where = "the default: the table has no " + PropertyContract + " property"
	}
	fmt.Fprintf(w, "# The contract of %s (%s):\n%s\n", name, where, c.YAML())
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
}

// WriteContract prints what a contract (read from source) implies: its key and hash, the
// table's columns with their field ids, types and sources, and the partition spec
// (`ledgerstream contract check`).
func WriteContract(w io.Writer, source string, c *ledger.Contract) error {
	schema := ContractSchema(c)
	spec, err := ContractPartitionSpec(c, schema)
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
		case f.Name == ColTransactionHash:
			from = "row hash"
		case f.Name == ColExtras:
			from = "unknown keys, as a JSON object"
		case f.Name == ColProcessingTime:
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

// checks describes a field's checks for WriteContract.
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
