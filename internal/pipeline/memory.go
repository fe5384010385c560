package pipeline

import "os"

// MemoryLimit is the soft memory limit (bytes) a worker reading batches of batchRecords
// sets (run --memory-limit-mib mib: 0 the default, -1 none), or -1 to leave the runtime's.
// The Go heap otherwise grows to twice what is live before collecting, and what is live is mostly the
// batch (its records, rows and the parts being written: about 1 KiB a record at the
// generator's message size), so the default follows --max-batch-records: memory is bounded
// by the batch, not by the backlog. Larger messages need a larger limit (the runtime then
// collects more often; it never fails an allocation for it).
func MemoryLimit(mib int64, batchRecords int) int64 {
	switch {
	case os.Getenv("GOMEMLIMIT") != "" || mib < 0:
		return -1
	case mib > 0:
		return mib << 20
	}
	return 128<<20 + int64(batchRecords)*2<<10
}
