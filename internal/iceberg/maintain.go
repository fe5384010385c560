package iceberg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"

	"github.com/ledgerstream/ledgerstream/internal/engine"
)

// Maintenance keeps a table that receives a commit every second cheap to commit to: without
// it every batch adds a snapshot, a manifest, a data file and a metadata file forever, and
// commit latency grows with the snapshot count.
//
// Every maintenance commit is a metadata change or a "replace" snapshot that keeps every row,
// and it adds no ledgerstream.* summary key: Load walks past it to the pipeline's newest
// snapshot, so the offsets map is carried forward unchanged (docs/design.md §4). Expiry keeps, on
// main, the newest snapshot of every pipeline found in its history and every snapshot newer
// than it, so the walk always ends at an offsets map, never at a cut history.

// Defaults of MaintainOptions.
const (
	DefaultRetainLast      = 100
	DefaultOrphanOlderThan = time.Hour
	DefaultMinInputFiles   = 5
	// MetadataVersionsMax is how many previous metadata files a table keeps in its log
	// (write.metadata.previous-versions-max); older ones are deleted after each commit.
	MetadataVersionsMax = 20
)

// MaintainOptions say what Maintain does. The zero value does everything with the defaults.
type MaintainOptions struct {
	// RetainLast keeps at least this many snapshots of main (DefaultRetainLast when 0).
	RetainLast int
	// OlderThan protects snapshots younger than this from expiry; 0 protects none beyond
	// RetainLast. A snapshot is expired only when it is beyond RetainLast and older.
	OlderThan time.Duration
	// OrphanOlderThan is the safety margin of orphan removal: only files older than this are
	// candidates, so that the files of a batch being committed right now are never touched
	// (DefaultOrphanOlderThan when 0).
	OrphanOlderThan time.Duration
	// TargetFileSize is the size compaction packs data files toward (0: the table's
	// write.target-file-size-bytes).
	TargetFileSize int64
	// MinInputFiles is the fewest small files worth one rewrite (DefaultMinInputFiles when 0).
	MinInputFiles int

	SkipCompaction, SkipManifests, SkipExpiry, SkipOrphans bool

	// DryRun plans every step and changes nothing.
	DryRun bool
	// ConflictTimeout bounds how long one maintenance commit keeps trying against a table
	// that keeps moving: pipeline commits landing between its read of the head and its
	// commit (DefaultConflictTimeout when 0). Each retry re-applies the files already
	// written to the new head after a jittered backoff; it never rewrites data again. A
	// count would not do: a table that many workers commit to every second can refuse
	// twenty attempts in a few seconds while each of them nearly made it.
	ConflictTimeout time.Duration
	Logger          *slog.Logger

	// beforeCommit, in tests, runs just before each maintenance commit reaches the catalog,
	// so that a test can make a pipeline commit land in between.
	beforeCommit func(step string, attempt int)
}

func (o *MaintainOptions) defaults() {
	if o.RetainLast <= 0 {
		o.RetainLast = DefaultRetainLast
	}
	if o.OrphanOlderThan <= 0 {
		o.OrphanOlderThan = DefaultOrphanOlderThan
	}
	if o.MinInputFiles <= 0 {
		o.MinInputFiles = DefaultMinInputFiles
	}
	if o.ConflictTimeout <= 0 {
		o.ConflictTimeout = DefaultConflictTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// MaintainResult is what Maintain did, or would do with DryRun. Its JSON form (maintain
// --json) has snake_case names and every field, lists and maps empty rather than null.
type MaintainResult struct {
	Table  string `json:"table"`
	DryRun bool   `json:"dry_run"`
	// PropertiesSet are the maintenance properties added to a table that lacked them.
	PropertiesSet map[string]string `json:"properties_set"`

	Compaction struct {
		Groups       int   `json:"groups"`
		InputFiles   int   `json:"input_files"`
		OutputFiles  int   `json:"output_files"`
		InputBytes   int64 `json:"input_bytes"`
		OutputBytes  int64 `json:"output_bytes"`
		FilesBefore  int   `json:"files_before"`
		SkippedFiles int   `json:"skipped_files"`
	} `json:"compaction"`
	Manifests struct {
		Before int `json:"before"`
		After  int `json:"after"`
	} `json:"manifests"`
	Expiry struct {
		SnapshotsBefore int     `json:"snapshots_before"`
		Expired         []int64 `json:"expired"`
		// Protected maps each pipeline to its newest snapshot, which expiry kept.
		Protected map[string]int64 `json:"protected"`
		// Retained is how many snapshots of main's history were kept.
		Retained int `json:"retained"`
	} `json:"expiry"`
	Orphans struct {
		Files   []string `json:"files"`
		Bytes   int64    `json:"bytes"`
		Deleted int      `json:"deleted"`
	} `json:"orphans"`
	// Conflicts counts maintenance commits retried because another writer committed first.
	Conflicts int `json:"conflicts"`
}

// MarshalJSON writes r with empty lists and maps instead of null, so that a reader can
// count without checking for null first.
func (r *MaintainResult) MarshalJSON() ([]byte, error) {
	type plain MaintainResult // without this method
	c := plain(*r)
	if c.PropertiesSet == nil {
		c.PropertiesSet = map[string]string{}
	}
	if c.Expiry.Expired == nil {
		c.Expiry.Expired = []int64{}
	}
	if c.Expiry.Protected == nil {
		c.Expiry.Protected = map[string]int64{}
	}
	if c.Orphans.Files == nil {
		c.Orphans.Files = []string{}
	}
	return json.Marshal(c)
}

// Maintain merges manifests, compacts small data files, expires snapshots and removes orphan
// files of the table ident, in that order (so that files compacted away are freed by the
// expiry of the snapshots that still referenced them). It is safe while a pipeline commits to
// the same table: see the package comment above.
func (c *Catalog) Maintain(ctx context.Context, ident table.Identifier, opts MaintainOptions) (*MaintainResult, error) {
	opts.defaults()
	m := &maintainer{c: c, ident: ident, opts: opts, res: &MaintainResult{Table: identString(ident), DryRun: opts.DryRun}}
	steps := []struct {
		name string
		skip bool
		fn   func(context.Context) error
	}{
		{"set maintenance properties", false, m.properties},
		// Manifests first: compaction's replace then reads few of them, which keeps the
		// window in which a pipeline's commit can make it conflict short.
		{"rewrite manifests", opts.SkipManifests, m.manifests},
		{"compact data files", opts.SkipCompaction, m.compact},
		{"expire snapshots", opts.SkipExpiry, m.expire},
		{"remove orphan files", opts.SkipOrphans, m.orphans},
	}
	for _, s := range steps {
		if s.skip {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return m.res, fmt.Errorf("iceberg: maintain %s: %s: %w", identString(ident), s.name, err)
		}
	}
	return m.res, nil
}

type maintainer struct {
	c     *Catalog
	ident table.Identifier
	opts  MaintainOptions
	res   *MaintainResult
}

// commit runs build on the table's current state and commits the transaction, retrying
// from a fresh state while the commit conflicts with another writer. build returns nil to
// say there is nothing to do. Errors other than a conflict are returned as they are; the
// caller decides what the files it wrote become.
func (m *maintainer) commit(ctx context.Context, what string, build func(*table.Table) (*table.Transaction, error)) (*table.Table, error) {
	var lastErr error
	var since time.Time // the first conflict's
	for attempt := 1; ; attempt++ {
		tbl, err := m.c.LoadTable(ctx, m.ident)
		if err != nil {
			return nil, err
		}
		txn, err := build(tbl)
		if err != nil || txn == nil {
			return nil, err
		}
		if m.opts.beforeCommit != nil {
			m.opts.beforeCommit(what, attempt)
		}
		next, err := txn.Commit(ctx)
		if err == nil {
			return next, nil
		}
		if next != nil && allNotExist(err) {
			// Expiry deleting files already gone: the data files a compaction replaced
			// are listed again (as deleted entries) by the replace snapshot's manifest.
			m.opts.Logger.Debug("maintenance committed; some unreferenced files were already deleted",
				"table", identString(m.ident), "step", what, "error", firstLine(err))
			return next, nil
		}
		if next != nil {
			// The catalog accepted the commit; only the clean-up after it failed (a file
			// that could not be deleted). What it left is an orphan for the orphan step.
			m.opts.Logger.Warn("maintenance committed; some unreferenced files were not deleted",
				"table", identString(m.ident), "step", what, "error", firstLine(err))
			return next, nil
		}
		cerr := classifyCommitError(identString(m.ident), err)
		if !errors.Is(cerr, engine.ErrConflict) {
			return nil, fmt.Errorf("%w: %w", errOutcomeUnknown, cerr)
		}
		lastErr = cerr
		m.res.Conflicts++
		if since.IsZero() {
			since = time.Now()
		}
		if waited := time.Since(since); waited > m.opts.ConflictTimeout {
			return nil, fmt.Errorf("%s of %s: gave up after %d conflicts in %s: other writers (pipeline workers) committed to the table before each attempt could; "+
				"this step's commit did not land; run maintain again when the table is less busy (automatic maintenance tries again at its next run): %w",
				what, identString(m.ident), attempt, waited.Round(time.Millisecond), lastErr)
		}
		m.opts.Logger.Debug("maintenance commit conflicted; retrying on the new head", "table", identString(m.ident), "step", what, "attempt", attempt)
		if err := sleepCtx(ctx, conflictBackoff(attempt)); err != nil {
			return nil, err
		}
	}
}

// DefaultConflictTimeout is MaintainOptions.ConflictTimeout's default.
const DefaultConflictTimeout = 2 * time.Minute

// conflictBackoff is the pause before a maintenance commit's next attempt after its n-th
// conflict: 20 ms doubled per conflict up to 1 s, less a random part of up to half, so
// that maintenance does not retry in step with the workers whose commits refused it.
func conflictBackoff(n int) time.Duration {
	d := min(20*time.Millisecond<<min(n-1, 6), time.Second)
	return d/2 + rand.N(d/2+1)
}

// maintenanceProperties keep old metadata files from piling up: iceberg-go deletes the
// files that fall out of the metadata log after each commit.
func maintenanceProperties() ice.Properties {
	return ice.Properties{
		table.MetadataDeleteAfterCommitEnabledKey: "true",
		table.MetadataPreviousVersionsMaxKey:      strconv.Itoa(MetadataVersionsMax),
	}
}

// properties adds the maintenance properties to a table created without them (before
// ledgerstream set them, or by another tool). Values an operator chose are left alone.
func (m *maintainer) properties(ctx context.Context) error {
	missing := func(tbl *table.Table) ice.Properties {
		add := ice.Properties{}
		have := tbl.Properties()
		for k, v := range maintenanceProperties() {
			if _, ok := have[k]; !ok {
				add[k] = v
			}
		}
		return add
	}
	tbl, err := m.c.LoadTable(ctx, m.ident)
	if err != nil {
		return err
	}
	add := missing(tbl)
	if len(add) == 0 {
		return nil
	}
	m.res.PropertiesSet = add
	if m.opts.DryRun {
		return nil
	}
	_, err = m.commit(ctx, "set properties", func(tbl *table.Table) (*table.Transaction, error) {
		add := missing(tbl)
		if len(add) == 0 {
			return nil, nil
		}
		txn := tbl.NewTransaction()
		return txn, txn.SetProperties(add)
	})
	return err
}

// compact merges small data files of similar size (tieredGroups) toward the target size.
// The new files are written once; a commit that conflicts with a pipeline's append is
// re-applied to the new head (a replace of the same files), so a pipeline committing every
// second cannot starve it and it costs the pipeline at most one conflict.
func (m *maintainer) compact(ctx context.Context) error {
	tbl, err := m.c.LoadTable(ctx, m.ident)
	if err != nil {
		return err
	}
	if mainSnapshotID(tbl.Metadata()) == 0 {
		return nil
	}
	target := m.opts.TargetFileSize
	if target <= 0 {
		target = int64(tbl.Properties().GetInt(table.WriteTargetFileSizeBytesKey, table.WriteTargetFileSizeBytesDefault))
	}
	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes = target
	cfg.MinFileSizeBytes = target * 3 / 4
	cfg.MaxFileSizeBytes = target * 9 / 5
	cfg.MinInputFiles = 1 // every candidate; tieredGroups decides what is worth a rewrite
	plan, err := compaction.Analyze(ctx, tbl, cfg)
	if err != nil {
		return err
	}
	plan.Groups, plan.SkippedFiles = tieredGroups(plan, m.opts.MinInputFiles, target)
	r := &m.res.Compaction
	r.FilesBefore, r.SkippedFiles, r.Groups = plan.TotalInputFiles, plan.SkippedFiles, len(plan.Groups)
	// The plan's estimates were made for its own groups: estimate the tiered ones, as
	// PlanCompaction does (a file per target size, at least one a group).
	plan.EstOutputFiles, plan.EstOutputBytes = 0, 0
	for _, g := range plan.Groups {
		r.InputFiles += len(g.Tasks)
		r.InputBytes += g.TotalSizeBytes
		plan.EstOutputFiles += max(1, int((g.TotalSizeBytes+target-1)/target))
		plan.EstOutputBytes += g.TotalSizeBytes
	}
	if m.opts.DryRun || len(plan.Groups) == 0 {
		r.OutputFiles, r.OutputBytes = plan.EstOutputFiles, plan.EstOutputBytes
		return nil
	}

	var results []table.CompactionGroupResult
	discard := func() {
		for _, gr := range results {
			m.removeFiles(ctx, tbl, gr.NewDataFiles)
		}
	}
	for _, g := range plan.Groups {
		gr, err := table.ExecuteCompactionGroup(ctx, tbl,
			table.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes},
			table.WithCompactionTargetFileSize(target))
		results = append(results, gr)
		if err != nil {
			discard()
			return err
		}
	}
	_, err = m.commit(ctx, "compaction", func(tbl *table.Table) (*table.Transaction, error) {
		txn := tbl.NewTransaction()
		// No snapshot properties: a replace keeps rows, and Load must walk past it.
		rw := txn.NewRewrite(nil)
		for _, gr := range results {
			rw.ApplyResult(gr)
		}
		return txn, rw.Commit(ctx)
	})
	if err != nil {
		if !errors.Is(err, errOutcomeUnknown) {
			discard() // the commit surely did not land: nothing references them
		}
		return err
	}
	for _, gr := range results {
		r.OutputFiles += len(gr.NewDataFiles)
		r.OutputBytes += gr.BytesAfter
	}
	m.opts.Logger.Info("compacted data files", "table", identString(m.ident), "groups", r.Groups,
		"files_in", r.InputFiles, "files_out", r.OutputFiles, "bytes_in", r.InputBytes, "bytes_out", r.OutputBytes)
	return nil
}

// errOutcomeUnknown marks a commit error after which the catalog may have accepted the
// commit: the files it references must stay (orphan removal collects them if it did not).
var errOutcomeUnknown = errors.New("commit outcome unknown")

// removeFiles deletes files this run wrote and no snapshot references. Best effort: what
// stays behind is an orphan for a later run.
func (m *maintainer) removeFiles(ctx context.Context, tbl *table.Table, files []ice.DataFile) {
	if len(files) == 0 {
		return
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		m.opts.Logger.Warn("cannot delete unused compaction output; orphan removal will", "error", err)
		return
	}
	for _, f := range files {
		if err := fsys.Remove(f.FilePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.opts.Logger.Warn("cannot delete unused compaction output; orphan removal will", "file", f.FilePath(), "error", err)
		}
	}
}

// manifests merges main's manifests into target-sized ones: each fast append adds one, and
// the manifest list every commit rewrites would otherwise grow with the table's age.
func (m *maintainer) manifests(ctx context.Context) error {
	tbl, err := m.c.LoadTable(ctx, m.ident)
	if err != nil {
		return err
	}
	n, err := headManifestCount(ctx, tbl)
	if err != nil {
		return err
	}
	m.res.Manifests.Before, m.res.Manifests.After = n, n
	if m.opts.DryRun || n <= 1 {
		return nil
	}
	next, err := m.commit(ctx, "rewrite manifests", func(tbl *table.Table) (*table.Transaction, error) {
		txn := tbl.NewTransaction()
		res, err := txn.RewriteManifests(ctx)
		if err != nil {
			return nil, err
		}
		if res.IsNoOp() {
			return nil, nil
		}
		return txn, nil
	})
	if err != nil || next == nil {
		return err
	}
	if m.res.Manifests.After, err = headManifestCount(ctx, next); err != nil {
		return err
	}
	return nil
}

func headManifestCount(ctx context.Context, tbl *table.Table) (int, error) {
	snap := tbl.Metadata().SnapshotByName(table.MainBranch)
	if snap == nil {
		return 0, nil
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return 0, err
	}
	mans, err := snap.Manifests(fsys)
	if err != nil {
		return 0, fmt.Errorf("read the manifest list of snapshot %d: %w", snap.SnapshotID, err)
	}
	return len(mans), nil
}

// ExpiryPlan is the outcome of the expiry rule on one table state.
type ExpiryPlan struct {
	// Retain is the number of snapshots of main's history, newest first, that are kept
	// whatever their age: the larger of RetainLast and the depth of the oldest pipeline
	// snapshot that must survive.
	Retain int
	// Protected maps each pipeline to its newest snapshot on main.
	Protected map[string]int64
	// Expire are the snapshots the rule removes.
	Expire []int64
}

// PlanExpiry applies the expiry rule to meta as of now. Walking main's history newest first,
// it keeps retainLast snapshots, then every snapshot down to the newest one of each pipeline
// (the one holding its offsets map: Load's walk must reach it through snapshots that
// exist), then every snapshot younger than olderThan; the first snapshot that is none of
// these, and everything older, goes. Snapshots outside main's history go when older than
// olderThan. This mirrors Transaction.ExpireSnapshots with WithRetainLast(Retain), which
// performs it.
func PlanExpiry(meta table.Metadata, retainLast int, olderThan time.Duration, now time.Time) ExpiryPlan {
	p := ExpiryPlan{Retain: max(retainLast, 1), Protected: map[string]int64{}}
	head := mainSnapshotID(meta)
	var history []table.Snapshot
	if head != 0 {
		history = append(history, table.AncestorsOf(head, meta.SnapshotByID)...)
	}
	for i, s := range history {
		if s.Summary == nil {
			continue
		}
		pl := s.Summary.Properties[SummaryPipeline]
		if _, seen := p.Protected[pl]; pl == "" || seen {
			continue
		}
		p.Protected[pl] = s.SnapshotID
		p.Retain = max(p.Retain, i+1)
	}
	cutoff := now.Add(-olderThan).UnixMilli()
	keep := map[int64]bool{}
	for i, s := range history {
		if i >= p.Retain && s.TimestampMs < cutoff {
			break
		}
		keep[s.SnapshotID] = true
	}
	inHistory := map[int64]bool{}
	for _, s := range history {
		inHistory[s.SnapshotID] = true
	}
	for _, r := range meta.Refs() {
		keep[r.SnapshotID] = true // tags and other branches are their owners' business
	}
	for _, s := range meta.Snapshots() {
		if keep[s.SnapshotID] || (!inHistory[s.SnapshotID] && s.TimestampMs >= cutoff) {
			continue
		}
		p.Expire = append(p.Expire, s.SnapshotID)
	}
	return p
}

// expire removes old snapshots with iceberg-go's ExpireSnapshots, its retain-last raised so
// that no pipeline's newest snapshot goes (PlanExpiry). Files only expired snapshots
// referenced (compacted-away data files, old manifests and manifest lists) are deleted once
// the commit lands.
func (m *maintainer) expire(ctx context.Context) error {
	tbl, err := m.c.LoadTable(ctx, m.ident)
	if err != nil {
		return err
	}
	plan := PlanExpiry(tbl.Metadata(), m.opts.RetainLast, m.opts.OlderThan, time.Now())
	r := &m.res.Expiry
	r.SnapshotsBefore = len(tbl.Metadata().Snapshots())
	r.Protected, r.Expired, r.Retained = plan.Protected, plan.Expire, r.SnapshotsBefore-len(plan.Expire)
	if m.opts.DryRun || len(plan.Expire) == 0 {
		return nil
	}
	var applied ExpiryPlan
	next, err := m.commit(ctx, "expire snapshots", func(tbl *table.Table) (*table.Transaction, error) {
		// Planned again on every attempt: a pipeline may have committed since.
		applied = PlanExpiry(tbl.Metadata(), m.opts.RetainLast, m.opts.OlderThan, time.Now())
		if len(applied.Expire) == 0 {
			return nil, nil
		}
		txn := tbl.NewTransaction()
		// Asserting main makes a pipeline commit landing meanwhile a conflict, so the
		// plan is always made on the state it is applied to.
		if err := txn.AssertRefSnapshotID(table.MainBranch); err != nil {
			return nil, err
		}
		// Record the pipelines whose newest snapshots stay: once the older snapshots are
		// gone, a pipeline the record does not name provably never committed.
		if err := txn.SetProperties(map[string]string{PropertyPipelines: withPipelines(tbl.Metadata().Properties(), applied.Protected)}); err != nil {
			return nil, err
		}
		return txn, txn.ExpireSnapshots(table.WithRetainLast(applied.Retain), table.WithOlderThan(m.opts.OlderThan))
	})
	if err != nil {
		return err
	}
	if next == nil {
		r.Expired, r.Retained = nil, r.SnapshotsBefore
		return nil
	}
	// What iceberg-go removed, measured rather than assumed, and checked against the rule.
	r.Expired = r.Expired[:0]
	after := map[int64]bool{}
	for _, s := range next.Metadata().Snapshots() {
		after[s.SnapshotID] = true
	}
	for _, id := range applied.Expire {
		if !after[id] {
			r.Expired = append(r.Expired, id)
		}
	}
	r.Protected, r.Retained = applied.Protected, len(after)
	for pl, id := range applied.Protected {
		if !after[id] {
			return fmt.Errorf("snapshot %d, the newest of pipeline %q, was expired", id, pl)
		}
	}
	m.opts.Logger.Info("expired snapshots", "table", identString(m.ident), "expired", len(r.Expired), "retained", r.Retained)
	return nil
}

// orphans deletes the files under the table's location that no live metadata references and
// that are older than the safety margin: files of batches that never committed (a crash
// between staging and commit, a fenced batch whose discard failed), superseded manifests,
// metadata files that fell out of the log. It goes through the table's FileIO, so it works
// wherever the table lives (local disk, S3).
func (m *maintainer) orphans(ctx context.Context) error {
	tbl, err := m.c.LoadTable(ctx, m.ident)
	if err != nil {
		return err
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return err
	}
	remove := func(path string) error {
		// A file already gone (another maintainer, a concurrent expiry) is what we wanted.
		if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	res, err := tbl.DeleteOrphanFiles(ctx,
		table.WithFilesOlderThan(m.opts.OrphanOlderThan),
		table.WithDryRun(m.opts.DryRun),
		table.WithDeleteFunc(remove),
		table.WithCleanupMaxConcurrency(4))
	if err != nil {
		return err
	}
	r := &m.res.Orphans
	r.Files, r.Bytes, r.Deleted = res.OrphanFileLocations, res.TotalSizeBytes, len(res.DeletedFiles)
	slices.Sort(r.Files)
	if r.Deleted > 0 {
		m.opts.Logger.Info("removed orphan files", "table", identString(m.ident), "files", r.Deleted, "bytes", r.Bytes)
	}
	return nil
}

// TableStats are cheap figures of a table's current state, for metrics.
type TableStats struct {
	Snapshots     int   // snapshots in the metadata (all branches)
	DataFiles     int64 // live data files of main's head
	Records       int64 // live rows of main's head
	Manifests     int   // manifests in main's head manifest list
	MetadataFiles int   // previous metadata files in the log, plus the current one
}

// Stats returns the table's TableStats, read from the metadata and the head's manifest list
// (no manifest or data file is opened).
func (c *Catalog) Stats(ctx context.Context, ident table.Identifier) (TableStats, error) {
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return TableStats{}, err
	}
	meta := tbl.Metadata()
	st := TableStats{Snapshots: len(meta.Snapshots()), MetadataFiles: 1}
	for range meta.PreviousFiles() {
		st.MetadataFiles++
	}
	if snap := meta.SnapshotByName(table.MainBranch); snap != nil && snap.Summary != nil {
		st.DataFiles, _ = strconv.ParseInt(snap.Summary.Properties["total-data-files"], 10, 64)
		st.Records, _ = strconv.ParseInt(snap.Summary.Properties["total-records"], 10, 64)
	}
	if st.Manifests, err = headManifestCount(ctx, tbl); err != nil {
		return st, fmt.Errorf("iceberg: stats of %s: %w", identString(ident), err)
	}
	return st, nil
}

// TableExists reports whether the catalog has the table.
func (c *Catalog) TableExists(ctx context.Context, ident table.Identifier) (bool, error) {
	return c.cat.CheckTableExists(ctx, ident)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// firstLine keeps a long joined error readable in a log line.
func firstLine(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return fmt.Sprintf("%s (and %d more)", msg[:i], strings.Count(msg, "\n"))
	}
	return msg
}

// tierBase is the upper bound of the smallest size tier of compaction; each next tier is
// tierFactor times larger.
const (
	tierBase   = 256 << 10
	tierFactor = 4
)

// sizeTier is the size tier of a data file: 0 below tierBase, then one more per
// tierFactor.
func sizeTier(size int64) int {
	t := 0
	for bound := int64(tierBase); size >= bound; bound *= tierFactor {
		t++
	}
	return t
}

// tieredGroups regroups the plan's candidate files (all files below the right size) so
// that only files of one size tier are merged, and only when a tier holds at least
// minInputs of them. Bin-packing every small file together, as the plan does, rewrites the
// table's largest small file at every run: with a commit every second the work of each
// maintenance grows with the table's age. Merged by tier, a row is rewritten about once per
// tier (log4 of target over batch size: a handful of times), and a maintenance run's work
// stays bounded. It returns the groups and how many candidates wait in unfilled tiers.
func tieredGroups(plan compaction.Plan, minInputs int, target int64) ([]compaction.Group, int) {
	type key struct {
		partition string
		tier      int
	}
	tiers := map[key][]table.FileScanTask{}
	var order []key
	for _, g := range plan.Groups {
		for _, t := range g.Tasks {
			k := key{g.PartitionKey, sizeTier(t.File.FileSizeBytes())}
			if _, ok := tiers[k]; !ok {
				order = append(order, k)
			}
			tiers[k] = append(tiers[k], t)
		}
	}
	var groups []compaction.Group
	waiting := plan.SkippedFiles
	for _, k := range order {
		tasks := tiers[k]
		if len(tasks) < minInputs {
			waiting += len(tasks)
			continue
		}
		// Pack the tier in order toward the target size; a last bin too small to be worth
		// a rewrite waits for the next run.
		var cur compaction.Group
		flush := func(final bool) {
			if len(cur.Tasks) >= minInputs || (!final && len(cur.Tasks) > 1) {
				groups = append(groups, cur)
			} else {
				waiting += len(cur.Tasks)
			}
			cur = compaction.Group{PartitionKey: k.partition}
		}
		cur.PartitionKey = k.partition
		for _, t := range tasks {
			size := t.File.FileSizeBytes()
			if len(cur.Tasks) > 0 && cur.TotalSizeBytes+size > target {
				flush(false)
			}
			cur.Tasks = append(cur.Tasks, t)
			cur.TotalSizeBytes += size
			cur.DeleteFileCount += len(t.DeleteFiles) + len(t.EqualityDeleteFiles) + len(t.DeletionVectorFiles)
		}
		flush(true)
	}
	return groups, waiting
}

// allNotExist reports whether err, and every error joined in it, is fs.ErrNotExist.
func allNotExist(err error) bool {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if !allNotExist(e) {
				return false
			}
		}
		return len(joined.Unwrap()) > 0
	}
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if u := errors.Unwrap(err); u != nil {
		return allNotExist(u)
	}
	return false
}
