package iceberg

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

func arrowTable(rec arrow.RecordBatch) arrow.Table {
	return array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
}
