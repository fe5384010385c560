package iceberg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"maps"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// Staged is the engine.Staged of a Sink: Parquet data files written, not committed.
type Staged struct {
	files []ice.DataFile
	rows  int64
}

// Rows is how many rows the staged files hold.
func (s *Staged) Rows() int64 { return s.rows }

// Partitions is how many partitions of the table the staged files hold rows of (1 for an
// unpartitioned table, 0 without files): the engine sizes a partitioned table's parts by it.
func (s *Staged) Partitions() int {
	seen := make(map[string]bool, len(s.files))
	for _, f := range s.files {
		seen[fmt.Sprint(f.Partition())] = true
	}
	return len(seen)
}

// Files returns the staged data files.
func (s *Staged) Files() []ice.DataFile { return s.files }

// Paths returns the locations of the staged data files.
func (s *Staged) Paths() []string {
	p := make([]string, len(s.files))
	for i, f := range s.files {
		p[i] = f.FilePath()
	}
	return p
}

// Encoder turns a batch of rows of one table into one Arrow record batch built against
// the table's schema (field ids in the metadata). RowEncoder and RejectEncoder are the two.
type Encoder[R any] interface {
	// Encode returns the batch; processed is the batch's processing time. The caller
	// owns the result (Release it).
	Encode(rows []R, processed time.Time) arrow.RecordBatch
}

// TableSink is a table as an engine.Table[R] for one pipeline: rows of type R are encoded
// by an Encoder[R], staged as Parquet files, and committed with the exactly-once protocol.
// Commits append the staged files and set the pipeline's summary keys, conditionally on
// the branch main still being at the snapshot the batch was planned on. The ledger and the
// rejects table share this one implementation of Load, Commit and Discard.
type TableSink[R any] struct {
	cat      *Catalog
	ident    table.Identifier
	pipeline string
	newEnc   func() (Encoder[R], error)

	mu      sync.Mutex
	tbl     *table.Table // as of the last Load or successful Commit
	encs    []Encoder[R] // free encoders
	checked bool         // CheckFiles passed
	tried   bool         // CheckFiles ran (a retry re-reads the table)
}

// Sink is the ledger table's sink.
type Sink = TableSink[ledger.Row]

// RejectSink is the rejects table's sink.
type RejectSink = TableSink[ledger.RejectRow]

var (
	_ engine.Table[ledger.Row]       = (*Sink)(nil)
	_ engine.Table[ledger.RejectRow] = (*RejectSink)(nil)
)

// NewSink returns the Sink of pipeline on the ledger table ident, creating the table if it
// does not exist (EnsureTable with LedgerSchema).
func (c *Catalog) NewSink(ctx context.Context, ident table.Identifier, pipeline string) (*Sink, error) {
	return newTableSink(ctx, c, ident, pipeline, LedgerSchema(), func() (Encoder[ledger.Row], error) { return NewRowEncoder(nil) })
}

// NewRejectSink returns the sink of pipeline on the rejects table of the ledger ident
// (RejectsIdent), creating the table if it does not exist (EnsureTable with RejectsSchema).
func (c *Catalog) NewRejectSink(ctx context.Context, ledgerIdent table.Identifier, pipeline string) (*RejectSink, error) {
	tbl, err := c.EnsureRejectsTable(ctx, RejectsIdent(ledgerIdent))
	if err != nil {
		return nil, err
	}
	return c.NewRejectSinkOn(ledgerIdent, pipeline, tbl)
}

// NewRejectSinkOn is NewRejectSink on tbl, the rejects table as EnsureRejectsTable
// returned it: it loads nothing.
func (c *Catalog) NewRejectSinkOn(ledgerIdent table.Identifier, pipeline string, tbl *table.Table) (*RejectSink, error) {
	return newTableSinkOn(c, RejectsIdent(ledgerIdent), pipeline, tbl, func() (Encoder[ledger.RejectRow], error) { return NewRejectEncoder(nil) })
}

func newTableSink[R any](ctx context.Context, c *Catalog, ident table.Identifier, pipeline string, schema *ice.Schema, newEnc func() (Encoder[R], error)) (*TableSink[R], error) {
	if pipeline == "" {
		return nil, errors.New("iceberg: sink: empty pipeline id")
	}
	tbl, err := c.EnsureTable(ctx, ident, schema)
	if err != nil {
		return nil, err
	}
	return newTableSinkOn(c, ident, pipeline, tbl, newEnc)
}

// newTableSinkOn returns the sink of an existing table.
func newTableSinkOn[R any](c *Catalog, ident table.Identifier, pipeline string, tbl *table.Table, newEnc func() (Encoder[R], error)) (*TableSink[R], error) {
	if pipeline == "" {
		return nil, errors.New("iceberg: sink: empty pipeline id")
	}
	enc, err := newEnc() // fails early on a schema mismatch
	if err != nil {
		return nil, err
	}
	return &TableSink[R]{cat: c, ident: ident, pipeline: pipeline, newEnc: newEnc, encs: []Encoder[R]{enc}, tbl: tbl}, nil
}

// encoder takes an encoder from the sink's free list (encoders reuse their builders and are
// not safe for concurrent use); put it back with release.
func (s *TableSink[R]) encoder() (Encoder[R], error) {
	s.mu.Lock()
	if n := len(s.encs); n > 0 {
		enc := s.encs[n-1]
		s.encs = s.encs[:n-1]
		s.mu.Unlock()
		return enc, nil
	}
	s.mu.Unlock()
	return s.newEnc()
}

func (s *TableSink[R]) release(enc Encoder[R]) {
	s.mu.Lock()
	s.encs = append(s.encs, enc)
	s.mu.Unlock()
}

// Name is the table's identifier, namespace.table.
func (s *TableSink[R]) Name() string { return identString(s.ident) }

// Table returns the table as of the last Load or Commit.
func (s *TableSink[R]) Table() *table.Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tbl
}

// Load refreshes the table and returns the state of branch main for this pipeline: the
// current snapshot, and the offsets map and batch of the newest snapshot of the pipeline in
// main's history (foreign commits in between are skipped).
func (s *TableSink[R]) Load(ctx context.Context) (engine.TableState, error) {
	tbl, err := s.cat.loadTable(ctx, s.ident)
	if err != nil {
		return engine.TableState{}, retry.Tag(dependencyOf(err), fmt.Errorf("iceberg: load %s: %w", s.Name(), err))
	}
	st, err := pipelineState(tbl.Metadata(), s.pipeline)
	if err != nil {
		return engine.TableState{}, fmt.Errorf("iceberg: load %s: %w", s.Name(), err)
	}
	s.mu.Lock()
	s.tbl = tbl
	s.mu.Unlock()
	return st, nil
}

// CheckFiles checks the files the table is made of (Catalog.CheckFiles) the first time
// it is called, and does nothing after a check that passed: the engine calls it before its
// first batch, so that a worker refuses a damaged table at start whatever its local index
// holds (docs/design.md §7).
func (s *TableSink[R]) CheckFiles(ctx context.Context) error {
	s.mu.Lock()
	done, tbl, retried := s.checked, s.tbl, s.tried
	s.tried = true
	s.mu.Unlock()
	if done {
		return nil
	}
	started := time.Now()
	var n FilesChecked
	var err error
	if retried || tbl == nil {
		n, err = s.cat.CheckFiles(ctx, s.ident) // the table may have moved since
	} else {
		n, err = s.cat.checkFiles(ctx, tbl) // the table the sink was opened on, just loaded
	}
	if err != nil {
		return err
	}
	slog.Info("table files checked: every manifest reads, every data file is present with its size",
		"table", s.Name(), "manifests", n.Manifests, "data_files", n.DataFiles, "bytes", n.Bytes, "took", time.Since(started).Round(time.Millisecond))
	s.mu.Lock()
	s.checked = true
	s.mu.Unlock()
	return nil
}

// mainSnapshotID is the id of main's head, 0 when the table has no snapshot.
func mainSnapshotID(meta table.Metadata) int64 {
	if snap := meta.SnapshotByName(table.MainBranch); snap != nil {
		return snap.SnapshotID
	}
	return 0
}

// pipelineState is the state of branch main for pipeline: its head, and the offsets map and
// batch of the newest snapshot of the pipeline in its history (engine.NewestOfPipeline).
func pipelineState(meta table.Metadata, pipeline string) (engine.TableState, error) {
	st := engine.TableState{SnapshotID: mainSnapshotID(meta), Offsets: engine.Offsets{}}
	id, err := engine.NewestOfPipeline(st.SnapshotID, pipeline, snapshotLinks(meta))
	if errors.Is(err, engine.ErrHistoryTruncated) {
		if known, recorded := knownPipelines(meta.Properties()); engine.NeverCommitted(pipeline, known, recorded) {
			return st, nil // expired history, but this pipeline was never in it
		}
	}
	if err != nil || id == 0 {
		return st, err
	}
	snap := meta.SnapshotByID(id)
	o, b, clean, err := parseSummary(snap.Summary.Properties)
	if err != nil {
		return st, fmt.Errorf("snapshot %d: %w", id, err)
	}
	st.Offsets, st.Batch, st.Clean = o, b, clean
	if st.TopicIDs, err = parseTopicIDs(snap.Summary.Properties); err != nil {
		return st, fmt.Errorf("snapshot %d: %w", id, err)
	}
	return st, nil
}

// parseTopicIDs reads a summary's topic ids; nil when it has none.
func parseTopicIDs(p ice.Properties) (map[string]string, error) {
	s, ok := p[SummaryTopicIDs]
	if !ok {
		return nil, nil
	}
	return engine.UnmarshalTopicIDs(s)
}

// snapshotLinks is the lookup engine.NewestOfPipeline walks a table's history with.
func snapshotLinks(meta table.Metadata) func(int64) (engine.SnapshotLink, bool) {
	return func(id int64) (engine.SnapshotLink, bool) {
		snap := meta.SnapshotByID(id)
		if snap == nil {
			return engine.SnapshotLink{}, false
		}
		var l engine.SnapshotLink
		if snap.ParentSnapshotID != nil {
			l.Parent = *snap.ParentSnapshotID
		}
		if snap.Summary != nil {
			l.Pipeline = snap.Summary.Properties[SummaryPipeline]
		}
		return l, true
	}
}

// parseSummary reads the ledgerstream keys of a snapshot summary; clean is nil when the
// snapshot has none.
func parseSummary(p ice.Properties) (offsets engine.Offsets, batch int64, clean engine.Offsets, err error) {
	batch, err = strconv.ParseInt(p[SummaryBatch], 10, 64)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("bad %s %q: %w", SummaryBatch, p[SummaryBatch], err)
	}
	if offsets, err = engine.UnmarshalOffsets(p[SummaryOffsets]); err != nil {
		return nil, 0, nil, err
	}
	if c, ok := p[SummaryClean]; ok {
		if clean, err = engine.UnmarshalOffsets(c); err != nil {
			return nil, 0, nil, err
		}
	}
	return offsets, batch, clean, nil
}

// Stage writes rows as Parquet data files under the table's data location without
// committing them. Zero rows give a Staged with no files.
func (s *TableSink[R]) Stage(ctx context.Context, rows []R, processed time.Time) (engine.Staged, error) {
	if len(rows) == 0 {
		return &Staged{}, nil
	}
	// Parquet writing is the pipeline's largest cost per row and one file is written by one
	// goroutine: a large batch is cut into one file per core, written side by side.
	parts := min(runtime.GOMAXPROCS(0), len(rows)/minRowsPerFile)
	if s.partitioned() {
		// A partitioned table's fanout writer already writes each partition's file in
		// its own goroutine; cutting the batch as well would only double the files (one
		// per partition per part), and a file's fixed cost is much of a small one's.
		parts = 1
	}
	if parts <= 1 {
		return s.stageChunk(ctx, rows, processed)
	}
	staged := make([]*Staged, parts)
	g, gctx := errgroup.WithContext(ctx)
	size := (len(rows) + parts - 1) / parts
	for i := range parts {
		chunk := rows[i*size : min((i+1)*size, len(rows))]
		g.Go(func() error {
			var err error
			staged[i], err = s.stageChunk(gctx, chunk, processed)
			return err
		})
	}
	err := g.Wait()
	all := &Staged{}
	for _, st := range staged {
		if st != nil {
			all.rows += st.rows
			all.files = append(all.files, st.files...)
		}
	}
	if err != nil {
		return nil, errors.Join(err, s.Discard(ctx, all))
	}
	return all, nil
}

// minRowsPerFile keeps small batches in one file: splitting them saves little time and
// makes more files for compaction.
const minRowsPerFile = 25_000

// stageChunk encodes rows and writes them as data files.
func (s *TableSink[R]) stageChunk(ctx context.Context, rows []R, processed time.Time) (*Staged, error) {
	enc, err := s.encoder()
	if err != nil {
		return nil, err
	}
	var recs []arrow.RecordBatch
	if se, ok := enc.(splitEncoder[R]); ok && s.partitioned() {
		var values [][]any
		recs, values = se.EncodeSplit(rows, processed)
		s.release(enc)
		if tbl := s.Table(); values != nil && ownWriteOK(tbl, recs[0].Schema()) {
			return s.writePartitions(ctx, tbl, groupPartitions(tbl, recs, values))
		}
	} else {
		recs = []arrow.RecordBatch{enc.Encode(rows, processed)}
		s.release(enc)
	}
	return s.stageRecords(ctx, recs)
}

// A splitEncoder encodes the rows of a partitioned table as one record batch per partition,
// with each batch's partition values when it can tell them (ContractEncoder.EncodeSplit).
type splitEncoder[R any] interface {
	EncodeSplit(rows []R, processed time.Time) (recs []arrow.RecordBatch, values [][]any)
}

var _ splitEncoder[ledger.Row] = (*ContractEncoder)(nil)

// partitioned reports whether the table has a partition spec.
func (s *TableSink[R]) partitioned() bool {
	tbl := s.Table()
	return tbl != nil && !tbl.Spec().IsUnpartitioned()
}

// StageRecords writes one Arrow record batch (built against the table's schema, field ids in
// its metadata) as data files without committing them. It takes ownership of rec.
func (s *TableSink[R]) StageRecords(ctx context.Context, rec arrow.RecordBatch) (*Staged, error) {
	return s.stageRecords(ctx, []arrow.RecordBatch{rec})
}

// stageRecords is StageRecords for several batches, written in one go (a partitioned
// table's batches go to one file per partition, not one per batch). It takes ownership of
// recs.
func (s *TableSink[R]) stageRecords(ctx context.Context, recs []arrow.RecordBatch) (*Staged, error) {
	// WriteRecords releases each batch it consumes; release the others ourselves (an early
	// error).
	consumed := 0
	defer func() {
		for _, rec := range recs[consumed:] {
			rec.Release()
		}
	}()
	tbl := s.Table()
	if tbl == nil {
		return nil, fmt.Errorf("iceberg: stage to %s: table not loaded", s.Name())
	}
	st := &Staged{}
	for _, rec := range recs {
		st.rows += rec.NumRows()
	}
	if st.rows == 0 {
		return st, nil
	}
	records := func(yield func(arrow.RecordBatch, error) bool) {
		for consumed < len(recs) {
			rec := recs[consumed]
			consumed++
			if !yield(rec, nil) {
				return
			}
		}
	}
	var err error
	for df, werr := range table.WriteRecords(ctx, tbl, recs[0].Schema(), iter.Seq2[arrow.RecordBatch, error](records)) {
		if werr != nil {
			err = werr
			break
		}
		st.files = append(st.files, df)
	}
	if err != nil {
		derr := s.Discard(ctx, st)
		return nil, errors.Join(fmt.Errorf("iceberg: stage to %s: %w", s.Name(), err), derr)
	}
	return st, nil
}

// Commit appends staged's files in one new snapshot of branch main whose summary carries c,
// on the condition that main is still at base.SnapshotID. A staged batch without files still
// makes a snapshot (an empty append), so that offsets can move without data.
//
// errors.Is(err, engine.ErrConflict) means the condition failed and nothing was committed;
// any other error leaves the outcome unknown (settle it with Load).
func (s *TableSink[R]) Commit(ctx context.Context, base engine.TableState, staged engine.Staged, c engine.Commit) (engine.TableState, error) {
	st, ok := staged.(*Staged)
	if !ok || st == nil {
		return engine.TableState{}, fmt.Errorf("iceberg: commit to %s: staged batch of type %T is not this sink's", s.Name(), staged)
	}
	if c.Pipeline != s.pipeline {
		return engine.TableState{}, fmt.Errorf("iceberg: commit to %s: pipeline %q, this sink is %q", s.Name(), c.Pipeline, s.pipeline)
	}
	tbl := s.Table()
	if tbl == nil {
		return engine.TableState{}, fmt.Errorf("iceberg: commit to %s: table not loaded", s.Name())
	}
	// The transaction's requirement asserts the snapshot of the metadata it starts from, so
	// that metadata must be the one the batch was planned on.
	if cur := mainSnapshotID(tbl.Metadata()); cur != base.SnapshotID {
		return engine.TableState{}, fmt.Errorf("%w: %s is at snapshot %d, the batch was planned on %d",
			engine.ErrConflict, s.Name(), cur, base.SnapshotID)
	}

	props := ice.Properties{
		SummaryPipeline: c.Pipeline,
		SummaryBatch:    strconv.FormatInt(c.Batch, 10),
		SummaryOffsets:  engine.MarshalOffsets(c.Offsets),
	}
	if c.Clean != nil {
		props[SummaryClean] = engine.MarshalOffsets(c.Clean)
	}
	if len(c.TopicIDs) > 0 {
		props[SummaryTopicIDs] = engine.MarshalTopicIDs(c.TopicIDs)
	}
	txn := tbl.NewTransaction()
	if err := txn.AssertRefSnapshotID(table.MainBranch); err != nil {
		return engine.TableState{}, fmt.Errorf("iceberg: commit to %s: assert main: %w", s.Name(), err)
	}
	var err error
	if len(st.files) > 0 {
		// Staged file names are unique (a UUID each), so the duplicate check, which reads
		// every manifest of the table, is skipped: it would make commits O(table).
		err = txn.AddDataFiles(ctx, st.files, props, table.WithoutDuplicateCheck())
	} else {
		// AddDataFiles returns early with no files and stages nothing (transaction.go:1556),
		// and a transaction without updates never reaches the catalog. AddFiles with no
		// paths makes an empty fast-append snapshot that still carries props.
		err = txn.AddFiles(ctx, nil, props, true)
	}
	if err != nil {
		if d := headDamage(ctx, tbl, err); d != nil {
			return engine.TableState{}, d
		}
		return engine.TableState{}, fmt.Errorf("iceberg: commit to %s: nothing committed: %w", s.Name(), err)
	}
	newTbl, err := txn.Commit(ctx)
	if err != nil {
		if d := headDamage(ctx, tbl, err); d != nil {
			return engine.TableState{}, d // the new snapshot carries the head's manifests: nothing was sent
		}
		return engine.TableState{}, retry.Tag(dependencyOf(err), classifyCommitError(s.Name(), err))
	}
	s.mu.Lock()
	s.tbl = newTbl
	s.mu.Unlock()
	st2 := engine.TableState{
		SnapshotID: mainSnapshotID(newTbl.Metadata()),
		Offsets:    c.Offsets.Clone(),
		Batch:      c.Batch,
	}
	if c.Clean != nil {
		st2.Clean = c.Clean.Clone()
	}
	if len(c.TopicIDs) > 0 {
		st2.TopicIDs = maps.Clone(c.TopicIDs)
	}
	return st2, nil
}

// headDamage tells whether a commit on tbl failed with err because the manifest list of
// its head, which the new snapshot carries forward, cannot be read: a permanent
// *DamageError then, not an outcome to settle or an outage to wait out. Nil otherwise.
func headDamage(ctx context.Context, tbl *table.Table, err error) error {
	if isCommitConflict(err) || ctx.Err() != nil {
		return nil
	}
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil
	}
	fsys, ferr := tbl.FS(ctx)
	if ferr != nil {
		return nil
	}
	if _, merr := readManifestList(fsys, snap); merr != nil {
		de := &DamageError{Table: identString(tbl.Identifier()), Kind: FileManifestList, Path: snap.ManifestList, Records: -1}
		return damaged(fsys, de, -1, merr)
	}
	return nil
}

// dependencyOf says which dependency an error of the table's catalog or FileIO comes from:
// the storage for S3 (every AWS SDK error is a smithy.OperationError) and local files, the
// catalog otherwise.
func dependencyOf(err error) retry.Dependency {
	var op *smithy.OperationError
	var pe *fs.PathError
	if errors.As(err, &op) || errors.As(err, &pe) {
		return retry.Storage
	}
	return retry.Catalog
}

// classifyCommitError wraps engine.ErrConflict around the failures that prove nothing was
// committed because the table moved: table.ErrCommitFailed (REST 409, the SQL catalog's
// compare-and-swap on metadata_location), and the SQL catalog's requirement check, which
// returns plain errors (table/requirements.go) before it writes anything. Everything else is
// an unknown outcome.
func classifyCommitError(name string, err error) error {
	if isCommitConflict(err) {
		return fmt.Errorf("%w: %s: %w", engine.ErrConflict, name, err)
	}
	return fmt.Errorf("iceberg: commit to %s: outcome unknown: %w", name, err)
}

// isCommitConflict tells whether a commit failed because the table moved, nothing of it
// committed (see classifyCommitError).
func isCommitConflict(err error) bool {
	return errors.Is(err, table.ErrCommitFailed) || errors.Is(err, table.ErrCommitDiverged) || isRequirementFailure(err)
}

// isRequirementFailure tells whether err is the SQL catalog's requirement check refusing a
// commit because the table moved since it was loaded: a ref (a data commit) or the schema,
// its field ids, or its partition spec (a schema update). iceberg-go returns plain errors,
// capitalised or not ("requirement failed: branch \"main\" has changed", "Requirement
// failed: current schema id has changed").
func isRequirementFailure(err error) bool {
	msg := err.Error()
	if !strings.Contains(strings.ToLower(msg), "requirement failed:") {
		return false
	}
	return strings.Contains(msg, "has changed") ||
		strings.Contains(msg, "was created concurrently") ||
		strings.Contains(msg, "is missing, expected")
}

// Join makes one Staged of several of this sink's.
func (s *TableSink[R]) Join(parts []engine.Staged) engine.Staged {
	all := &Staged{}
	for _, p := range parts {
		if st, ok := p.(*Staged); ok && st != nil {
			all.rows += st.rows
			all.files = append(all.files, st.files...)
		}
	}
	return all
}

// Discard deletes the staged files through the table's FileIO. It tries every file and
// returns the errors joined.
func (s *TableSink[R]) Discard(ctx context.Context, staged engine.Staged) error {
	st, ok := staged.(*Staged)
	if !ok || st == nil || len(st.files) == 0 {
		return nil
	}
	tbl := s.Table()
	if tbl == nil {
		return fmt.Errorf("iceberg: discard from %s: table not loaded", s.Name())
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return fmt.Errorf("iceberg: discard from %s: %w", s.Name(), err)
	}
	var errs []error
	for _, f := range st.files {
		if err := fs.Remove(f.FilePath()); err != nil {
			errs = append(errs, fmt.Errorf("iceberg: discard %s: %w", f.FilePath(), err))
		}
	}
	return errors.Join(errs...)
}
