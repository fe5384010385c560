package dedup

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// store keeps the index's entries on disk as sorted runs (see run.go) and its state in a
// manifest. A batch is written as one new run: a sequential write of entries already
// sorted, where a B+tree (the previous format) paid a tree descent and a page update per id.
// Runs of one size tier are merged in the background once there are mergeFanIn of them, so
// that an entry is rewritten about once per tier (log8 of the index's size) and a lookup
// reads at most a few dozen runs, one block each (most runs are skipped by their key range
// when ids grow, as the generator's and most producers' do).
//
// The directory holds MANIFEST (the state: sync bookkeeping, id count, topic names, and
// the live runs), the run files, and LOCK. The manifest is replaced atomically (written
// aside, synced, renamed), after the run files it names are synced; files it does not name
// are leftovers of a crash and are deleted at open. The index is derived from the ledger,
// so nothing here needs more than that: a torn or inconsistent store is moved aside and
// rebuilt.
type store struct {
	dir  string
	lock *os.File
	log  *slog.Logger

	// mu guards runs against the merge's swap; lookups hold it shared while they read.
	mu   sync.RWMutex
	runs []*run

	// wmu serialises the writers (a batch's run, a merge's swap, a reset) and guards
	// state, seq and gen.
	wmu   sync.Mutex
	state fileState
	seq   uint64 // the next run file number
	gen   uint64 // bumped by reset: a merge begun before it must not swap

	mergeKick chan struct{}
	quit      chan struct{}
	closeOnce sync.Once
	mergeWG   sync.WaitGroup
	mergeErr  error  // the last merge failure, reported by the next write (guarded by wmu)
	merges    int64  // merges done (guarded by wmu)
	merging   func() // in tests, runs before a merge writes its output
}

// fileState is what the manifest records besides the runs.
type fileState struct {
	Version int      `json:"version"`
	Synced  int64    `json:"synced"`            // every row of this snapshot and its ancestors is indexed
	Applied []int64  `json:"applied,omitempty"` // later snapshots whose rows Add recorded
	Partial []int64  `json:"partial,omitempty"` // later snapshots whose rows were written only in part
	Count   int64    `json:"count"`             // ids in the runs
	Topics  []string `json:"topics,omitempty"`  // topic names by number
}

type manifest struct {
	fileState
	Seq  uint64   `json:"seq"`
	Runs []uint64 `json:"runs"`
}

const (
	storeVersion = 2 // 1 was the bbolt file
	manifestName = "MANIFEST"
	lockName     = "LOCK"
	mergeFanIn   = 8
)

// errCorruptStore reports a store that cannot be read as written; Open moves it aside.
var errCorruptStore = errors.New("index store is corrupt")

func (s *store) runPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("run-%016d.dat", seq))
}

// openStore opens (creating it if needed) the store in dir and locks it.
func openStore(dir string, lockTimeout time.Duration, log *slog.Logger) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockDir(filepath.Join(dir, lockName), lockTimeout)
	if err != nil {
		return nil, err
	}
	s := &store{dir: dir, lock: lock, log: log, mergeKick: make(chan struct{}, 1), quit: make(chan struct{})}
	if err := s.load(); err != nil {
		s.closeFiles()
		unlockDir(lock)
		return nil, err
	}
	s.mergeWG.Add(1)
	go s.merger() // owned by s: close stops and waits for it
	s.kick()
	return s, nil
}

// load reads the manifest, opens its runs and deletes what it does not name.
func (s *store) load() error {
	data, err := os.ReadFile(filepath.Join(s.dir, manifestName))
	var m manifest
	switch {
	case errors.Is(err, os.ErrNotExist):
		m.Version = storeVersion
	case err != nil:
		return err
	default:
		if m, err = decodeManifest(data); err != nil {
			return err
		}
	}
	s.state, s.seq = m.fileState, m.Seq
	live := map[string]bool{manifestName: true, lockName: true}
	var count int64
	for _, seq := range m.Runs {
		r, err := openRun(seq, s.runPath(seq))
		if err != nil {
			return fmt.Errorf("%w: %w", errCorruptStore, err)
		}
		s.runs = append(s.runs, r)
		live[filepath.Base(r.path)] = true
		count += r.entries
	}
	if count != s.state.Count {
		return fmt.Errorf("%w: the runs hold %d ids, the manifest says %d", errCorruptStore, count, s.state.Count)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !live[e.Name()] {
			os.Remove(filepath.Join(s.dir, e.Name())) // a crash's leftover: a run never named, a manifest never renamed
		}
	}
	return nil
}

func decodeManifest(data []byte) (manifest, error) {
	var m manifest
	if len(data) < 4 {
		return m, fmt.Errorf("%w: manifest of %d bytes", errCorruptStore, len(data))
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return m, fmt.Errorf("%w: manifest checksum mismatch", errCorruptStore)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("%w: manifest: %w", errCorruptStore, err)
	}
	if m.Version != storeVersion {
		return m, fmt.Errorf("%w: format %d, want %d", errCorruptStore, m.Version, storeVersion)
	}
	return m, nil
}

// writeManifest replaces the manifest with st and runs (called with wmu held).
func (s *store) writeManifest(st fileState, runs []*run) error {
	m := manifest{fileState: st, Seq: s.seq}
	m.Version = storeVersion
	for _, r := range runs {
		m.Runs = append(m.Runs, r.seq)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	body = binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, crcTable))
	path := filepath.Join(s.dir, manifestName)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the manifest: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// get looks key up in every run (an id is in at most one). val is a copy.
func (s *store) get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var buf []byte
	for i := len(s.runs) - 1; i >= 0; i-- {
		v, ok, b, err := s.runs[i].get(key, buf)
		buf = b
		if err != nil {
			return nil, false, err
		}
		if ok {
			return bytes.Clone(v), true, nil
		}
	}
	return nil, false, nil
}

// getter looks keys up with one reused block buffer; it holds mu shared until done.
type getter struct {
	s   *store
	buf []byte
}

func (s *store) getter() *getter {
	s.mu.RLock()
	return &getter{s: s}
}

func (g *getter) get(key []byte) ([]byte, bool, error) {
	for i := len(g.s.runs) - 1; i >= 0; i-- {
		v, ok, b, err := g.s.runs[i].get(key, g.buf)
		g.buf = b
		if err != nil || ok {
			return v, ok, err
		}
	}
	return nil, false, nil
}

func (g *getter) done() { g.s.mu.RUnlock() }

// fileStateNow returns a copy of the recorded state.
func (s *store) fileStateNow() fileState {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.state.clone()
}

func (st fileState) clone() fileState {
	st.Applied, st.Partial, st.Topics = slices.Clone(st.Applied), slices.Clone(st.Partial), slices.Clone(st.Topics)
	return st
}

// write records a run of entries (sorted, new: no id the store holds, none twice) and the
// new state in one manifest update. With no entries only the state changes.
func (s *store) write(keys, vals [][]byte, st fileState) error {
	var r *run
	if len(keys) > 0 {
		s.wmu.Lock()
		seq := s.seq
		s.seq++
		s.wmu.Unlock()
		path := s.runPath(seq)
		w, err := createRun(path)
		if err != nil {
			return err
		}
		for i := range keys {
			if err := w.add(keys[i], vals[i]); err != nil {
				w.abort(path)
				return err
			}
		}
		if r, err = w.finish(seq, path); err != nil {
			return err
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	runs := s.runs
	if r != nil {
		runs = append(slices.Clip(runs), r)
	}
	if err := s.writeManifest(st, runs); err != nil {
		if r != nil {
			r.f.Close()
			os.Remove(r.path)
		}
		return err
	}
	s.state = st.clone()
	s.mu.Lock()
	s.runs = runs
	s.mu.Unlock()
	if r != nil {
		s.kick()
	}
	err := s.mergeErr
	s.mergeErr = nil
	return err
}

// reset forgets every run and records st (a rebuild's start).
func (s *store) reset(st fileState) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writeManifest(st, nil); err != nil {
		return err
	}
	s.gen++
	s.state = st.clone()
	s.mu.Lock()
	old := s.runs
	s.runs = nil
	s.mu.Unlock()
	for _, r := range old {
		r.f.Close()
		os.Remove(r.path)
	}
	return nil
}

// forEachKey calls fn with every key, run by run. It holds mu shared throughout, as
// lookups do: a merge that ends meanwhile deletes its input runs only after it has taken
// mu, so no run this scan has yet to open disappears under it (a worker's first open
// rebuilds the Bloom filter while the merger, started by openStore, may be merging).
func (s *store) forEachKey(fn func(key []byte)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.runs {
		it, err := r.iter()
		if err != nil {
			return err
		}
		for it.next() {
			fn(it.key)
		}
		it.close()
		if it.err != nil {
			return it.err
		}
	}
	return nil
}

func (s *store) kick() {
	select {
	case s.mergeKick <- struct{}{}:
	default:
	}
}

// merger merges runs in the background until close.
func (s *store) merger() {
	defer s.mergeWG.Done()
	for {
		select {
		case <-s.quit:
			return
		case <-s.mergeKick:
		}
		for s.mergeOnce() {
			select {
			case <-s.quit:
				return
			default:
			}
		}
	}
}

// pickMerge returns the runs of the lowest tier that holds mergeFanIn of them.
func pickMerge(runs []*run) []*run {
	byTier := map[int][]*run{}
	for _, r := range runs {
		byTier[r.tier()] = append(byTier[r.tier()], r)
	}
	best := -1
	for t, rs := range byTier {
		if len(rs) >= mergeFanIn && (best < 0 || t < best) {
			best = t
		}
	}
	if best < 0 {
		return nil
	}
	return byTier[best][:mergeFanIn]
}

// mergeOnce merges one group of runs, if one is due, and reports whether it did.
func (s *store) mergeOnce() bool {
	s.wmu.Lock()
	in := pickMerge(s.runs)
	gen, seq := s.gen, s.seq
	if in != nil {
		s.seq++
	}
	s.wmu.Unlock()
	if in == nil {
		return false
	}
	started := time.Now()
	path := s.runPath(seq)
	out, err := s.mergeRuns(in, seq, path)
	if err != nil {
		s.wmu.Lock()
		if s.gen == gen { // after a reset the inputs are gone: not a failure
			s.mergeErr = fmt.Errorf("merge %d runs of the transaction id index: %w", len(in), err)
		}
		s.wmu.Unlock()
		return false
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.gen != gen {
		out.f.Close()
		os.Remove(out.path)
		return false
	}
	merged := map[uint64]bool{}
	for _, r := range in {
		merged[r.seq] = true
	}
	var runs []*run
	for _, r := range s.runs {
		if !merged[r.seq] {
			runs = append(runs, r)
		}
	}
	runs = append(runs, out)
	if err := s.writeManifest(s.state, runs); err != nil {
		out.f.Close()
		os.Remove(out.path)
		s.mergeErr = fmt.Errorf("merge %d runs of the transaction id index: %w", len(in), err)
		return false
	}
	s.mu.Lock()
	s.runs = runs
	s.mu.Unlock()
	for _, r := range in {
		r.f.Close()
		os.Remove(r.path)
	}
	s.merges++
	s.log.Debug("transaction id index runs merged", "runs", len(in), "ids", out.entries,
		"took", time.Since(started).Round(time.Millisecond))
	return true
}

// mergeRuns writes the entries of in, merged in key order, as one run.
func (s *store) mergeRuns(in []*run, seq uint64, path string) (*run, error) {
	its := make([]*runIter, 0, len(in))
	defer func() {
		for _, it := range its {
			it.close()
		}
	}()
	for _, r := range in {
		it, err := r.iter()
		if err != nil {
			return nil, err
		}
		its = append(its, it)
	}
	var live []*runIter
	for _, it := range its {
		if it.next() {
			live = append(live, it)
		} else if it.err != nil {
			return nil, it.err
		}
	}
	if s.merging != nil {
		s.merging()
	}
	w, err := createRun(path)
	if err != nil {
		return nil, err
	}
	for len(live) > 0 {
		m := 0
		for i := 1; i < len(live); i++ {
			if bytes.Compare(live[i].key, live[m].key) < 0 {
				m = i
			}
		}
		it := live[m]
		if err := w.add(it.key, it.val); err != nil {
			w.abort(path)
			return nil, err
		}
		if !it.next() {
			if it.err != nil {
				w.abort(path)
				return nil, it.err
			}
			live = slices.Delete(live, m, m+1)
		}
	}
	return w.finish(seq, path)
}

// mergeCount is how many merges ran since open.
func (s *store) mergeCount() int64 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.merges
}

// close stops the merger and closes the files; the lock goes last. Later calls do nothing.
func (s *store) close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		s.mergeWG.Wait()
		s.closeFiles()
		err = unlockDir(s.lock)
	})
	return err
}

func (s *store) closeFiles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runs {
		r.f.Close()
	}
	s.runs = nil
}

// runFiles lists the live run files (tests).
func (s *store) runFiles() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, r := range s.runs {
		out = append(out, filepath.Base(r.path)+":"+strconv.FormatInt(r.entries, 10))
	}
	return out
}
