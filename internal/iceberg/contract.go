package iceberg

import (
	"fmt"

	ice "github.com/apache/iceberg-go"

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
