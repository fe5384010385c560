package iceberg

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// ContractEncoder turns rows decoded by a custom contract into Arrow record batches of the
// table's current schema: each column is found by name among the contract's fields and
// the columns every ledger has; a column the contract no longer names (an optional field
// since dropped) is written as nulls. It is not safe for concurrent use.
type ContractEncoder struct {
	mem    memory.Allocator
	schema *arrow.Schema
	ice    *ice.Schema
	c      *ledger.Contract
	sets   []*builderSet // sets[0] for Encode; one per partition for EncodeSplit

	// parts tell a row's partition apart (splitBy); nil: one batch for all rows.
	parts  []partKey
	intern map[string]int64 // identity partitions of strings: the values seen, numbered
	groups map[[maxPartKeys + 1]int64]int32
	group  []int32 // per row, its group
	// exact: the parts tell every partition field of the spec apart, so that each batch
	// EncodeSplit returns holds the rows of one partition, whose values specFields give.
	exact      bool
	specFields []specField
}

// specField is a partition field of the table's spec as EncodeSplit computes its value.
type specField struct {
	field     int // index in the contract's fields
	kind      ledger.TypeKind
	source    ice.Type
	transform ice.Transform
}

// builderSet builds one record batch: a builder per column, reused from batch to batch
// (NewRecordBatch resets them).
type builderSet struct {
	b    *array.RecordBuilder
	cols []encColumn
}

// encKind is where a column's values come from.
type encKind uint8

const (
	encNulls encKind = iota // a column the contract no longer names
	encHash
	encExtras
	encProcessing
	encTopic
	encPartition
	encOffset
	// The contract's fields, by type.
	encString
	encLong
	encInt
	encBool
	encDecimal
	encDate
	encTimestamp
)

// encColumn is one column of the table: where its values come from and its builder, with
// its type (one of the typed pointers is set).
type encColumn struct {
	kind  encKind
	field int // index in the contract's fields, for kind >= encString
	any   array.Builder
	str   *array.StringBuilder
	i64   *array.Int64Builder
	i32   *array.Int32Builder
	bl    *array.BooleanBuilder
	dec   *array.Decimal128Builder
	d32   *array.Date32Builder
	ts    *array.TimestampBuilder
	// avg is a string column's bytes per row in the last batch: the next batch reserves
	// that much data up front rather than growing it while appending.
	avg int
}

// NewContractEncoder returns the encoder of contract c for a table of schema (the table's
// current one, with its field ids). A nil mem means the Go allocator.
func NewContractEncoder(mem memory.Allocator, schema *ice.Schema, c *ledger.Contract) (*ContractEncoder, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	sc, err := table.SchemaToArrowSchema(schema, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("iceberg: contract Arrow schema: %w", err)
	}
	e := &ContractEncoder{mem: mem, schema: sc, ice: schema, c: c}
	set, err := e.newSet()
	if err != nil {
		return nil, err
	}
	e.sets = []*builderSet{set}
	return e, nil
}

// newSet returns a set of builders for the encoder's schema.
func (e *ContractEncoder) newSet() (*builderSet, error) {
	c := e.c
	set := &builderSet{b: array.NewRecordBuilder(e.mem, e.schema)}
	for ci, f := range e.ice.Fields() {
		col := encColumn{field: c.FieldIndex(f.Name), any: set.b.Field(ci)}
		if col.field >= 0 {
			typ := c.Fields[col.field].Type
			if !IcebergType(typ).Equals(f.Type) {
				return nil, fmt.Errorf("iceberg: column %q is %s in the table, but %s in the contract", f.Name, f.Type, typ)
			}
			col.kind = map[ledger.TypeKind]encKind{ledger.TypeString: encString, ledger.TypeLong: encLong, ledger.TypeInt: encInt,
				ledger.TypeBoolean: encBool, ledger.TypeDecimal: encDecimal, ledger.TypeDate: encDate,
				ledger.TypeTimestampTz: encTimestamp, ledger.TypeTimestamp: encTimestamp}[typ.Kind]
		} else {
			switch f.Name {
			case ColTransactionHash:
				col.kind = encHash
			case ColExtras:
				col.kind = encExtras
			case ColProcessingTime:
				col.kind = encProcessing
			case ColSourceTopic:
				col.kind = encTopic
			case ColSourcePartition:
				col.kind = encPartition
			case ColSourceOffset:
				col.kind = encOffset
			default:
				if f.Required {
					return nil, fmt.Errorf("iceberg: the table has a required column %q that the contract does not name", f.Name)
				}
				col.kind = encNulls
			}
		}
		switch b := col.any.(type) {
		case *array.StringBuilder:
			col.str = b
		case *array.Int64Builder:
			col.i64 = b
		case *array.Int32Builder:
			col.i32 = b
		case *array.BooleanBuilder:
			col.bl = b
		case *array.Decimal128Builder:
			col.dec = b
		case *array.Date32Builder:
			col.d32 = b
		case *array.TimestampBuilder:
			col.ts = b
		}
		set.cols = append(set.cols, col)
	}
	return set, nil
}

// Schema is the Arrow schema of the batches Encode returns.
func (e *ContractEncoder) Schema() *arrow.Schema { return e.schema }

// Encode returns one record batch holding rows (each with Custom set), processing_time =
// processed for all of them. The caller owns the batch (Release it).
func (e *ContractEncoder) Encode(rows []ledger.Row, processed time.Time) arrow.RecordBatch {
	set := e.sets[0]
	set.reserve(len(rows))
	for i := range rows {
		set.append(&rows[i], processed)
	}
	return set.finish(len(rows))
}

// reserve makes room for n rows.
func (s *builderSet) reserve(n int) {
	for i := range s.cols {
		c := &s.cols[i]
		c.any.Reserve(n)
		if c.str != nil {
			c.str.ReserveData(c.avg * n)
		}
	}
}

// append appends row r, a row at a time: each row's values are read once, while they are
// in the cache (a column at a time read every row's values once per column).
func (s *builderSet) append(r *ledger.Row, processed time.Time) {
	vals := r.Custom.Values
	for i := range s.cols {
		c := &s.cols[i]
		switch c.kind {
		case encNulls:
			c.any.AppendNull()
		case encHash:
			c.str.Append(r.TransactionHash)
		case encExtras:
			if r.Custom.Extras == "" {
				c.str.AppendNull()
			} else {
				c.str.Append(r.Custom.Extras)
			}
		case encProcessing:
			if processed.IsZero() {
				c.ts.AppendNull()
			} else {
				c.ts.UnsafeAppend(arrow.Timestamp(processed.UnixMicro()))
			}
		case encTopic:
			c.str.Append(r.SourceTopic)
		case encPartition:
			c.i32.UnsafeAppend(r.SourcePartition)
		case encOffset:
			c.i64.UnsafeAppend(r.SourceOffset)
		default:
			v := &vals[c.field]
			if !v.Valid {
				c.any.AppendNull()
				continue
			}
			switch c.kind {
			case encString:
				c.str.Append(r.Custom.Str(c.field))
			case encLong:
				c.i64.UnsafeAppend(v.Int)
			case encInt:
				c.i32.UnsafeAppend(int32(v.Int))
			case encBool:
				c.bl.UnsafeAppend(v.Int != 0)
			case encDecimal:
				c.dec.UnsafeAppend(decimal128.New(v.Hi, uint64(v.Int)))
			case encDate:
				c.d32.UnsafeAppend(arrow.Date32(v.Int))
			case encTimestamp:
				c.ts.UnsafeAppend(arrow.Timestamp(v.Int))
			}
		}
	}
}

// finish returns the batch of the n rows appended.
func (s *builderSet) finish(n int) arrow.RecordBatch {
	for i := range s.cols {
		if c := &s.cols[i]; c.str != nil && n > 0 {
			c.avg = (c.str.DataLen() + n - 1) / n
		}
	}
	return s.b.NewRecordBatch()
}

// maxPartKeys is how many partition fields splitBy tells apart; further ones are left to
// the fanout writer.
const maxPartKeys = 4

// partKey is how one partition field of the table tells rows apart: a number per row that is
// equal for rows of the same partition value. Rows of one partition may get different
// numbers (day for a month partition: more batches than partitions, each whole for one
// partition), and rows of different partitions the same one (two decimals' low words, a
// null and a value): the split only saves the fanout writer the copying of each
// partition's rows out of a mixed batch, it never decides where a row goes.
type partKey struct {
	field int // index in the contract's fields
	kind  partKeyKind
	// exact: rows with the same number are in the same partition (not so for a decimal's
	// low word).
	exact bool
}

type partKeyKind uint8

const (
	keyString partKeyKind = iota // identity of a string: the values seen, numbered
	keyValue                     // identity of a number, a date, a timestamp or a boolean
	keyDay                       // year, month or day of a timestamp: the day
	keyHour                      // hour of a timestamp
)

// splitBy makes EncodeSplit cut its batches by the partition fields of spec that it can
// tell apart cheaply: identity, and year, month, day or hour of a date or timestamp.
func (e *ContractEncoder) splitBy(spec ice.PartitionSpec) {
	e.parts, e.specFields = nil, nil
	e.exact = spec.NumFields() <= maxPartKeys
	for _, pf := range spec.Fields() {
		if len(e.parts) == maxPartKeys {
			break
		}
		src, ok := e.ice.FindFieldByID(pf.SourceID())
		if !ok {
			e.exact = false
			continue
		}
		fi := e.c.FieldIndex(src.Name)
		if fi < 0 {
			e.exact = false
			continue
		}
		typ := e.c.Fields[fi].Type.Kind
		timestamp := typ == ledger.TypeTimestampTz || typ == ledger.TypeTimestamp
		k := partKey{field: fi, exact: true}
		switch pf.Transform.(type) {
		case ice.IdentityTransform:
			switch typ {
			case ledger.TypeString:
				k.kind = keyString
			case ledger.TypeDecimal:
				k.kind, k.exact = keyValue, false
			default:
				k.kind = keyValue
			}
		case ice.YearTransform, ice.MonthTransform, ice.DayTransform:
			switch {
			case timestamp:
				k.kind = keyDay
			case typ == ledger.TypeDate:
				k.kind = keyValue
			default:
				e.exact = false
				continue
			}
		case ice.HourTransform:
			if !timestamp {
				e.exact = false
				continue
			}
			k.kind = keyHour
		default: // bucket, truncate: left to the fanout writer
			e.exact = false
			continue
		}
		e.exact = e.exact && k.exact
		e.parts = append(e.parts, k)
		e.specFields = append(e.specFields, specField{field: fi, kind: typ, source: src.Type, transform: pf.Transform})
	}
	if !e.exact {
		e.specFields = nil
	}
}

// partitionValues are the partition values of row r, by the spec's fields, in the Go types
// iceberg-go's fanout writer gives them (identity: the value as Arrow holds it, day: a
// Date, year, month and hour: an int32; nil for a null).
func (e *ContractEncoder) partitionValues(r *ledger.Row) ([]any, error) {
	vals := make([]any, len(e.specFields))
	for i, f := range e.specFields {
		v := &r.Custom.Values[f.field]
		if !v.Valid {
			continue
		}
		var src any
		switch f.kind {
		case ledger.TypeString:
			src = strings.Clone(r.Custom.Str(f.field))
		case ledger.TypeLong:
			src = v.Int
		case ledger.TypeInt:
			src = int32(v.Int)
		case ledger.TypeBoolean:
			src = v.Int != 0
		case ledger.TypeDate:
			src = ice.Date(v.Int)
		case ledger.TypeTimestampTz, ledger.TypeTimestamp:
			src = ice.Timestamp(v.Int)
		default:
			return nil, fmt.Errorf("iceberg: partition source %q of type %s", e.c.Fields[f.field].Name, f.source)
		}
		switch t := f.transform.(type) {
		case ice.IdentityTransform:
			vals[i] = src
		case ice.TimeTransform:
			fn, err := t.Transformer(f.source)
			if err != nil {
				return nil, fmt.Errorf("iceberg: partition %s of %q: %w", f.transform, e.c.Fields[f.field].Name, err)
			}
			if got := fn(src); got.Valid {
				if _, day := t.(ice.DayTransform); day {
					vals[i] = ice.Date(got.Val)
				} else {
					vals[i] = got.Val
				}
			}
		default:
			return nil, fmt.Errorf("iceberg: partition transform %s", f.transform)
		}
	}
	return vals, nil
}

// EncodeSplit is Encode for a partitioned table: one record batch per partition the rows
// touch (as far as splitBy tells them apart), each holding its rows in their order. The
// fanout writer hands a batch of one partition whole to that partition's file, where it
// would copy every partition's rows out of a mixed batch (Arrow's take, on every column).
// When splitBy tells every partition field apart, values are the partition values of each
// batch (partitionValues; batches of one partition under a coarser transform, the days of
// a month, have equal ones), and the sink writes each partition's file itself rather than
// have the fanout writer work the partition out again for every row; else values is nil.
// The caller owns the batches.
func (e *ContractEncoder) EncodeSplit(rows []ledger.Row, processed time.Time) ([]arrow.RecordBatch, [][]any) {
	if len(e.parts) == 0 || len(rows) == 0 {
		return []arrow.RecordBatch{e.Encode(rows, processed)}, nil
	}
	if e.groups == nil {
		e.groups = make(map[[maxPartKeys + 1]int64]int32)
		e.intern = make(map[string]int64)
	}
	clear(e.groups)
	clear(e.intern)
	e.group = e.group[:0]
	var counts, first []int
	for i := range rows {
		var key [maxPartKeys + 1]int64 // the last: which fields are null
		vals := rows[i].Custom.Values
		for j, p := range e.parts {
			v := &vals[p.field]
			switch {
			case !v.Valid:
				key[maxPartKeys] |= 1 << j
			case p.kind == keyString:
				s := rows[i].Custom.Str(p.field)
				id, ok := e.intern[s]
				if !ok {
					id = int64(len(e.intern))
					e.intern[s] = id
				}
				key[j] = id
			case p.kind == keyValue:
				key[j] = v.Int
			case p.kind == keyDay:
				key[j] = floorDiv(v.Int, 86_400_000_000)
			case p.kind == keyHour:
				key[j] = floorDiv(v.Int, 3_600_000_000)
			}
		}
		g, ok := e.groups[key]
		if !ok {
			g = int32(len(counts))
			e.groups[key] = g
			counts = append(counts, 0)
			first = append(first, i)
		}
		counts[g]++
		e.group = append(e.group, g)
	}
	if len(counts) > maxSplit {
		return []arrow.RecordBatch{e.Encode(rows, processed)}, nil
	}
	var values [][]any
	if e.exact {
		values = make([][]any, len(counts))
		for g, i := range first {
			var err error
			if values[g], err = e.partitionValues(&rows[i]); err != nil {
				values = nil // cannot be (splitBy took only these types): the fanout writer's
				break
			}
		}
	}
	if len(counts) == 1 {
		return []arrow.RecordBatch{e.Encode(rows, processed)}, values
	}
	// The rows are read in their order, each appended to its partition's builders.
	for len(e.sets) < len(counts) {
		set, err := e.newSet()
		if err != nil { // cannot be: the first set was made the same way
			return []arrow.RecordBatch{e.Encode(rows, processed)}, nil
		}
		e.sets = append(e.sets, set)
	}
	for g, n := range counts {
		e.sets[g].reserve(n)
	}
	for i, g := range e.group {
		e.sets[g].append(&rows[i], processed)
	}
	recs := make([]arrow.RecordBatch, len(counts))
	for g, n := range counts {
		recs[g] = e.sets[g].finish(n)
	}
	return recs, values
}

// maxSplit is the most batches EncodeSplit cuts rows into (a set of builders each): rows
// of more partitions are left to the fanout writer.
const maxSplit = 64

// floorDiv is a / b rounded towards minus infinity (b > 0): the day or hour of a time
// before 1970 too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
