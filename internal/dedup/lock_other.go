//go:build !unix

package dedup

import (
	"os"
	"time"
)

// lockDir opens the lock file; without flock the one-process-per-index rule is the
// operator's (give each worker its own --worker-id or --index-dir).
func lockDir(path string, _ time.Duration) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}

func unlockDir(f *os.File) error { return f.Close() }
