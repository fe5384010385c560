package dedup

import (
	"os"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releasePages drops this process's mapping of the index file's pages (madvise
// MADV_DONTNEED on bbolt's read-only shared mapping). The pages stay in the kernel's page
// cache, and a later read maps them again with a minor fault; the file's content never
// changes through the mapping. Without it every page a write touched stays counted in the
// process's resident memory, which then grows with the ledger's history (some 100 bytes an
// id) rather than with the batch.
func releasePages(db *bolt.DB, path string) {
	info, err := os.Stat(path)
	if err != nil || info.Size() == 0 {
		return
	}
	// The mapping is at least the file's size (bbolt maps InitialMmapSize or more).
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, db.Info().Data, uintptr(info.Size()), syscall.MADV_DONTNEED)
}
