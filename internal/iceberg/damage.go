package iceberg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	stdfs "io/fs"
	"strings"

	ice "github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"golang.org/x/sync/errgroup"

	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// The kinds of file a table is made of, as DamageError names them.
const (
	FileMetadata     = "metadata file"
	FileManifestList = "manifest list"
	FileManifest     = "manifest"
	FileData         = "data file"
)

// DamageError says that a file a table's metadata names cannot be read: it is missing,
// has another size than the metadata records, or does not decode. Retrying cannot fix
// it (the functions that return one mark it retry.Permanent): a person must restore the
// file, or roll the table back, as Hint says.
type DamageError struct {
	// Table is the table, namespace.table.
	Table string
	// Kind is FileMetadata, FileManifestList, FileManifest or FileData.
	Kind string
	// Path is the file's full path or URI, as the table's metadata names it.
	Path string
	// Problem says what is wrong with it: "missing", "412 bytes, the manifest says 3188",
	// or the reader's error.
	Problem string
	// Records is how many rows the file holds by the table's own metadata (a data file:
	// its manifest entry's record count; a manifest: the rows its files add and keep, by
	// the manifest list); -1 when the metadata does not say.
	Records int64
	// Read is how many of those rows were read before the damage was found (a data file
	// can fail in its middle); they were counted by whoever read them.
	Read int64
	// Source is where the file's rows came from when its column bounds tell
	// ("financial_transactions/1 offsets 2000-2999"); "" otherwise.
	Source string
	// Previous is, for a metadata file, the one the catalog records as the table's
	// previous version ("" when it records none); Rollback the SQL statement that points
	// the catalog at it.
	Previous, Rollback string
	// Err is the error the reader gave, when there was one.
	Err error
}

func (e *DamageError) Error() string { return e.What() + "; " + e.Hint() }

// What says which file is damaged, how, and what it held, without the hint.
func (e *DamageError) What() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s is damaged: %s", e.Table, e.Kind, e.Path, e.Problem)
	if held := e.held(); held != "" {
		fmt.Fprintf(&b, " (%s)", held)
	}
	return b.String()
}

// held says what the file held, when the metadata tells.
func (e *DamageError) held() string {
	var parts []string
	if e.Records >= 0 {
		switch e.Kind {
		case FileManifest:
			parts = append(parts, fmt.Sprintf("it lists files of %d rows", e.Records))
		default:
			parts = append(parts, fmt.Sprintf("it holds %d rows", e.Records))
		}
		if e.Read > 0 {
			parts = append(parts, fmt.Sprintf("%d read before the damage", e.Read))
		}
	}
	if e.Source != "" {
		parts = append(parts, e.Source)
	}
	return strings.Join(parts, ", ")
}

// Hint says what to do about the damage.
func (e *DamageError) Hint() string {
	switch e.Kind {
	case FileMetadata:
		if e.Previous != "" {
			how := ""
			if e.Rollback != "" {
				how = " (" + e.Rollback + ")"
			}
			return fmt.Sprintf("restore it from a backup; or roll %s back one commit by pointing the catalog at the previous metadata file %s%s; "+
				"a pipeline then reads the records of the lost commit again from Kafka, exactly once (its offsets are in the table)", e.Table, e.Previous, how)
		}
		return "restore it from a backup; the catalog records no previous metadata file to roll back to"
	case FileData:
		return fmt.Sprintf("restore it from a backup of the warehouse (same path, same bytes); until then its rows are missing from %s for every reader, "+
			"and run refuses to commit", e.Table)
	}
	return fmt.Sprintf("restore it from a backup of the warehouse (same path, same bytes); until then the files it lists cannot be read, "+
		"and run refuses to commit to %s", e.Table)
}

func (e *DamageError) Unwrap() error { return e.Err }

// AsDamage returns the DamageError in err's chain.
func AsDamage(err error) (*DamageError, bool) {
	var d *DamageError
	ok := errors.As(err, &d)
	return d, ok
}

// damaged decides whether err, met while reading the file at path (wantSize bytes by the
// table's metadata, or -1), is damage rather than a passing failure of the storage: the
// file is missing, has another size, or the read failed for a reason no network or disk
// rule recognises (a decoding error). It returns the DamageError, marked permanent, or
// nil when err is a passing failure (returned as is by the caller). de carries the
// file's identity; damaged fills in Problem and Err.
func damaged(fsys iceio.IO, de *DamageError, wantSize int64, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	de.Err = err
	size, serr := fileSize(fsys, de.Path)
	switch {
	case errors.Is(serr, stdfs.ErrNotExist) || errors.Is(err, stdfs.ErrNotExist):
		de.Problem = "missing"
	case serr == nil && wantSize >= 0 && size != wantSize:
		de.Problem = fmt.Sprintf("%d bytes, the table's metadata says %d (%v)", size, wantSize, err)
	case serr != nil && retry.IsKnownTemporary(serr):
		return nil // the storage itself is failing: an outage, not damage
	case retry.IsKnownTemporary(err) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		if serr == nil && wantSize >= 0 {
			return nil // the whole file is there: a read cut short on the way
		}
		de.Problem = fmt.Sprintf("cut short (%v)", err)
	default:
		de.Problem = fmt.Sprintf("unreadable (%v)", err)
	}
	return permanentDamage(de)
}

// permanentDamage is de as the retry policy must see it: the storage's, and permanent.
func permanentDamage(de *DamageError) error {
	return retry.Tag(retry.Storage, retry.MarkPermanent(de))
}

// fileSize is the size of the file at path, through the table's FileIO.
func fileSize(fsys iceio.IO, path string) (int64, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// sourceRange describes where a data file's rows came from by its column bounds:
// "financial_transactions/1 offsets 2000-2999" when its rows are of one topic and
// partition, "partitions 0-2, offsets 0-2999" otherwise; "" when the bounds are absent.
func sourceRange(schema *ice.Schema, df ice.DataFile) string {
	id := func(name string) (int, bool) {
		f, ok := schema.FindFieldByName(name)
		return f.ID, ok
	}
	lo, hi := df.LowerBoundValues(), df.UpperBoundValues()
	bound := func(name string) (l, h []byte, ok bool) {
		i, found := id(name)
		if !found {
			return nil, nil, false
		}
		l, ok1 := lo[i]
		h, ok2 := hi[i]
		return l, h, ok1 && ok2
	}
	pl, ph, okP := bound(ColSourcePartition)
	ol, oh, okO := bound(ColSourceOffset)
	if !okP || !okO || len(pl) != 4 || len(ph) != 4 || len(ol) != 8 || len(oh) != 8 {
		return ""
	}
	p0, p1 := int32(binary.LittleEndian.Uint32(pl)), int32(binary.LittleEndian.Uint32(ph))
	o0, o1 := int64(binary.LittleEndian.Uint64(ol)), int64(binary.LittleEndian.Uint64(oh))
	topic := ""
	if tl, th, ok := bound(ColSourceTopic); ok && string(tl) == string(th) {
		topic = string(tl) // string bounds may be truncated: only equal ones name the topic
	}
	if p0 == p1 {
		if topic != "" {
			return fmt.Sprintf("%s/%d offsets %d-%d", topic, p0, o0, o1)
		}
		return fmt.Sprintf("partition %d offsets %d-%d", p0, o0, o1)
	}
	return fmt.Sprintf("partitions %d-%d, offsets %d-%d", p0, p1, o0, o1)
}

// FilesChecked is what CheckFiles looked at.
type FilesChecked struct {
	Manifests, DataFiles int
	// Bytes is the data files' total size.
	Bytes int64
}

// CheckFiles checks, without reading any data, the files main's head of table ident is
// made of: its metadata file loads, its manifest list and every manifest decode, and every
// data file they list is present with the size the manifest records (one listing of the
// table's location; a file outside it is looked at on its own). It cannot see bytes
// changed inside a data file of the right size: that is found when the file is read (an
// index rebuild, a sync, verify). The first damaged file is returned as a *DamageError,
// marked retry.Permanent.
func (c *Catalog) CheckFiles(ctx context.Context, ident table.Identifier) (FilesChecked, error) {
	tbl, err := c.loadTable(ctx, ident)
	if err != nil {
		return FilesChecked{}, retry.Tag(dependencyOf(err), fmt.Errorf("iceberg: check the files of %s: %w", identString(ident), err))
	}
	return c.checkFiles(ctx, tbl)
}

// checkFiles is CheckFiles on tbl as loaded.
func (c *Catalog) checkFiles(ctx context.Context, tbl *table.Table) (FilesChecked, error) {
	var out FilesChecked
	name := identString(tbl.Identifier())
	head := mainSnapshotID(tbl.Metadata())
	if head == 0 {
		return out, nil
	}
	snap := tbl.Metadata().SnapshotByID(head)
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return out, retry.Tag(retry.Storage, fmt.Errorf("iceberg: check the files of %s: %w", name, err))
	}
	failed := func(what string, err error) error {
		return retry.Tag(retry.Storage, fmt.Errorf("iceberg: check the files of %s: %s: %w", name, what, err))
	}
	manifests, err := readManifestList(fsys, snap)
	if err != nil {
		if d := damaged(fsys, &DamageError{Table: name, Kind: FileManifestList, Path: snap.ManifestList, Records: -1}, -1, err); d != nil {
			return out, d
		}
		return out, failed("read the manifest list "+snap.ManifestList, err)
	}
	schema := tbl.Schema()
	// Manifests are read a few at a time (a table without manifest maintenance has one per
	// commit); the first damaged one in the list's order is reported.
	read := make([][]ice.ManifestEntry, len(manifests))
	errs := make([]error, len(manifests))
	var g errgroup.Group
	g.SetLimit(8)
	for i, m := range manifests {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return nil
			}
			read[i], errs[i] = readManifest(fsys, m)
			return nil
		})
	}
	_ = g.Wait() // errors are in errs
	var files []ice.DataFile
	for i, m := range manifests {
		if err := errs[i]; err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			de := &DamageError{Table: name, Kind: FileManifest, Path: m.FilePath(), Records: -1}
			if m.AddedRows() >= 0 && m.ExistingRows() >= 0 {
				de.Records = m.AddedRows() + m.ExistingRows()
			}
			if d := damaged(fsys, de, m.Length(), err); d != nil {
				return out, d
			}
			return out, failed("read the manifest "+m.FilePath(), err)
		}
		out.Manifests++
		for _, e := range read[i] {
			files = append(files, e.DataFile())
		}
	}
	// Sizes from one listing of the table's location: a request per thousand files on S3
	// rather than one per file.
	sizes := map[string]int64{}
	if lister, ok := fsys.(iceio.ListableIO); ok {
		_ = lister.WalkDir(tbl.Location(), func(path string, d stdfs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if info, ierr := d.Info(); ierr == nil {
				sizes[path] = info.Size()
			}
			return ctx.Err()
		}) // a listing that fails leaves the files to be looked at one by one
	}
	for _, df := range files {
		size, listed := sizes[df.FilePath()]
		if !listed {
			var serr error
			if size, serr = fileSize(fsys, df.FilePath()); serr != nil && !errors.Is(serr, stdfs.ErrNotExist) {
				return out, failed("look at "+df.FilePath(), serr)
			} else if serr != nil {
				size = -1
			}
		}
		if size != df.FileSizeBytes() {
			de := &DamageError{Table: name, Kind: FileData, Path: df.FilePath(), Records: df.Count(), Source: sourceRange(schema, df),
				Problem: "missing"}
			if size >= 0 {
				de.Problem = fmt.Sprintf("%d bytes, the manifest says %d", size, df.FileSizeBytes())
			}
			return out, permanentDamage(de)
		}
		out.DataFiles++
		out.Bytes += size
	}
	return out, nil
}

// readManifest returns the live entries of manifest m, all of them or an error: a manifest
// that fails in its middle is damaged as a whole.
func readManifest(fsys iceio.IO, m ice.ManifestFile) ([]ice.ManifestEntry, error) {
	var entries []ice.ManifestEntry
	for e, err := range m.Entries(fsys, true) {
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// readManifestList reads the manifest list of snap, twice before giving up: its size is
// recorded nowhere, so a read cut short on the way (a network) and a file cut short look
// alike to damaged until a second read fails the same way.
func readManifestList(fsys iceio.IO, snap *table.Snapshot) ([]ice.ManifestFile, error) {
	manifests, err := snap.Manifests(fsys)
	if err != nil {
		manifests, err = snap.Manifests(fsys)
	}
	return manifests, err
}
