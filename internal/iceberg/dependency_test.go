package iceberg

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// A failure of the table's FileIO counts against the storage, anything else against the
// catalog: a commit that could not write its manifest to S3 is a storage outage.
func TestDependencyOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want retry.Dependency
	}{
		{fmt.Errorf("write manifest: %w", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: syscall.ECONNREFUSED}), retry.Storage},
		{fmt.Errorf("write data: %w", &fs.PathError{Op: "write", Path: "/w/x.parquet", Err: syscall.ENOSPC}), retry.Storage},
		{errors.New("failed to connect to host=127.0.0.1 user=postgres database=test"), retry.Catalog},
	} {
		if got := dependencyOf(c.err); got != c.want {
			t.Errorf("dependencyOf(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
