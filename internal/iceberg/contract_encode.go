package iceberg

import (
	"fmt"
	"math"
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
//
// The columns are built in plain Go slices (values, string offsets and bytes, validity
// bits) that become the arrays' buffers, not by Arrow's builders: an Arrow builder checks
// its capacity, moves its length and sets a validity bit through a call per value, which
// was the larger part of encoding a row (BenchmarkEncodeContract).
type ContractEncoder struct {
	mem    memory.Allocator
	schema *arrow.Schema
	ice    *ice.Schema
	c      *ledger.Contract
	cols   []encColumn

	// parts tell a row's partition apart (splitBy); nil: one batch for all rows.
	parts  []partKey
	intern map[string]int64 // identity partitions of strings: the values seen, numbered
	groups map[[maxPartKeys + 1]int64]int32
	group  []int32 // per row of a chunk, its group
	// last is how many rows each group of the last EncodeSplit had, of lastRows: a group's
	// batch reserves room for its share of the next rows (groups are found as the rows are
	// read, their sizes are not known in advance).
	last     map[[maxPartKeys + 1]int64]int
	lastRows int
	keys     [][maxPartKeys + 1]int64 // per group of this call, its key
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

// encColumn is one column of the table: where its values come from and its Arrow type.
type encColumn struct {
	kind  encKind
	field int // index in the contract's fields, for kind >= encString
	typ   arrow.DataType
	// avg is a string column's bytes per row in the last batch: the next batch reserves
	// that much data up front rather than growing it while appending.
	avg int
}

// NewContractEncoder returns the encoder of contract c for a table of schema (the table's
// current one, with its field ids). A nil mem means the Go allocator (used only for a
// column of nulls).
func NewContractEncoder(mem memory.Allocator, schema *ice.Schema, c *ledger.Contract) (*ContractEncoder, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	sc, err := table.SchemaToArrowSchema(schema, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("iceberg: contract Arrow schema: %w", err)
	}
	e := &ContractEncoder{mem: mem, schema: sc, ice: schema, c: c}
	for ci, f := range schema.Fields() {
		col := encColumn{field: c.FieldIndex(f.Name), typ: sc.Field(ci).Type}
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
		if err := checkColumnType(col); err != nil {
			return nil, fmt.Errorf("iceberg: column %q: %w", f.Name, err)
		}
		e.cols = append(e.cols, col)
	}
	return e, nil
}

// checkColumnType checks that a column's Arrow type is the one its values are built for.
func checkColumnType(c encColumn) error {
	var want arrow.Type
	switch c.kind {
	case encNulls:
		return nil
	case encHash, encExtras, encTopic, encString:
		want = arrow.STRING
	case encProcessing, encTimestamp:
		want = arrow.TIMESTAMP
	case encPartition, encInt:
		want = arrow.INT32
	case encOffset, encLong:
		want = arrow.INT64
	case encBool:
		want = arrow.BOOL
	case encDecimal:
		want = arrow.DECIMAL128
	case encDate:
		want = arrow.DATE32
	}
	if c.typ.ID() != want {
		return fmt.Errorf("its Arrow type is %s, want %s", c.typ, want)
	}
	return nil
}

// Schema is the Arrow schema of the batches Encode returns.
func (e *ContractEncoder) Schema() *arrow.Schema { return e.schema }

// Encode returns one record batch holding rows (each with Custom set), processing_time =
// processed for all of them. The caller owns the batch (Release it).
func (e *ContractEncoder) Encode(rows []ledger.Row, processed time.Time) arrow.RecordBatch {
	b := e.newBatch(len(rows))
	proc := processedMicros(processed)
	for i := range rows {
		b.append(&rows[i], proc)
	}
	return e.finish(b)
}

// processedMicros is the processing_time of a batch's rows; noProcessing for none (a null).
func processedMicros(processed time.Time) int64 {
	if processed.IsZero() {
		return noProcessing
	}
	return processed.UnixMicro()
}

// noProcessing marks a batch without a processing time (a null): no time within 290,000
// years of 1970 has these microseconds.
const noProcessing = math.MinInt64

// batch is one record batch being built: a colBuf per column.
type batch struct {
	n    int // rows appended
	room int // rows the columns have room for (grow makes more)
	cols []colBuf
}

// colBuf is one column of a batch: its values (one of the slices, by type), validity bits
// (a bit per row, set for a value; nil while every row has one) and null count.
type colBuf struct {
	valid []byte
	nulls int
	i64   []int64 // long, timestamp, offset, processing time
	i32   []int32 // int, date, source partition
	dec   []decimal128.Num
	bits  []byte  // boolean values
	offs  []int32 // string offsets: n+1
	data  []byte  // string bytes
	e     *encColumn
}

// newBatch returns a batch with room for n rows. Every batch has slices of its own: the
// arrays made of them outlive the call (the sink writes them while the encoder encodes
// the next part).
func (e *ContractEncoder) newBatch(n int) *batch {
	b := &batch{room: n, cols: make([]colBuf, len(e.cols))}
	for i := range e.cols {
		c := &b.cols[i]
		c.e = &e.cols[i]
		switch c.e.kind {
		case encHash, encExtras, encTopic, encString:
			c.offs = make([]int32, 1, n+1)
			c.data = make([]byte, 0, c.e.avg*n+64)
		case encProcessing, encTimestamp, encOffset, encLong:
			c.i64 = make([]int64, 0, n)
		case encPartition, encInt, encDate:
			c.i32 = make([]int32, 0, n)
		case encDecimal:
			c.dec = make([]decimal128.Num, 0, n)
		case encBool:
			c.bits = make([]byte, 0, (n+7)/8)
		}
	}
	return b
}

// grow gives the batch room for n rows (n > b.room): EncodeSplit does not know a
// partition's rows in advance. Doubling, not append's growth (a quarter at a time for
// large slices), keeps the copying below one copy of the batch.
func (b *batch) grow(n int) {
	b.room = n
	for i := range b.cols {
		c := &b.cols[i]
		c.valid = regrow(c.valid, n/8+1)
		c.i64 = regrow(c.i64, n)
		c.i32 = regrow(c.i32, n)
		c.dec = regrow(c.dec, n)
		c.bits = regrow(c.bits, (n+7)/8)
		c.offs = regrow(c.offs, n+1)
	}
}

// regrow returns s with room for n elements; nil stays nil (a column's unused slices, a
// validity bitmap not made yet).
func regrow[T any](s []T, n int) []T {
	if s == nil || cap(s) >= n {
		return s
	}
	t := make([]T, len(s), n)
	copy(t, s)
	return t
}

// null marks row null in column c (its value, zero, is appended by the caller), in a
// batch with room for rows.
func (c *colBuf) null(row, rows int) {
	if c.valid == nil {
		// Every row before this one had a value.
		c.valid = make([]byte, row/8+1, rows/8+1)
		for i := range c.valid {
			c.valid[i] = 0xff
		}
		if rem := row % 8; rem != 0 {
			c.valid[len(c.valid)-1] = byte(1)<<rem - 1
		} else {
			c.valid[len(c.valid)-1] = 0
		}
	} else {
		c.setValid(row, false)
	}
	c.nulls++
}

// setValid records row's validity once the bitmap exists.
func (c *colBuf) setValid(row int, ok bool) {
	if row%8 == 0 {
		c.valid = append(c.valid, 0)
	}
	if ok {
		c.valid[row/8] |= 1 << (row % 8)
	}
}

// append appends row r, a row at a time: each row's values are read once, while they are
// in the cache (a column at a time read every row's values once per column).
//
// It takes processing_time as processedMicros gives it, worked out once per batch.
func (b *batch) append(r *ledger.Row, processed int64) {
	if b.n == b.room {
		b.grow(2 * b.room)
	}
	row := b.n
	b.n++
	vals := r.Custom.Values
	for i := range b.cols {
		c := &b.cols[i]
		var str string
		valid := true
		switch c.e.kind {
		case encNulls:
			continue
		case encHash:
			str = r.TransactionHash
		case encExtras:
			str = r.Custom.Extras
			valid = str != ""
		case encProcessing:
			valid = processed != noProcessing
			var t int64
			if valid {
				t = processed
			}
			c.i64 = append(c.i64, t)
		case encTopic:
			str = r.SourceTopic
		case encPartition:
			c.i32 = append(c.i32, r.SourcePartition)
		case encOffset:
			c.i64 = append(c.i64, r.SourceOffset)
		default:
			v := vals[c.e.field]
			valid = v.Valid
			if !valid {
				v = ledger.Value{} // a null's slot holds zero
			}
			switch c.e.kind {
			case encString:
				if valid {
					str = r.Custom.Str(c.e.field)
				}
			case encLong, encTimestamp:
				c.i64 = append(c.i64, v.Int)
			case encInt, encDate:
				c.i32 = append(c.i32, int32(v.Int))
			case encBool:
				if row%8 == 0 {
					c.bits = append(c.bits, 0)
				}
				if v.Int != 0 {
					c.bits[row/8] |= 1 << (row % 8)
				}
			case encDecimal:
				c.dec = append(c.dec, decimal128.New(v.Hi, uint64(v.Int)))
			}
		}
		if c.offs != nil {
			// Not append(c.data, str...), which stores the slice's pointer back on every
			// call (a write barrier while the collector runs): only the length moves.
			n := len(c.data)
			if cap(c.data)-n < len(str) {
				c.data = regrow(c.data, max(2*cap(c.data), n+len(str)))
			}
			c.data = c.data[:n+len(str)]
			copy(c.data[n:], str)
			c.offs = append(c.offs, int32(n+len(str)))
		}
		if !valid {
			c.null(row, b.room)
		} else if c.valid != nil {
			c.setValid(row, true)
		}
	}
}

// finish returns the batch's record batch.
func (e *ContractEncoder) finish(b *batch) arrow.RecordBatch {
	n := b.n
	arrs := make([]arrow.Array, len(b.cols))
	for i := range b.cols {
		c := &b.cols[i]
		if c.e.kind == encNulls {
			arrs[i] = array.MakeArrayOfNull(e.mem, c.e.typ, n)
			continue
		}
		var valid *memory.Buffer
		if c.nulls > 0 {
			valid = memory.NewBufferBytes(c.valid)
		}
		var bufs []*memory.Buffer
		switch {
		case c.offs != nil:
			if n > 0 {
				c.e.avg = (len(c.data) + n - 1) / n
			}
			bufs = []*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.offs)), memory.NewBufferBytes(c.data)}
		case c.e.kind == encBool:
			bufs = []*memory.Buffer{valid, memory.NewBufferBytes(c.bits)}
		case c.i64 != nil:
			bufs = []*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(c.i64))}
		case c.i32 != nil:
			bufs = []*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.i32))}
		case c.dec != nil:
			bufs = []*memory.Buffer{valid, memory.NewBufferBytes(arrow.Decimal128Traits.CastToBytes(c.dec))}
		}
		data := array.NewData(c.e.typ, n, bufs, nil, c.nulls, 0)
		arrs[i] = array.MakeFromData(data)
		data.Release()
	}
	rec := array.NewRecordBatch(e.schema, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	return rec
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
		e.last = make(map[[maxPartKeys + 1]int64]int)
	}
	// A string's number stays the same from call to call (last is by key), as long as
	// the values seen stay few.
	if len(e.intern) > 4*maxSplit {
		clear(e.intern)
		clear(e.last)
	}
	clear(e.groups)
	e.keys = e.keys[:0]
	proc := processedMicros(processed)
	var batches []*batch
	var first []int // per group, its first row
	// A chunk of rows at a time: their groups, then each row appended to its group's
	// batch while the chunk is still in the cache (the partition values and the rest of a
	// row lie in the same lines).
	for start := 0; start < len(rows); start += splitChunk {
		chunk := rows[start:min(start+splitChunk, len(rows))]
		e.group = e.group[:0]
		for i := range chunk {
			key := e.partitionKey(&chunk[i])
			g, ok := e.groups[key]
			if !ok {
				if len(batches) == maxSplit {
					// Rows of more partitions: one batch, for the fanout writer.
					clear(e.last)
					return []arrow.RecordBatch{e.Encode(rows, processed)}, nil
				}
				g = int32(len(batches))
				e.groups[key] = g
				e.keys = append(e.keys, key)
				first = append(first, start+i)
				batches = append(batches, e.newBatch(e.room(key, len(rows), len(rows)-start-i)))
			}
			e.group = append(e.group, g)
		}
		for i, g := range e.group {
			batches[g].append(&chunk[i], proc)
		}
	}
	clear(e.last)
	for g, b := range batches {
		e.last[e.keys[g]] = b.n
	}
	e.lastRows = len(rows)

	var values [][]any
	if e.exact {
		values = make([][]any, len(batches))
		for g, i := range first {
			var err error
			if values[g], err = e.partitionValues(&rows[i]); err != nil {
				values = nil // cannot be (splitBy took only these types): the fanout writer's
				break
			}
		}
	}
	recs := make([]arrow.RecordBatch, len(batches))
	for g, b := range batches {
		recs[g] = e.finish(b)
	}
	return recs, values
}

// splitChunk is how many rows EncodeSplit reads at a time.
const splitChunk = 256

// partitionKey tells row r's partition apart (see partKey); the last number says which
// partition fields are null.
func (e *ContractEncoder) partitionKey(r *ledger.Row) [maxPartKeys + 1]int64 {
	var key [maxPartKeys + 1]int64
	vals := r.Custom.Values
	for j, p := range e.parts {
		v := &vals[p.field]
		switch {
		case !v.Valid:
			key[maxPartKeys] |= 1 << j
		case p.kind == keyString:
			s := r.Custom.Str(p.field)
			id, ok := e.intern[s]
			if !ok {
				id = int64(len(e.intern))
				e.intern[strings.Clone(s)] = id // not the row's memory: kept across calls
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
	return key
}

// room is the rows a new group's batch reserves, of n rows with left from its first on:
// its share of the last call's rows and a little more, or, for a partition the last call
// did not have, a few chunks' worth (its batch doubles as it fills).
func (e *ContractEncoder) room(key [maxPartKeys + 1]int64, n, left int) int {
	if c, ok := e.last[key]; ok && e.lastRows > 0 {
		share := c * n / e.lastRows
		return min(left, share+share/16+splitChunk)
	}
	return min(left, 4*splitChunk)
}

// maxSplit is the most batches EncodeSplit cuts rows into (a set of slices each): rows
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
