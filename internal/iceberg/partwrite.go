package iceberg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	ice "github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// A partitioned table's rows, split by the encoder into one batch per partition with its
// partition values (ContractEncoder.EncodeSplit), are written here, one Parquet file per
// partition, rather than by iceberg-go's fanout writer: the fanout writer works out every
// row's partition again (each value boxed, a map per row: 3.5 allocations a row) even when
// a batch holds one partition. The files are those iceberg-go writes: the same Parquet
// writer properties from the table's properties (writerProperties), the same file layout
// (data/<partition path>/<name>), and the DataFile built by iceberg-go from the file's
// metadata (table.DataFileFromMetadata: the same statistics code as its own writer).

// partitionFile is one partition's rows: its batches (more than one for the days of a
// month partition, say), partition values by the spec's fields, and partition path.
type partitionFile struct {
	recs   []arrow.RecordBatch
	values []any
	path   string // spec.PartitionToPath of values
}

// groupPartitions gathers batches of equal partition values into one partitionFile each,
// in the order of their first batch.
func groupPartitions(tbl *table.Table, recs []arrow.RecordBatch, values [][]any) []partitionFile {
	spec, schema := tbl.Spec(), tbl.Schema()
	var files []partitionFile
	byPath := map[string]int{}
	for i, rec := range recs {
		path := spec.PartitionToPath(partitionRecord(values[i]), schema)
		if j, ok := byPath[path]; ok {
			files[j].recs = append(files[j].recs, rec)
			continue
		}
		byPath[path] = len(files)
		files = append(files, partitionFile{recs: []arrow.RecordBatch{rec}, values: values[i], path: path})
	}
	return files
}

// ownWriteOK reports whether batches of schema can be written to the table by
// writePartitions: a table without a sort order (iceberg-go sorts each batch of a sorted
// one) whose data files are Parquet, and batches of the table's current schema, column for
// column by field id. Batches of an earlier schema (the table evolved since the encoder was
// made) are left to iceberg-go's writer, which writes them in the current one.
func ownWriteOK(tbl *table.Table, schema *arrow.Schema) bool {
	if tbl.SortOrder().Len() > 0 ||
		!strings.EqualFold(tbl.Properties().Get(table.WriteFormatDefaultKey, table.WriteFormatDefaultDefault), string(ice.ParquetFile)) {
		return false
	}
	fields := tbl.Schema().Fields()
	if len(fields) != schema.NumFields() {
		return false
	}
	for i, f := range fields {
		af := schema.Field(i)
		id, ok := af.Metadata.GetValue(fieldIDKey)
		if !ok || id != strconv.Itoa(f.ID) || af.Name != f.Name {
			return false
		}
	}
	return true
}

// fieldIDKey is the Arrow field metadata key of a column's Iceberg field id.
const fieldIDKey = "PARQUET:field_id"

// writePartitions writes each partition's batches as one Parquet data file, the files side
// by side (one goroutine per core), and returns them staged. It takes ownership of the
// batches; on an error the files written are deleted.
func (s *TableSink[R]) writePartitions(ctx context.Context, tbl *table.Table, files []partitionFile) (*Staged, error) {
	released := make([]bool, len(files))
	defer func() {
		for i, f := range files {
			if !released[i] {
				for _, rec := range f.recs {
					rec.Release()
				}
			}
		}
	}()
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("iceberg: stage to %s: %w", s.Name(), err)
	}
	wfs, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("iceberg: stage to %s: the table's file IO %T cannot write", s.Name(), fsys)
	}
	props := tbl.Properties()
	wp := writerProperties(props, files[0].recs[0].Schema())
	write := uuid.New()
	version := tbl.Metadata().Version()
	spec, schema := tbl.Spec(), tbl.Schema()

	staged := make([]ice.DataFile, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, f := range files {
		g.Go(func() error {
			defer func() {
				for _, rec := range f.recs {
					rec.Release()
				}
				released[i] = true
			}()
			if err := gctx.Err(); err != nil {
				return err
			}
			// iceberg-go's file layout: <table>/data/<partition path>/<name>, its name
			// pattern (partition number, task, write id, file number).
			loc, err := partitionLocation(tbl, f.path)
			if err != nil {
				return err
			}
			path := loc.NewDataLocation(fmt.Sprintf("%05d-0-%s-00001.parquet", i, write))
			byID := make(map[int]any, len(f.values))
			for j, pf := range spec.Fields() {
				byID[pf.FieldID] = f.values[j]
			}
			df, err := writeDataFile(wfs, wp, path, f.recs, table.DataFileArgs{
				Schema: schema, Spec: spec, Format: ice.ParquetFile, Content: ice.EntryContentData,
				PartitionValues: byID, Properties: props, FormatVersion: version,
			})
			if err != nil {
				return err
			}
			staged[i] = df
			return nil
		})
	}
	err = g.Wait()
	st := &Staged{}
	for _, df := range staged {
		if df != nil {
			st.files = append(st.files, df)
			st.rows += df.Count()
		}
	}
	if err != nil {
		derr := s.Discard(ctx, st)
		return nil, errors.Join(fmt.Errorf("iceberg: stage to %s: %w", s.Name(), err), derr)
	}
	return st, nil
}

// partitionLocation is where iceberg-go's writer puts a partition's data files: the table's
// location provider with the data path <table>/data/<partition path>.
func partitionLocation(tbl *table.Table, part string) (table.LocationProvider, error) {
	props := maps.Clone(tbl.Properties())
	if props == nil {
		props = ice.Properties{}
	}
	props[table.WriteDataPathKey] = strings.TrimSuffix(tbl.Location(), "/") + "/data/" + part
	loc, err := table.LoadLocationProvider(tbl.Location(), props)
	if err != nil {
		return nil, fmt.Errorf("location of partition %s: %w", part, err)
	}
	return loc, nil
}

// writeDataFile writes recs as one Parquet file at path and returns its DataFile (args
// without the path, size and metadata, which it fills in). The file is deleted on an error.
func writeDataFile(fsys iceio.WriteFileIO, wp *parquet.WriterProperties, path string, recs []arrow.RecordBatch, args table.DataFileArgs) (df ice.DataFile, err error) {
	out, err := fsys.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			if rerr := fsys.Remove(path); rerr != nil {
				slog.Warn("cannot delete a data file not written whole", "file", path, "error", rerr)
			}
		}
	}()
	counted := &countingWriter{w: out}
	w, err := pqarrow.NewFileWriter(recs[0].Schema(), counted, wp, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	for _, rec := range recs {
		if err := w.WriteBuffered(rec); err != nil {
			w.Close()
			out.Close()
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := w.Close(); err != nil {
		out.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	meta, err := w.FileMetadata()
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	args.Metadata, args.FilePath, args.FileSize = meta, path, counted.n
	if df, err = table.DataFileFromMetadata(args); err != nil {
		return nil, fmt.Errorf("data file %s: %w", path, err)
	}
	return df, nil
}

// countingWriter counts the bytes written through it (the file's size); it has no Close,
// so that the Parquet writer's Close leaves the file to writeDataFile.
type countingWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writerProperties are the Parquet writer properties iceberg-go's writer derives from the
// table's properties (table/internal's GetWriteProperties and getWriteProperties): row
// group and page limits, page version, compression and its level, bloom filters,
// dictionaries on or off by default and per column, and parquet-mr's cost-based
// dictionary fallback on every column (schema: the flat Arrow schema written).
func writerProperties(props ice.Properties, schema *arrow.Schema) *parquet.WriterProperties {
	version := parquet.DataPageV2
	if props.Get(table.ParquetPageVersionKey, table.ParquetPageVersionDefault) == "1" {
		version = parquet.DataPageV1
	}
	wp := []parquet.WriterProperty{
		parquet.WithMaxRowGroupLength(int64(props.GetInt(table.ParquetRowGroupLimitKey, table.ParquetRowGroupLimitDefault))),
		parquet.WithDataPageSize(int64(props.GetInt(table.ParquetPageSizeBytesKey, table.ParquetPageSizeBytesDefault))),
		parquet.WithDataPageVersion(version),
		parquet.WithBatchSize(int64(props.GetInt(table.ParquetPageRowLimitKey, table.ParquetPageRowLimitDefault))),
		parquet.WithDictionaryPageSizeLimit(int64(props.GetInt(table.ParquetDictSizeBytesKey, table.ParquetDictSizeBytesDefault))),
	}
	codec := compress.Codecs.Uncompressed
	switch props.Get(table.ParquetCompressionKey, table.ParquetCompressionDefault) {
	case "snappy":
		codec = compress.Codecs.Snappy
	case "zstd":
		codec = compress.Codecs.Zstd
	case "gzip":
		codec = compress.Codecs.Gzip
	case "brotli":
		codec = compress.Codecs.Brotli
	case "lz4":
		codec = compress.Codecs.Lz4
	case "lz4raw":
		codec = compress.Codecs.Lz4Raw
	case "lzo":
		codec = compress.Codecs.Lzo
	}
	wp = append(wp, parquet.WithCompression(codec),
		parquet.WithCompressionLevel(props.GetInt(table.ParquetCompressionLevelKey, table.ParquetCompressionLevelDefault)),
		parquet.WithMaxBloomFilterBytes(int64(props.GetInt(table.ParquetBloomFilterMaxBytesKey, table.ParquetBloomFilterMaxBytesDefault))))
	for key, val := range props {
		if col, ok := strings.CutPrefix(key, table.ParquetBloomFilterColumnEnabledKeyPrefix+"."); ok && col != "" {
			wp = append(wp, parquet.WithBloomFilterEnabledFor(col, strings.EqualFold(val, "true")))
		}
	}
	dict := true
	if val, ok := props[parquetDictionaryKey]; ok {
		dict = strings.EqualFold(val, "true")
	}
	wp = append(wp, parquet.WithDictionaryDefault(dict))
	for key, val := range props {
		if col, ok := strings.CutPrefix(key, parquetDictionaryColumnPrefix); ok && col != "" {
			wp = append(wp, parquet.WithDictionaryFor(col, strings.EqualFold(val, "true")))
		}
	}
	for _, f := range schema.Fields() {
		wp = append(wp, parquet.WithDictionaryCostFallbackFor(f.Name, true))
	}
	return parquet.NewWriterProperties(wp...)
}

// The dictionary properties iceberg-go reads (parquet-mr's key, then Iceberg's per column).
const (
	parquetDictionaryKey          = "parquet.enable.dictionary"
	parquetDictionaryColumnPrefix = "write.parquet.dict-encoding-enabled.column."
)

// partitionRecord is a row of partition values as iceberg.StructLike.
type partitionRecord []any

func (r partitionRecord) Size() int        { return len(r) }
func (r partitionRecord) Get(i int) any    { return r[i] }
func (r partitionRecord) Set(i int, v any) { r[i] = v }
