package iceberg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// PropertyContract is the table property that keeps the contract a ledger was written with
// (its YAML), so that `contract show`, report, verify and schema evolution read it from the
// table rather than trusting whatever file a later command is given.
const PropertyContract = "ledgerstream.contract"

// ColExtras is the column of unknown keys under unknown_fields: keep.
const ColExtras = ledger.ColumnExtras

// ContractSchema returns the schema of a new ledger table written with contract c: the
// contract's fields (ids from 1, in order; transaction_hash where c.HashAt puts it), then
// extras (unknown_fields: keep), processing_time and the source position. A required field
// is a required column. The default contract's schema is LedgerSchema, the notebook's.
func ContractSchema(c *ledger.Contract) *ice.Schema {
	if c.IsDefault() {
		return LedgerSchema()
	}
	var fields []ice.NestedField
	add := func(name string, t ice.Type, required bool) {
		fields = append(fields, ice.NestedField{ID: len(fields) + 1, Name: name, Type: t, Required: required})
	}
	for i, f := range c.Fields {
		if i == c.HashAt() {
			add(ColTransactionHash, ice.PrimitiveTypes.String, true)
		}
		add(f.Name, IcebergType(f.Type), f.Required)
	}
	if c.HashAt() == len(c.Fields) {
		add(ColTransactionHash, ice.PrimitiveTypes.String, true)
	}
	if c.UnknownFields == ledger.UnknownKeep {
		add(ColExtras, ice.PrimitiveTypes.String, false)
	}
	add(ColProcessingTime, ice.PrimitiveTypes.TimestampTz, false)
	add(ColSourceTopic, ice.PrimitiveTypes.String, true)
	add(ColSourcePartition, ice.PrimitiveTypes.Int32, true)
	add(ColSourceOffset, ice.PrimitiveTypes.Int64, true)
	return ice.NewSchema(0, fields...)
}

// IcebergType is the Iceberg type of a contract column type.
func IcebergType(t ledger.Type) ice.Type {
	switch t.Kind {
	case ledger.TypeString:
		return ice.PrimitiveTypes.String
	case ledger.TypeLong:
		return ice.PrimitiveTypes.Int64
	case ledger.TypeInt:
		return ice.PrimitiveTypes.Int32
	case ledger.TypeBoolean:
		return ice.PrimitiveTypes.Bool
	case ledger.TypeDecimal:
		return ice.DecimalTypeOf(t.Precision, t.Scale)
	case ledger.TypeDate:
		return ice.PrimitiveTypes.Date
	case ledger.TypeTimestampTz:
		return ice.PrimitiveTypes.TimestampTz
	case ledger.TypeTimestamp:
		return ice.PrimitiveTypes.Timestamp
	}
	panic(fmt.Sprintf("iceberg: no Iceberg type for contract type %v", t))
}

// ContractPartitionSpec returns the partition spec of contract c over schema (the table's:
// source ids are looked up by column name). Partition field ids start at 1000, as Iceberg's;
// names follow Iceberg's convention (currency, event_timestamp_day, payer_bucket_16).
func ContractPartitionSpec(c *ledger.Contract, schema *ice.Schema) (ice.PartitionSpec, error) {
	if len(c.Partition) == 0 {
		return *ice.UnpartitionedSpec, nil
	}
	var opts []ice.PartitionOption
	for i, p := range c.Partition {
		f, ok := schema.FindFieldByName(p.Column)
		if !ok {
			return ice.PartitionSpec{}, fmt.Errorf("iceberg: partition %s: the table has no column %q", p, p.Column)
		}
		var tr ice.Transform
		name := p.Column + "_" + p.Transform
		switch p.Transform {
		case "identity":
			tr, name = ice.IdentityTransform{}, p.Column
		case "year":
			tr = ice.YearTransform{}
		case "month":
			tr = ice.MonthTransform{}
		case "day":
			tr = ice.DayTransform{}
		case "hour":
			tr = ice.HourTransform{}
		case "bucket":
			tr, name = ice.BucketTransform{NumBuckets: p.Param}, fmt.Sprintf("%s_bucket_%d", p.Column, p.Param)
		case "truncate":
			tr, name = ice.TruncateTransform{Width: p.Param}, fmt.Sprintf("%s_trunc_%d", p.Column, p.Param)
		default:
			return ice.PartitionSpec{}, fmt.Errorf("iceberg: partition %s: unknown transform", p)
		}
		id := 1000 + i
		opts = append(opts, ice.AddPartitionFieldBySourceID(f.ID, name, tr, schema, &id))
	}
	spec, err := ice.NewPartitionSpecOpts(opts...)
	if err != nil {
		return ice.PartitionSpec{}, fmt.Errorf("iceberg: partition spec of the contract: %w", err)
	}
	return spec, nil
}

// ScanContract reads a ledger written with custom contract c at snapshotID (0: main's head)
// and calls fn for every row: Custom holds the contract's columns (a column the table does
// not have yet reads as null), TransactionID the key, TransactionHash the hash, EventTime the
// report time column. Strings are copies, safe to keep.
func (c *Catalog) ScanContract(ctx context.Context, ident table.Identifier, snapshotID int64, ct *ledger.Contract, fn func(row ledger.Row, processed time.Time) error) error {
	return c.scanContractWhere(ctx, ident, snapshotID, ct, nil, fn)
}

// scanContractWhere is ScanContract for the rows that match filter (nil: all).
func (c *Catalog) scanContractWhere(ctx context.Context, ident table.Identifier, snapshotID int64, ct *ledger.Contract, filter ice.BooleanExpression, fn func(row ledger.Row, processed time.Time) error) error {
	return c.scanContract(ctx, ident, ct, ScanOptions{SnapshotID: snapshotID, Filter: filter}, fn)
}

// scanContract is ScanContract as opts say.
func (c *Catalog) scanContract(ctx context.Context, ident table.Identifier, ct *ledger.Contract, opts ScanOptions, fn func(row ledger.Row, processed time.Time) error) error {
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	// The columns of the snapshot read: an older one may predate columns an evolution
	// added since (they read as null), and selecting them would fail.
	present := map[string]bool{}
	for _, f := range SnapshotSchema(tbl, opts.SnapshotID).Fields() {
		present[f.Name] = true
	}
	cols := []string{ColTransactionHash, ColProcessingTime, ColSourceTopic, ColSourcePartition, ColSourceOffset}
	if present[ColExtras] {
		cols = append(cols, ColExtras)
	}
	for _, f := range ct.Fields {
		if present[f.Name] {
			cols = append(cols, f.Name)
		}
	}
	return c.scanFiles(ctx, ident, opts, cols, func(rec arrow.RecordBatch) error {
		return eachContractRow(rec, ct, fn)
	})
}

func eachContractRow(rec arrow.RecordBatch, ct *ledger.Contract, fn func(ledger.Row, time.Time) error) error {
	bc := &batchColumns{rec: rec}
	hash, topic := bc.str(ColTransactionHash), bc.str(ColSourceTopic)
	part, off := bc.int32s(ColSourcePartition), bc.int64s(ColSourceOffset)
	proc := typed[*array.Timestamp](bc, ColProcessingTime, "a timestamp")
	var extras stringColumn
	if len(rec.Schema().FieldIndices(ColExtras)) == 1 {
		extras = bc.str(ColExtras)
	}
	fields := make([]arrow.Array, len(ct.Fields))
	for i, f := range ct.Fields {
		if len(rec.Schema().FieldIndices(f.Name)) == 1 {
			fields[i] = bc.col(f.Name)
		}
	}
	if err := bc.err(); err != nil {
		return err
	}
	procTime, err := timestampConverter(proc)
	if err != nil {
		return err
	}
	key, timeAt := ct.FieldIndex(ct.Key), ct.FieldIndex(ct.Report.Time)
	var strs []byte // a row's string values, made one string (Columns.Strings)
	for i := 0; i < int(rec.NumRows()); i++ {
		cols := &ledger.Columns{Values: make([]ledger.Value, len(ct.Fields))}
		strs = strs[:0]
		for j, a := range fields {
			if a == nil || a.IsNull(i) {
				continue
			}
			if s, ok := a.(stringColumn); ok {
				cols.Values[j] = ledger.Value{Valid: true}
				cols.Values[j].SetStr(len(strs), len(strs)+len(s.Value(i)))
				strs = append(strs, s.Value(i)...)
				continue
			}
			v, err := valueAt(a, i)
			if err != nil {
				return fmt.Errorf("iceberg: scan: column %q: %w", ct.Fields[j].Name, err)
			}
			cols.Values[j] = v
		}
		cols.Strings = string(strs)
		if extras != nil && !extras.IsNull(i) {
			cols.Extras = strings.Clone(extras.Value(i))
		}
		r := ledger.Row{Custom: cols, TransactionHash: strings.Clone(hash.Value(i)),
			TransactionID:   cols.Canonical(key, ct.Fields[key].Type),
			SourceTopic:     strings.Clone(topic.Value(i)),
			SourcePartition: part.Value(i), SourceOffset: off.Value(i)}
		if timeAt >= 0 && cols.Values[timeAt].Valid {
			if ct.Fields[timeAt].Type.Kind == ledger.TypeDate {
				r.EventTime = time.Unix(cols.Values[timeAt].Int*86400, 0).UTC()
			} else {
				r.EventTime = time.UnixMicro(cols.Values[timeAt].Int).UTC()
			}
		}
		if err := fn(r, procTime(i)); err != nil {
			return err
		}
	}
	return nil
}

// valueAt reads a non-null value of a contract column other than a string from an Arrow
// array.
func valueAt(a arrow.Array, i int) (ledger.Value, error) {
	switch a := a.(type) {
	case *array.Int64:
		return ledger.Value{Valid: true, Int: a.Value(i)}, nil
	case *array.Int32:
		return ledger.Value{Valid: true, Int: int64(a.Value(i))}, nil
	case *array.Boolean:
		v := ledger.Value{Valid: true}
		if a.Value(i) {
			v.Int = 1
		}
		return v, nil
	case *array.Decimal128:
		d := a.Value(i)
		return ledger.Value{Valid: true, Int: int64(d.LowBits()), Hi: d.HighBits()}, nil
	case *array.Date32:
		return ledger.Value{Valid: true, Int: int64(a.Value(i))}, nil
	case *array.Timestamp:
		conv, err := timestampConverter(a)
		if err != nil {
			return ledger.Value{}, err
		}
		return ledger.Value{Valid: true, Int: conv(i).UnixMicro()}, nil
	}
	return ledger.Value{}, fmt.Errorf("unexpected Arrow type %s", a.DataType())
}

// SnapshotSchema returns the schema tbl had when snapshot snapshotID was written (0: main's
// head), or its current schema when the snapshot does not say.
func SnapshotSchema(tbl *table.Table, snapshotID int64) *ice.Schema {
	meta := tbl.Metadata()
	if snapshotID == 0 {
		snapshotID = mainSnapshotID(meta)
	}
	if snap := meta.SnapshotByID(snapshotID); snap != nil && snap.SchemaID != nil {
		for _, s := range meta.Schemas() {
			if s.ID == *snap.SchemaID {
				return s
			}
		}
	}
	return tbl.Schema()
}

// NewContractSink returns the Sink of pipeline on the ledger ident written with contract ct
// (EnsureLedger first): rows are encoded by a ContractEncoder against the table's current
// schema. For the default contract it is NewSink.
func (c *Catalog) NewContractSink(ctx context.Context, ident table.Identifier, pipeline string, ct *ledger.Contract) (*Sink, error) {
	if ct.IsDefault() {
		return c.NewSink(ctx, ident, pipeline)
	}
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return nil, err
	}
	return c.NewContractSinkOn(ident, pipeline, tbl, ct)
}

// NewContractSinkOn is NewContractSink on tbl, the ledger as EnsureLedger returned it: it
// loads nothing. For the default contract, tbl's schema is checked against LedgerSchema as
// NewSink checks it.
func (c *Catalog) NewContractSinkOn(ident table.Identifier, pipeline string, tbl *table.Table, ct *ledger.Contract) (*Sink, error) {
	if ct.IsDefault() {
		if err := CheckSchema(tbl.Schema(), LedgerSchema()); err != nil {
			return nil, fmt.Errorf("iceberg: table %s exists with an incompatible schema: %w", identString(ident), err)
		}
		return newTableSinkOn(c, ident, pipeline, tbl, func() (Encoder[ledger.Row], error) { return NewRowEncoder(nil) })
	}
	schema, spec := tbl.Schema(), tbl.Spec()
	return newTableSinkOn(c, ident, pipeline, tbl, func() (Encoder[ledger.Row], error) {
		enc, err := NewContractEncoder(nil, schema, ct)
		if err != nil {
			return nil, err
		}
		enc.splitBy(spec)
		return enc, nil
	})
}

// ScanRows is ScanLedger for a ledger written with contract ct: ScanLedger for the default
// contract, ScanContract for a custom one.
func (c *Catalog) ScanRows(ctx context.Context, ident table.Identifier, snapshotID int64, ct *ledger.Contract, fn func(row ledger.Row, processed time.Time) error) error {
	if ct.IsDefault() {
		return c.ScanLedger(ctx, ident, snapshotID, fn)
	}
	return c.ScanContract(ctx, ident, snapshotID, ct, fn)
}

// ScanRowsWhere is ScanRows for the rows that match filter (nil: all): partition and file
// statistics prune what is read.
func (c *Catalog) ScanRowsWhere(ctx context.Context, ident table.Identifier, snapshotID int64, ct *ledger.Contract, filter ice.BooleanExpression, fn func(row ledger.Row, processed time.Time) error) error {
	if ct.IsDefault() {
		return c.ScanLedgerWhere(ctx, ident, snapshotID, filter, fn)
	}
	return c.scanContractWhere(ctx, ident, snapshotID, ct, filter, fn)
}

// ScanRowsOpts is ScanRows as opts say: a snapshot, a filter, and what to do with a file
// that cannot be read.
func (c *Catalog) ScanRowsOpts(ctx context.Context, ident table.Identifier, ct *ledger.Contract, opts ScanOptions, fn func(row ledger.Row, processed time.Time) error) error {
	if ct.IsDefault() {
		return c.scanFiles(ctx, ident, opts, ledgerColumns, func(rec arrow.RecordBatch) error { return eachLedgerRow(rec, fn) })
	}
	return c.scanContract(ctx, ident, ct, opts, fn)
}
