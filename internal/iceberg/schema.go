package iceberg

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// Ledger column names, in field-id order (ids 1..12, docs/design.md §1).
const (
	ColTransactionID   = "transaction_id"
	ColAccountFrom     = "account_from"
	ColAccountTo       = "account_to"
	ColAmount          = "amount"
	ColCurrency        = "currency"
	ColTransactionType = "transaction_type"
	ColTransactionHash = "transaction_hash"
	ColEventTimestamp  = "event_timestamp"
	ColProcessingTime  = "processing_time"
	ColSourceTopic     = "source_topic"
	ColSourcePartition = "source_partition"
	ColSourceOffset    = "source_offset"
)

// LedgerSchema returns the Iceberg schema of the ledger table (docs/design.md §1).
func LedgerSchema() *ice.Schema {
	str := ice.PrimitiveTypes.String
	return ice.NewSchema(0,
		ice.NestedField{ID: 1, Name: ColTransactionID, Type: str, Required: true},
		ice.NestedField{ID: 2, Name: ColAccountFrom, Type: str, Required: true},
		ice.NestedField{ID: 3, Name: ColAccountTo, Type: str, Required: true},
		ice.NestedField{ID: 4, Name: ColAmount, Type: ice.DecimalTypeOf(18, 2), Required: true},
		ice.NestedField{ID: 5, Name: ColCurrency, Type: str, Required: true},
		ice.NestedField{ID: 6, Name: ColTransactionType, Type: str, Required: true},
		ice.NestedField{ID: 7, Name: ColTransactionHash, Type: str, Required: true},
		ice.NestedField{ID: 8, Name: ColEventTimestamp, Type: ice.PrimitiveTypes.TimestampTz},
		ice.NestedField{ID: 9, Name: ColProcessingTime, Type: ice.PrimitiveTypes.TimestampTz},
		ice.NestedField{ID: 10, Name: ColSourceTopic, Type: str, Required: true},
		ice.NestedField{ID: 11, Name: ColSourcePartition, Type: ice.PrimitiveTypes.Int32, Required: true},
		ice.NestedField{ID: 12, Name: ColSourceOffset, Type: ice.PrimitiveTypes.Int64, Required: true},
	)
}

// dictionaryOnColumns are the only columns written with a Parquet dictionary: integers
// with a handful of values a file. Every other column is written plain (zstd compresses
// the repeats): its values are unique (ids, hashes, offsets, times), or too many to pay
// (accounts, amounts), and for strings arrow-go's dictionary encoder allocates once a value
// (it hashes through an interface): currency, type and topic cost more through it than the
// 0.3% of file size they save. Measured with BenchmarkStage (issue 16): dictionaries on
// the low-cardinality strings too, 3.6 µs of CPU a row and 44.3 bytes; only on these, 2.8
// µs and 46.2 bytes.
var dictionaryOnColumns = []string{ColSourcePartition, ColProcessingTime}

// TableProperties are the properties a ledgerstream table is created with.
func TableProperties() ice.Properties {
	p := ice.Properties{
		table.PropertyFormatVersion: "2",
		table.ParquetCompressionKey: "zstd",
		// zstd's fastest level writes Parquet about 1.3x faster than the default (3), and
		// the files are no larger: most of a row's bytes are its SHA-256 hash and unique
		// ids, which no level compresses (BenchmarkStage: 44 bytes a row either way).
		table.ParquetCompressionLevelKey:  "1",
		table.WriteTargetFileSizeBytesKey: "134217728",
		// Our commits are conditional on the snapshot the batch was planned on; the
		// engine settles conflicts itself (fencing, merge). iceberg-go's refresh-and-
		// retry must never replay a batch behind its back.
		table.CommitNumRetriesKey: "0",
	}
	// A property every Iceberg writer reads (parquet-mr's key), then the exceptions.
	p["parquet.enable.dictionary"] = "false"
	for _, c := range dictionaryOnColumns {
		p["write.parquet.dict-encoding-enabled.column."+c] = "true"
	}
	// Old metadata files are deleted after each commit (maintain.go).
	for k, v := range maintenanceProperties() {
		p[k] = v
	}
	return p
}

// EnsureTable returns the table, creating it (and its namespace) with schema, unpartitioned,
// format v2 and TableProperties when it does not exist. An existing table must be compatible
// with schema: every field of schema present with the same id, name and type, not required
// where schema has it optional, and no extra required field; otherwise EnsureTable refuses with an
// error that names the difference.
func (c *Catalog) EnsureTable(ctx context.Context, ident table.Identifier, schema *ice.Schema) (*table.Table, error) {
	tbl, err := c.loadTable(ctx, ident)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		if err := c.EnsureNamespace(ctx, catalog.NamespaceFromIdent(ident)); err != nil {
			return nil, err
		}
		tbl, err = c.cat.CreateTable(ctx, ident, schema,
			catalog.WithPartitionSpec(ice.UnpartitionedSpec),
			catalog.WithProperties(TableProperties()))
		if errors.Is(err, catalog.ErrTableAlreadyExists) {
			// Another worker created it first: use theirs, checked below.
			tbl, err = c.loadTable(ctx, ident)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("iceberg: ensure table %s: %w", identString(ident), err)
	}
	if err := CheckSchema(tbl.Schema(), schema); err != nil {
		return nil, fmt.Errorf("iceberg: table %s exists with an incompatible schema: %w", identString(ident), err)
	}
	return tbl, nil
}

// CheckSchema reports whether a table with schema have can take rows written with want.
func CheckSchema(have, want *ice.Schema) error {
	var problems []string
	for _, w := range want.Fields() {
		h, ok := have.FindFieldByID(w.ID)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("field %d %q is missing", w.ID, w.Name))
			continue
		case h.Name != w.Name:
			problems = append(problems, fmt.Sprintf("field %d is named %q, want %q", w.ID, h.Name, w.Name))
		case !h.Type.Equals(w.Type):
			problems = append(problems, fmt.Sprintf("field %d %q has type %s, want %s", w.ID, w.Name, h.Type, w.Type))
		}
		if h.Required && !w.Required {
			problems = append(problems, fmt.Sprintf("field %d %q is required, want optional", w.ID, w.Name))
		}
		// An optional column where we want a required one is fine: we write no nulls
		// (tables created by Spark have every column optional).
	}
	for _, h := range have.Fields() {
		if _, ok := want.FindFieldByID(h.ID); !ok && h.Required {
			problems = append(problems, fmt.Sprintf("extra required field %d %q", h.ID, h.Name))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// EnsureRejectsTable returns the rejects table ident, creating it with the schema it was
// first released with when it does not exist, then adding the columns added since
// (rejectsAddedColumns) that it lacks, by schema evolution: old tables and new ones end
// with the same field ids. Workers that start together may race to add a column: the
// loser's commit conflicts and is marked temporary, so that the caller's retry policy runs
// EnsureRejectsTable again, which re-reads the table and finds the column there.
func (c *Catalog) EnsureRejectsTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	tbl, err := c.EnsureTable(ctx, ident, rejectsBaseSchema())
	if err != nil {
		return nil, err
	}
	if tbl, err = addRejectsColumns(ctx, ident, tbl); err != nil {
		return nil, err
	}
	if err := CheckSchema(tbl.Schema(), RejectsSchema()); err != nil {
		return nil, fmt.Errorf("iceberg: table %s exists with an incompatible schema: %w", identString(ident), err)
	}
	return tbl, nil
}

// addRejectsColumns adds to tbl, as loaded, the columns of rejectsAddedColumns it lacks,
// and returns the table as committed; a conflict (the table moved since it was loaded) is
// marked temporary.
func addRejectsColumns(ctx context.Context, ident table.Identifier, tbl *table.Table) (*table.Table, error) {
	var missing []ice.NestedField
	for _, f := range rejectsAddedColumns() {
		if _, ok := tbl.Schema().FindFieldByName(f.Name); !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return tbl, nil
	}
	txn := tbl.NewTransaction()
	upd := txn.UpdateSchema(true, false)
	for _, f := range missing {
		upd = upd.AddColumn([]string{f.Name}, f.Type, f.Doc, false, nil)
	}
	err := upd.Commit()
	if err == nil {
		tbl, err = txn.Commit(ctx)
	}
	if err != nil {
		err = fmt.Errorf("iceberg: add columns %s to %s: %w", fieldNames(missing), identString(ident), err)
		if isCommitConflict(err) {
			return nil, retry.MarkTemporary(err)
		}
		return nil, err
	}
	return tbl, nil
}

func fieldNames(fs []ice.NestedField) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}
