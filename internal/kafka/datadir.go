package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the lock a broker holds on its DataDir for as long as it runs.
const lockFileName = "broker.lock"

// ErrDataDirLocked reports a DataDir that another broker process is using.
var ErrDataDirLocked = errors.New("kafka: data directory in use by another broker")

// ErrLogInconsistent reports a persisted log that cannot be read as one sequence of
// records: offsets that do not increase, or a damaged batch before the end of a segment.
var ErrLogInconsistent = errors.New("kafka: persisted log is inconsistent")

// dirLock is an exclusive flock on <dir>/broker.lock, released by Close or by the death
// of the process (the kernel drops flocks with the last descriptor).
type dirLock struct{ f *os.File }

// lockDataDir takes the data directory for this process. Two brokers appending to one
// log each number their records from their own high watermark, so one offset ends up
// naming two records: the guarantee rests on the opposite. The holder's pid is written
// in the file so that the refusal can name it.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kafka: broker data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kafka: broker data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " (pid " + pid + ")"
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by another broker%s; stop it, or give this one its own --data-dir",
				ErrDataDirLocked, dir, holder)
		}
		return nil, fmt.Errorf("kafka: lock broker data directory %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// Close releases the lock. The file stays: removing it would let a third process lock a
// new file while a second still waits on the old one.
func (l *dirLock) Close() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// checkLog reads every segment kfake persisted under dir (partitions/<topic>-<n>/<base>.dat,
// pure RecordBatch wire bytes) and refuses a log that kfake would load into something else
// than what was acknowledged: a batch whose first offset is not past the previous batch's
// last (two writers, or a segment from elsewhere), a segment whose first batch is not at
// its base offset, or a complete batch with a bad CRC before the end of a segment (kfake
// truncates there, dropping every acknowledged record after it). A partial batch at the
// very end of a segment is a write the process died in and is left to kfake, which cuts it.
func checkLog(dir string) error {
	parts, err := os.ReadDir(filepath.Join(dir, "partitions"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kafka: read broker log %s: %w", dir, err)
	}
	for _, p := range parts {
		if p.IsDir() {
			if err := checkPartitionLog(filepath.Join(dir, "partitions", p.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPartitionLog checks one partition's segments in base offset order.
func checkPartitionLog(pdir string) error {
	entries, err := os.ReadDir(pdir)
	if err != nil {
		return fmt.Errorf("kafka: read broker log %s: %w", pdir, err)
	}
	var bases []int64
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".dat"); ok {
			if base, err := strconv.ParseInt(name, 10, 64); err == nil {
				bases = append(bases, base)
			}
		}
	}
	slices.Sort(bases)
	next := int64(-1) // the smallest offset the next batch may start at
	for _, base := range bases {
		path := filepath.Join(pdir, strconv.FormatInt(base, 10)+".dat")
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("kafka: read broker log %s: %w", path, err)
		}
		bad := func(pos int, format string, args ...any) error {
			return fmt.Errorf("%w: %s at byte %d: %s; the broker will not serve it (move the data directory aside to start empty)",
				ErrLogInconsistent, path, pos, fmt.Sprintf(format, args...))
		}
		for pos := 0; pos+12 <= len(raw); {
			first := int64(binary.BigEndian.Uint64(raw[pos:]))
			size := 12 + int(int32(binary.BigEndian.Uint32(raw[pos+8:])))
			if size < 12+49 || pos+size > len(raw) {
				break // a partial write at the end: kfake truncates it
			}
			b := raw[pos : pos+size]
			if crc32.Checksum(b[21:], crc32c) != binary.BigEndian.Uint32(b[17:21]) {
				if pos+size == len(raw) {
					break // the last batch, torn: kfake truncates it
				}
				return bad(pos, "batch at offset %d fails its CRC with more batches after it", first)
			}
			last := first + int64(int32(binary.BigEndian.Uint32(b[23:27])))
			switch {
			case pos == 0 && first != base:
				return bad(pos, "segment %d starts at offset %d", base, first)
			case first < next:
				return bad(pos, "batch at offset %d after a batch that ended at offset %d: two writers, one offset for two records", first, next-1)
			case last < first:
				return bad(pos, "batch at offset %d has a negative last offset delta", first)
			}
			next = last + 1
			pos += size
		}
	}
	return nil
}

// crc32c is the Castagnoli table Kafka's RecordBatch CRC uses.
var crc32c = crc32.MakeTable(crc32.Castagnoli)
