package iceberg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// TableContract returns the contract a ledger table is written with: the one kept in its
// PropertyContract, or the default contract for a table that has none (made before
// contracts existed, or by another writer with the notebook's schema).
func TableContract(tbl *table.Table) (*ledger.Contract, error) {
	text, ok := tbl.Properties()[PropertyContract]
	if !ok {
		return ledger.DefaultContract(), nil
	}
	c, err := ledger.ParseContract([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("iceberg: the contract kept in the table's property %s does not parse: %w", PropertyContract, err)
	}
	return c, nil
}

// PropertyEarlierContract prefixes the table properties that keep the contracts a ledger was
// written with before its current one: <prefix>1 is the first.
const PropertyEarlierContract = "ledgerstream.contract.earlier."

// EarlierContracts returns the contracts the table was written with before its current one,
// oldest first.
func EarlierContracts(tbl *table.Table) ([]*ledger.Contract, error) {
	var out []*ledger.Contract
	for i, text := range earlierContracts(tbl) {
		c, err := ledger.ParseContract([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("iceberg: earlier contract %d of the table does not parse: %w", i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func earlierContracts(tbl *table.Table) []string {
	var out []string
	for i := 1; ; i++ {
		text, ok := tbl.Properties()[fmt.Sprintf("%s%d", PropertyEarlierContract, i)]
		if !ok {
			return out
		}
		out = append(out, text)
	}
}

// EnsureLedger returns the ledger table ident and the contract to write it with. A missing
// table is created with given's schema, partition spec and properties (given nil: the
// default contract). An existing table keeps its contract when given is nil or says the
// same; otherwise given must be an evolution the table can take without rewriting data
// (see Evolve): its new columns are added and the new contract is kept, in one commit. A
// change that is not is refused with an error that says why and what to do.
func (c *Catalog) EnsureLedger(ctx context.Context, ident table.Identifier, given *ledger.Contract) (*table.Table, *ledger.Contract, error) {
	name := identString(ident)
	tbl, err := c.loadTable(ctx, ident)
	if given == nil {
		if err == nil {
			have, err := TableContract(tbl)
			if err != nil {
				return nil, nil, fmt.Errorf("iceberg: ledger %s: %w", name, err)
			}
			given = have
		} else {
			given = ledger.DefaultContract()
		}
	}
	if errors.Is(err, catalog.ErrNoSuchTable) {
		if err := c.EnsureNamespace(ctx, catalog.NamespaceFromIdent(ident)); err != nil {
			return nil, nil, err
		}
		schema := ContractSchema(given)
		spec, serr := ContractPartitionSpec(given, schema)
		if serr != nil {
			return nil, nil, serr
		}
		props := TableProperties()
		if !given.IsDefault() {
			props[PropertyContract] = string(given.YAML())
			// The key is unique per row, like the notebook's transaction_id: a Parquet
			// dictionary of it is built, found useless and abandoned in every file.
			props["write.parquet.dict-encoding-enabled.column."+given.Key] = "false"
		}
		tbl, err = c.cat.CreateTable(ctx, ident, schema, catalog.WithPartitionSpec(&spec), catalog.WithProperties(props))
		if errors.Is(err, catalog.ErrTableAlreadyExists) {
			tbl, err = c.loadCreatedElsewhere(ctx, ident)
		} else if err == nil {
			return tbl, given, nil
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("iceberg: ensure ledger %s: %w", name, err)
	}
	have, err := TableContract(tbl)
	if err != nil {
		return nil, nil, fmt.Errorf("iceberg: ledger %s: %w", name, err)
	}
	if string(have.YAML()) == string(given.YAML()) {
		if err := CheckSchema(tbl.Schema(), ContractSchema(have)); have.IsDefault() && err != nil {
			return nil, nil, fmt.Errorf("iceberg: table %s exists with an incompatible schema: %w", name, err)
		}
		return tbl, have, nil
	}
	ev, err := Evolve(have, given)
	if err != nil {
		return nil, nil, fmt.Errorf("iceberg: ledger %s: %w", name, err)
	}
	tx := tbl.NewTransaction()
	if len(ev.Added) > 0 || len(ev.Optional) > 0 || ev.Extras {
		u := tx.UpdateSchema(true, false)
		for _, name := range ev.Optional {
			if f, ok := tbl.Schema().FindFieldByName(name); ok && f.Required {
				u.UpdateColumn([]string{name}, table.ColumnUpdate{Required: ice.Optional[bool]{Val: false, Valid: true}})
			}
		}
		for _, f := range ev.Added {
			u.AddColumn([]string{f.Name}, IcebergType(f.Type), "", false, nil)
		}
		if ev.Extras {
			if _, ok := tbl.Schema().FindFieldByName(ColExtras); !ok {
				u.AddColumn([]string{ColExtras}, ice.PrimitiveTypes.String, "", false, nil)
			}
		}
		if err := u.Commit(); err != nil {
			return nil, nil, fmt.Errorf("iceberg: ledger %s: add the contract's new columns: %w", name, err)
		}
	}
	props := ice.Properties{PropertyContract: string(given.YAML())}
	// The contract in force until now joins the earlier ones: verify judges a record by the
	// contract it was processed with.
	props[fmt.Sprintf("%s%d", PropertyEarlierContract, len(earlierContracts(tbl))+1)] = string(have.YAML())
	if err := tx.SetProperties(props); err != nil {
		return nil, nil, fmt.Errorf("iceberg: ledger %s: keep the new contract: %w", name, err)
	}
	tbl, err = tx.Commit(ctx)
	if err != nil {
		// A worker of the same pipeline may have evolved it first: that is fine when the
		// table now has this very contract.
		if again, _, err2 := c.reload(ctx, ident, given); err2 == nil {
			return again, given, nil
		}
		return nil, nil, fmt.Errorf("iceberg: ledger %s: evolve the contract: %w", name, err)
	}
	slog.Info("ledger contract evolved", "table", name, "changes", strings.Join(ev.Changes, "; "))
	return tbl, given, nil
}

// reload loads the table and checks that it now has contract want.
func (c *Catalog) reload(ctx context.Context, ident table.Identifier, want *ledger.Contract) (*table.Table, *ledger.Contract, error) {
	tbl, err := c.loadTable(ctx, ident)
	if err != nil {
		return nil, nil, err
	}
	have, err := TableContract(tbl)
	if err != nil || string(have.YAML()) != string(want.YAML()) {
		return nil, nil, errors.New("another contract")
	}
	return tbl, have, nil
}

// Evolution is an accepted change of a table's contract.
type Evolution struct {
	// Added are the new fields: new optional columns, with new field ids; rows written
	// before read them as nulls.
	Added []ledger.Field
	// Optional are the fields that became optional: their columns become optional too.
	Optional []string
	// Extras says that unknown_fields became keep: the extras column is added.
	Extras bool
	// Changes says, one change an entry, what the new contract changes.
	Changes []string
}

// Evolve says whether a table written with contract old can go on with contract new
// without rewriting its data, and how. Accepted: new optional fields (new columns), changed
// checks (pattern, enum, min/max, lengths, required: they apply to new records only; a
// field that becomes optional makes its column optional),
// another unknown_fields mode, another report section. Refused, with why and what to do:
// another key, other hash columns, a field removed, or a field's type, path or hash rule
// changed (its column would mean something else), a new required field, another partition
// spec.
func Evolve(old, new *ledger.Contract) (Evolution, error) {
	var ev Evolution
	var refused []string
	refuse := func(format string, args ...any) { refused = append(refused, fmt.Sprintf(format, args...)) }
	if old.Key != new.Key {
		refuse("the key changes from %q to %q: the key decides which messages are duplicates, and the table's rows are deduplicated by the old one", old.Key, new.Key)
	}
	if !slices.Equal(old.Hash, new.Hash) {
		refuse("the hash columns change from [%s] to [%s]: every row's hash would change, so old rows would no longer match their messages (verify) and duplicates across the change would not be recognised",
			strings.Join(old.Hash, ", "), strings.Join(new.Hash, ", "))
	}
	for _, of := range old.Fields {
		nf := new.Field(of.Name)
		if nf == nil {
			refuse("field %q is removed: its column holds the table's past rows; keep the field (optional, if new messages lack it)", of.Name)
			continue
		}
		switch {
		case of.Type != nf.Type:
			refuse("field %q changes type from %s to %s: the table's files hold %s; add a new field with the new type instead", of.Name, of.Type, nf.Type, of.Type)
		case of.PathString() != nf.PathString():
			refuse("field %q changes its path from %s to %s: the column would mean something else; add a new field for the new path instead", of.Name, of.PathString(), nf.PathString())
		case of.HashAsSent != nf.HashAsSent:
			refuse("field %q changes hash_as: every row's hash would change", of.Name)
		}
		if of.Required != nf.Required {
			if nf.Required {
				ev.Changes = append(ev.Changes, fmt.Sprintf("field %q becomes required (new records only)", of.Name))
			} else if slices.Contains(new.Hash, of.Name) || new.Key == of.Name {
				refuse("field %q of the key or hash becomes optional: the key and the hash columns must be required", of.Name)
			} else {
				ev.Optional = append(ev.Optional, of.Name)
				ev.Changes = append(ev.Changes, fmt.Sprintf("field %q becomes optional (its column too)", of.Name))
			}
		}
		if c := checkChanges(&of, nf); c != "" {
			ev.Changes = append(ev.Changes, fmt.Sprintf("field %q: %s (new records only)", of.Name, c))
		}
	}
	for _, nf := range new.Fields {
		if old.Field(nf.Name) != nil {
			continue
		}
		if nf.Required {
			refuse("new field %q is required: the table's past rows have no value for it; add it as optional (checks still apply when it is present)", nf.Name)
			continue
		}
		ev.Added = append(ev.Added, nf)
		ev.Changes = append(ev.Changes, fmt.Sprintf("new optional field %q (%s, from %s): a new column; past rows read it as null", nf.Name, nf.Type, nf.PathString()))
	}
	if !slices.Equal(partitionStrings(old), partitionStrings(new)) {
		refuse("the partition spec changes from [%s] to [%s]: partition evolution is not supported; create a new table (--table) for the new layout",
			strings.Join(partitionStrings(old), ", "), strings.Join(partitionStrings(new), ", "))
	}
	if old.UnknownFields != new.UnknownFields {
		ev.Extras = new.UnknownFields == ledger.UnknownKeep
		ev.Changes = append(ev.Changes, fmt.Sprintf("unknown_fields %s instead of %s (new records only)", new.UnknownFields, old.UnknownFields))
	}
	if fmt.Sprint(old.Report) != fmt.Sprint(new.Report) {
		ev.Changes = append(ev.Changes, "another report section")
	}
	if len(refused) > 0 {
		return Evolution{}, fmt.Errorf("the new contract cannot apply to this table without rewriting its data:\n  %s\nKeep the table's contract (`ledgerstream contract show` prints it) with only additive changes, or write to a new table with --table",
			strings.Join(refused, "\n  "))
	}
	return ev, nil
}

func partitionStrings(c *ledger.Contract) []string {
	var s []string
	for _, p := range c.Partition {
		s = append(s, p.String())
	}
	return s
}

// checkChanges describes how a field's checks change, or "".
func checkChanges(a, b *ledger.Field) string {
	var c []string
	pat := func(f *ledger.Field) string {
		if f.Pattern == nil {
			return ""
		}
		return f.Pattern.String()
	}
	if pat(a) != pat(b) {
		c = append(c, fmt.Sprintf("pattern %q instead of %q", pat(b), pat(a)))
	}
	if !slices.Equal(a.Enum, b.Enum) {
		c = append(c, fmt.Sprintf("enum %q instead of %q", b.Enum, a.Enum))
	}
	dec := func(d *ledger.Decimal) string {
		if d == nil {
			return "none"
		}
		return d.String()
	}
	for _, x := range []struct {
		name string
		a, b *ledger.Decimal
	}{{"min", a.Min, b.Min}, {"max", a.Max, b.Max}, {"min_exclusive", a.MinExclusive, b.MinExclusive}, {"max_exclusive", a.MaxExclusive, b.MaxExclusive}} {
		if dec(x.a) != dec(x.b) {
			c = append(c, fmt.Sprintf("%s %s instead of %s", x.name, dec(x.b), dec(x.a)))
		}
	}
	if a.MinLength != b.MinLength || a.MaxLength != b.MaxLength {
		c = append(c, fmt.Sprintf("length %d to %d instead of %d to %d", b.MinLength, b.MaxLength, a.MinLength, a.MaxLength))
	}
	return strings.Join(c, ", ")
}

// loadCreatedElsewhere loads a table whose creation failed because another worker created
// it at the same moment. Workers of one pipeline start together and race to create the
// ledger; under PostgreSQL's serializable transactions the loser can be told the table
// exists before the winner's row reads back: that is a temporary error, which the caller's
// retry policy waits out (internal/pipeline runs EnsureLedger under the worker's policy).
func (c *Catalog) loadCreatedElsewhere(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	tbl, err := c.loadTable(ctx, ident)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, retry.MarkTemporary(fmt.Errorf("another worker created %s at the same moment, and it does not read back yet: %w", identString(ident), err))
	}
	return tbl, err
}
