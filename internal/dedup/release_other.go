//go:build !linux

package dedup

import bolt "go.etcd.io/bbolt"

// releasePages is a no-op where madvise is not used.
func releasePages(*bolt.DB, string) {}
