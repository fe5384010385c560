package iceberg

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// LedgerArrowSchema returns the Arrow schema of the ledger (decimal128(18,2),
// timestamp[us, UTC], int32, int64, utf8), each field carrying its Iceberg field id in
// PARQUET:field_id metadata so that the Parquet writer and iceberg-go match columns by id.
func LedgerArrowSchema() (*arrow.Schema, error) {
	sc, err := table.SchemaToArrowSchema(LedgerSchema(), nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("iceberg: ledger Arrow schema: %w", err)
	}
	return sc, nil
}

// RowEncoder turns ledger rows into Arrow record batches. It is not safe for concurrent use.
type RowEncoder struct {
	mem    memory.Allocator
	schema *arrow.Schema
}

// NewRowEncoder returns an encoder for LedgerArrowSchema. A nil mem means the Go allocator.
func NewRowEncoder(mem memory.Allocator) (*RowEncoder, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	sc, err := LedgerArrowSchema()
	if err != nil {
		return nil, err
	}
	// Check once what Encode relies on, so a change in iceberg-go's type mapping fails
	// loudly here rather than with a panic in the middle of a batch.
	want := []arrow.DataType{
		arrow.BinaryTypes.String, arrow.BinaryTypes.String, arrow.BinaryTypes.String,
		&arrow.Decimal128Type{Precision: 18, Scale: 2},
		arrow.BinaryTypes.String, arrow.BinaryTypes.String, arrow.BinaryTypes.String,
		&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64,
	}
	if sc.NumFields() != len(want) {
		return nil, fmt.Errorf("iceberg: ledger Arrow schema has %d fields, want %d", sc.NumFields(), len(want))
	}
	for i, t := range want {
		if !arrow.TypeEqual(sc.Field(i).Type, t) {
			return nil, fmt.Errorf("iceberg: ledger Arrow field %q is %s, want %s", sc.Field(i).Name, sc.Field(i).Type, t)
		}
	}
	return &RowEncoder{mem: mem, schema: sc}, nil
}

// Schema is the Arrow schema of the batches Encode returns.
func (e *RowEncoder) Schema() *arrow.Schema { return e.schema }

// Encode returns one record batch holding rows, with processing_time = processed for all of
// them. The builders are reserved to len(rows) (and the string data to its exact size) up
// front, so building costs no reallocation. The caller owns the batch (Release it).
func (e *RowEncoder) Encode(rows []ledger.Row, processed time.Time) arrow.RecordBatch {
	b := array.NewRecordBuilder(e.mem, e.schema)
	defer b.Release()
	n := len(rows)

	str := func(i int, size func(*ledger.Row) int) *array.StringBuilder {
		sb := b.Field(i).(*array.StringBuilder)
		sb.Reserve(n)
		total := 0
		for j := range rows {
			total += size(&rows[j])
		}
		sb.ReserveData(total)
		return sb
	}
	txID := str(0, func(r *ledger.Row) int { return len(r.TransactionID) })
	from := str(1, func(r *ledger.Row) int { return len(r.AccountFrom) })
	to := str(2, func(r *ledger.Row) int { return len(r.AccountTo) })
	amount := b.Field(3).(*array.Decimal128Builder)
	amount.Reserve(n)
	currency := str(4, func(r *ledger.Row) int { return len(r.Currency) })
	typ := str(5, func(r *ledger.Row) int { return len(r.TransactionType) })
	hash := str(6, func(r *ledger.Row) int { return len(r.TransactionHash) })
	eventTS := b.Field(7).(*array.TimestampBuilder)
	eventTS.Reserve(n)
	procTS := b.Field(8).(*array.TimestampBuilder)
	procTS.Reserve(n)
	topic := str(9, func(r *ledger.Row) int { return len(r.SourceTopic) })
	part := b.Field(10).(*array.Int32Builder)
	part.Reserve(n)
	off := b.Field(11).(*array.Int64Builder)
	off.Reserve(n)

	proc := arrow.Timestamp(processed.UnixMicro())
	for i := range rows {
		r := &rows[i]
		txID.Append(r.TransactionID)
		from.Append(r.AccountFrom)
		to.Append(r.AccountTo)
		amount.UnsafeAppend(decimal128.FromI64(r.Amount))
		currency.Append(r.Currency)
		typ.Append(r.TransactionType)
		hash.Append(r.TransactionHash)
		if r.EventTime.IsZero() {
			eventTS.AppendNull()
		} else {
			eventTS.UnsafeAppend(arrow.Timestamp(r.EventTime.UnixMicro()))
		}
		if processed.IsZero() {
			procTS.AppendNull()
		} else {
			procTS.UnsafeAppend(proc)
		}
		topic.Append(r.SourceTopic)
		part.UnsafeAppend(r.SourcePartition)
		off.UnsafeAppend(r.SourceOffset)
	}
	return b.NewRecordBatch()
}
