package iceberg

import (
	"context"
	"errors"
	"fmt"
	stdfs "io/fs"
	"time"

	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// StoredFile is one object or file under a table's location.
type StoredFile struct {
	// Path is the full location as the table's FileIO names it (s3://bucket/key, or a
	// local path), the same form data files and manifests use.
	Path    string
	Size    int64
	ModTime time.Time
}

// ListTableFiles calls fn for every file under the table's location (data, metadata,
// manifests, and files of batches that were staged but never committed), through the
// table's own FileIO: the local file system, or S3 (a ListObjectsV2 walk) for an s3://
// warehouse. Orphan removal lists with this, subtracts the files that snapshots still
// reference, and deletes what is left and older than a safety margin through
// RemoveTableFile. iceberg-go's Table.PlanOrphanFiles / DeleteOrphanFiles use the same
// listing (iceio.ListableIO), so they work on S3 as on disk.
func (c *Catalog) ListTableFiles(ctx context.Context, ident table.Identifier, fn func(StoredFile) error) error {
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return fmt.Errorf("iceberg: list files of %s: %w", identString(ident), err)
	}
	lister, ok := fsys.(iceio.ListableIO)
	if !ok {
		return fmt.Errorf("iceberg: list files of %s: file IO %T cannot list", identString(ident), fsys)
	}
	err = lister.WalkDir(tbl.Location(), func(path string, d stdfs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, stdfs.ErrNotExist) {
				return nil // nothing written under the location yet
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			return nil
		}
		f := StoredFile{Path: path}
		if info, ierr := d.Info(); ierr == nil {
			f.Size, f.ModTime = info.Size(), info.ModTime()
		}
		return fn(f)
	})
	if err != nil {
		return fmt.Errorf("iceberg: list files of %s: %w", identString(ident), err)
	}
	return nil
}

// RemoveTableFile deletes one file under the table's location through its FileIO. A file
// that is already gone is not an error.
func (c *Catalog) RemoveTableFile(ctx context.Context, ident table.Identifier, path string) error {
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return fmt.Errorf("iceberg: remove %s: %w", path, err)
	}
	if err := fsys.Remove(path); err != nil && !errors.Is(err, stdfs.ErrNotExist) {
		return fmt.Errorf("iceberg: remove %s: %w", path, err)
	}
	return nil
}
