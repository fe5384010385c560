package iceberg

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// RejectsSuffix is appended to the ledger's table name to name its rejects table.
const RejectsSuffix = "_rejects"

// Rejects table column names (docs/design.md §2). source_* mean what they mean in the ledger.
const (
	ColKey            = "key"
	ColValue          = "value"
	ColValueSize      = "value_size"
	ColValueSHA256    = "value_sha256"
	ColKafkaTimestamp = "kafka_timestamp"
	ColReason         = "reason"
	ColMessage        = "message"
	ColRejectedAt     = "rejected_at"
	ColHeaders        = "headers"
	// ColHeaderKey and ColHeaderValue are the fields of a headers element.
	ColHeaderKey   = "key"
	ColHeaderValue = "value"
	// ColSourceOffsetLast is, in a gap row (reason lost_before_processing), the last offset
	// of the range lost; source_offset is the first. Null in every other row. It was added
	// to the table after its first release, by schema evolution (field id 17).
	ColSourceOffsetLast = "source_offset_last"
)

// RejectsIdent names the rejects table of the ledger ident: the same namespace, the table's
// name with RejectsSuffix.
func RejectsIdent(ledgerIdent table.Identifier) table.Identifier {
	id := slices.Clone(ledgerIdent)
	id[len(id)-1] += RejectsSuffix
	return id
}

// RejectsSchema returns the Iceberg schema of the rejects table: the columns a table is
// created with (rejectsBaseSchema), then the ones added since by schema evolution
// (rejectsAddedColumns), which every rejects table gets before it is written.
func RejectsSchema() *ice.Schema {
	base := rejectsBaseSchema()
	return ice.NewSchema(0, append(base.Fields(), rejectsAddedColumns()...)...)
}

// rejectsAddedColumns are the optional columns added to the rejects table after its first
// release, in the order they were added. They are never part of a CREATE: a catalog would
// give them fresh ids of its own choosing (level by level, a top-level column after
// headers would take id 14); added by schema evolution, each takes the table's next
// column id, the one listed here, whether the table is new or old.
func rejectsAddedColumns() []ice.NestedField {
	return []ice.NestedField{
		{ID: 17, Name: ColSourceOffsetLast, Type: ice.PrimitiveTypes.Int64,
			Doc: "for reason lost_before_processing: the last offset of the range lost (source_offset is the first)"},
	}
}

// rejectsBaseSchema is the rejects table as first released. The headers column is a
// list<struct<key string, value binary>>: Kafka headers are ordered and may repeat a key, so a
// map would lose information. It is the last column, so that its nested field ids (14..16)
// are the ones a catalog assigning fresh ids (depth first or level by level) gives too.
func rejectsBaseSchema() *ice.Schema {
	str, bin := ice.PrimitiveTypes.String, ice.PrimitiveTypes.Binary
	tstz := ice.PrimitiveTypes.TimestampTz
	return ice.NewSchema(0,
		ice.NestedField{ID: 1, Name: ColSourceTopic, Type: str, Required: true},
		ice.NestedField{ID: 2, Name: ColSourcePartition, Type: ice.PrimitiveTypes.Int32, Required: true},
		ice.NestedField{ID: 3, Name: ColSourceOffset, Type: ice.PrimitiveTypes.Int64, Required: true},
		ice.NestedField{ID: 4, Name: ColKey, Type: bin},
		ice.NestedField{ID: 5, Name: ColValue, Type: bin, Doc: "the message's value, cut to 64 KiB; null for a tombstone"},
		ice.NestedField{ID: 6, Name: ColValueSize, Type: ice.PrimitiveTypes.Int64, Required: true, Doc: "the whole value's size in bytes"},
		ice.NestedField{ID: 7, Name: ColValueSHA256, Type: str, Doc: "hex SHA-256 of the whole value"},
		ice.NestedField{ID: 8, Name: ColKafkaTimestamp, Type: tstz},
		ice.NestedField{ID: 9, Name: ColReason, Type: str, Required: true},
		ice.NestedField{ID: 10, Name: ColMessage, Type: str, Required: true},
		ice.NestedField{ID: 11, Name: ColTransactionID, Type: str},
		ice.NestedField{ID: 12, Name: ColRejectedAt, Type: tstz, Doc: "the processing time of the batch that rejected it"},
		ice.NestedField{ID: 13, Name: ColHeaders, Type: &ice.ListType{
			ElementID: 14, ElementRequired: true,
			Element: &ice.StructType{FieldList: []ice.NestedField{
				{ID: 15, Name: ColHeaderKey, Type: str, Required: true},
				{ID: 16, Name: ColHeaderValue, Type: bin},
			}},
		}},
	)
}

// RejectEncoder turns reject rows into Arrow record batches of the rejects table's schema.
// It is not safe for concurrent use.
type RejectEncoder struct {
	mem    memory.Allocator
	schema *arrow.Schema
}

// NewRejectEncoder returns an encoder for the rejects table. A nil mem means the Go allocator.
func NewRejectEncoder(mem memory.Allocator) (*RejectEncoder, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	sc, err := table.SchemaToArrowSchema(RejectsSchema(), nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("iceberg: rejects Arrow schema: %w", err)
	}
	// Check once what Encode's type assertions rely on (see NewRowEncoder).
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	want := []arrow.DataType{
		arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64,
		arrow.BinaryTypes.Binary, arrow.BinaryTypes.Binary, arrow.PrimitiveTypes.Int64,
		arrow.BinaryTypes.String, ts, arrow.BinaryTypes.String, arrow.BinaryTypes.String,
		arrow.BinaryTypes.String, ts,
	}
	if sc.NumFields() != len(want)+2 {
		return nil, fmt.Errorf("iceberg: rejects Arrow schema has %d fields, want %d", sc.NumFields(), len(want)+2)
	}
	if last := sc.Field(len(want) + 1); !arrow.TypeEqual(last.Type, arrow.PrimitiveTypes.Int64) {
		return nil, fmt.Errorf("iceberg: rejects Arrow field %q is %s, want int64", last.Name, last.Type)
	}
	for i, t := range want {
		if !arrow.TypeEqual(sc.Field(i).Type, t) {
			return nil, fmt.Errorf("iceberg: rejects Arrow field %q is %s, want %s", sc.Field(i).Name, sc.Field(i).Type, t)
		}
	}
	lt, ok := sc.Field(len(want)).Type.(*arrow.ListType)
	if !ok {
		return nil, fmt.Errorf("iceberg: rejects Arrow field %q is %s, want a list", sc.Field(len(want)).Name, sc.Field(len(want)).Type)
	}
	st, ok := lt.Elem().(*arrow.StructType)
	if !ok || st.NumFields() != 2 || !arrow.TypeEqual(st.Field(0).Type, arrow.BinaryTypes.String) ||
		!arrow.TypeEqual(st.Field(1).Type, arrow.BinaryTypes.Binary) {
		return nil, fmt.Errorf("iceberg: rejects Arrow headers element is %s, want struct<string, binary>", lt.Elem())
	}
	return &RejectEncoder{mem: mem, schema: sc}, nil
}

// Schema is the Arrow schema of the batches Encode returns.
func (e *RejectEncoder) Schema() *arrow.Schema { return e.schema }

// Encode returns one record batch holding rows, with rejected_at = processed for all of
// them. Empty strings of optional columns (value_sha256, transaction_id) and zero times are
// written as nulls; a nil key or value is null, an empty one is an empty binary.
func (e *RejectEncoder) Encode(rows []ledger.RejectRow, processed time.Time) arrow.RecordBatch {
	b := array.NewRecordBuilder(e.mem, e.schema)
	defer b.Release()
	b.Reserve(len(rows))
	topic := b.Field(0).(*array.StringBuilder)
	part := b.Field(1).(*array.Int32Builder)
	off := b.Field(2).(*array.Int64Builder)
	key := b.Field(3).(*array.BinaryBuilder)
	value := b.Field(4).(*array.BinaryBuilder)
	size := b.Field(5).(*array.Int64Builder)
	sum := b.Field(6).(*array.StringBuilder)
	kts := b.Field(7).(*array.TimestampBuilder)
	reason := b.Field(8).(*array.StringBuilder)
	msg := b.Field(9).(*array.StringBuilder)
	txID := b.Field(10).(*array.StringBuilder)
	rejAt := b.Field(11).(*array.TimestampBuilder)
	headers := b.Field(12).(*array.ListBuilder)
	hdr := headers.ValueBuilder().(*array.StructBuilder)
	hkey := hdr.FieldBuilder(0).(*array.StringBuilder)
	hval := hdr.FieldBuilder(1).(*array.BinaryBuilder)
	last := b.Field(13).(*array.Int64Builder)

	appendBytes := func(bb *array.BinaryBuilder, v []byte) {
		if v == nil {
			bb.AppendNull()
		} else {
			bb.Append(v)
		}
	}
	appendString := func(sb *array.StringBuilder, v string) {
		if v == "" {
			sb.AppendNull()
		} else {
			sb.Append(v)
		}
	}
	appendTime := func(tb *array.TimestampBuilder, t time.Time) {
		if t.IsZero() {
			tb.AppendNull()
		} else {
			tb.Append(arrow.Timestamp(t.UnixMicro()))
		}
	}
	for i := range rows {
		r := &rows[i]
		topic.Append(r.SourceTopic)
		part.Append(r.SourcePartition)
		off.Append(r.SourceOffset)
		appendBytes(key, r.Key)
		appendBytes(value, r.Value)
		size.Append(r.ValueSize)
		appendString(sum, r.ValueSHA256)
		appendTime(kts, r.KafkaTimestamp)
		reason.Append(string(r.Reason))
		msg.Append(r.Message)
		appendString(txID, r.TransactionID)
		appendTime(rejAt, processed)
		headers.Append(true)
		for _, h := range r.Headers {
			hdr.Append(true)
			hkey.Append(h.Key)
			appendBytes(hval, h.Value)
		}
		if r.IsGap() {
			last.Append(r.LastOffset)
		} else {
			last.AppendNull()
		}
	}
	return b.NewRecordBatch()
}

// ScanRejects reads the rejects table rejectsIdent at snapshotID (0: main's head) and calls
// fn for every row with its rejected_at (zero when null). Batches are streamed; the row's
// strings and byte slices are copies, safe to keep. An error from fn stops the scan and is
// returned as is. A table (or snapshot) from before source_offset_last existed is read
// without it: it holds no gap rows.
func (c *Catalog) ScanRejects(ctx context.Context, rejectsIdent table.Identifier, snapshotID int64, fn func(row ledger.RejectRow, rejectedAt time.Time) error) error {
	return c.ScanRejectsWhere(ctx, rejectsIdent, snapshotID, nil, fn)
}

// ScanRejectsWhere is ScanRejects for the rows that match filter only (nil: all).
func (c *Catalog) ScanRejectsWhere(ctx context.Context, rejectsIdent table.Identifier, snapshotID int64, filter ice.BooleanExpression, fn func(row ledger.RejectRow, rejectedAt time.Time) error) error {
	return c.ScanRejectsOpts(ctx, rejectsIdent, ScanOptions{SnapshotID: snapshotID, Filter: filter}, fn)
}

// ScanRejectsOpts is ScanRejects as opts say: a snapshot, a filter, and what to do with a
// file that cannot be read.
func (c *Catalog) ScanRejectsOpts(ctx context.Context, rejectsIdent table.Identifier, opts ScanOptions, fn func(row ledger.RejectRow, rejectedAt time.Time) error) error {
	fields := []string{
		ColSourceTopic, ColSourcePartition, ColSourceOffset, ColKey, ColValue, ColValueSize,
		ColValueSHA256, ColKafkaTimestamp, ColReason, ColMessage, ColTransactionID, ColRejectedAt,
		ColHeaders}
	tbl, err := c.LoadTable(ctx, rejectsIdent)
	if err != nil {
		return err
	}
	if _, ok := scanSchema(tbl.Metadata(), opts.SnapshotID).FindFieldByName(ColSourceOffsetLast); ok {
		fields = append(fields, ColSourceOffsetLast)
	}
	return c.scanFiles(ctx, rejectsIdent, opts, fields, func(rec arrow.RecordBatch) error { return eachRejectRow(rec, fn) })
}

// scanSchema is the schema a scan of snapshotID (0: main's head) reads with: the
// snapshot's own for a time-travel scan, the current one otherwise.
func scanSchema(meta table.Metadata, snapshotID int64) *ice.Schema {
	if snapshotID != 0 {
		if snap := meta.SnapshotByID(snapshotID); snap != nil && snap.SchemaID != nil {
			for _, sc := range meta.Schemas() {
				if sc.ID == *snap.SchemaID {
					return sc
				}
			}
		}
	}
	return meta.CurrentSchema()
}

// batchColumns finds a record batch's columns by name and type, collecting every problem so
// that a schema mismatch is reported at once, whole.
type batchColumns struct {
	rec  arrow.RecordBatch
	errs []string
}

func (b *batchColumns) col(name string) arrow.Array {
	idx := b.rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		b.errs = append(b.errs, fmt.Sprintf("column %q missing", name))
		return nil
	}
	return b.rec.Column(idx[0])
}

func (b *batchColumns) wrongType(name string, a arrow.Array, want string) {
	if a != nil {
		b.errs = append(b.errs, fmt.Sprintf("column %q is %s, want %s", name, a.DataType(), want))
	}
}

// typed returns column name as a T, noting a problem (want says what T is) when it is not.
func typed[T arrow.Array](b *batchColumns, name, want string) T {
	a := b.col(name)
	t, ok := a.(T)
	if !ok {
		b.wrongType(name, a, want)
	}
	return t
}

func (b *batchColumns) str(name string) stringColumn { return typed[stringColumn](b, name, "a string") }

// binaryColumn is what binary and large_binary arrays have in common.
type binaryColumn interface {
	arrow.Array
	Value(int) []byte
}

func (b *batchColumns) bin(name string) binaryColumn { return typed[binaryColumn](b, name, "binary") }

func (b *batchColumns) int32s(name string) *array.Int32 { return typed[*array.Int32](b, name, "int32") }

func (b *batchColumns) int64s(name string) *array.Int64 { return typed[*array.Int64](b, name, "int64") }

func (b *batchColumns) times(name string) func(int) time.Time {
	ts := typed[*array.Timestamp](b, name, "a timestamp")
	if ts == nil {
		return nil
	}
	conv, err := timestampConverter(ts)
	if err != nil {
		b.errs = append(b.errs, err.Error())
	}
	return conv
}

func (b *batchColumns) err() error {
	if len(b.errs) == 0 {
		return nil
	}
	return fmt.Errorf("iceberg: scan: %s in %s", strings.Join(b.errs, "; "), b.rec.Schema())
}

func eachRejectRow(rec arrow.RecordBatch, fn func(ledger.RejectRow, time.Time) error) error {
	c := &batchColumns{rec: rec}
	topic, part, off := c.str(ColSourceTopic), c.int32s(ColSourcePartition), c.int64s(ColSourceOffset)
	key, value, size, sum := c.bin(ColKey), c.bin(ColValue), c.int64s(ColValueSize), c.str(ColValueSHA256)
	kts, reason, msg, txID := c.times(ColKafkaTimestamp), c.str(ColReason), c.str(ColMessage), c.str(ColTransactionID)
	rejAt := c.times(ColRejectedAt)
	var last *array.Int64
	if len(rec.Schema().FieldIndices(ColSourceOffsetLast)) > 0 {
		last = c.int64s(ColSourceOffsetLast)
	}
	headersA := c.col(ColHeaders)
	headers, ok := headersA.(array.ListLike)
	var hkey stringColumn
	var hval binaryColumn
	if !ok {
		c.wrongType(ColHeaders, headersA, "a list")
	} else if st, ok := headers.ListValues().(*array.Struct); !ok || st.NumField() != 2 {
		c.wrongType(ColHeaders, headersA, "a list of struct<key, value>")
	} else {
		hkey, _ = st.Field(0).(stringColumn)
		hval, _ = st.Field(1).(binaryColumn)
		if hkey == nil || hval == nil {
			c.wrongType(ColHeaders, headersA, "a list of struct<key string, value binary>")
		}
	}
	if err := c.err(); err != nil {
		return err
	}

	bytesAt := func(a binaryColumn, i int) []byte {
		if a.IsNull(i) {
			return nil
		}
		return append([]byte{}, a.Value(i)...) // never nil: an empty value stays empty, not null
	}
	strAt := func(a stringColumn, i int) string {
		if a.IsNull(i) {
			return ""
		}
		return strings.Clone(a.Value(i))
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		r := ledger.RejectRow{
			SourceTopic:     strAt(topic, i),
			SourcePartition: part.Value(i),
			SourceOffset:    off.Value(i),
			Key:             bytesAt(key, i),
			Value:           bytesAt(value, i),
			ValueSize:       size.Value(i),
			ValueSHA256:     strAt(sum, i),
			KafkaTimestamp:  kts(i),
			Reason:          ledger.Reason(strAt(reason, i)),
			Message:         strAt(msg, i),
			TransactionID:   strAt(txID, i),
		}
		if last != nil && !last.IsNull(i) {
			r.LastOffset = last.Value(i)
		}
		if !headers.IsNull(i) {
			start, end := headers.ValueOffsets(i)
			for j := int(start); j < int(end); j++ {
				r.Headers = append(r.Headers, ledger.Header{Key: strAt(hkey, j), Value: bytesAt(hval, j)})
			}
		}
		if err := fn(r, rejAt(i)); err != nil {
			return err
		}
	}
	return nil
}
