package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// DefaultSessionTimeout is a Source's SessionTimeout when zero.
const DefaultSessionTimeout = 10 * time.Second

// SourceConfig configures a Source.
type SourceConfig struct {
	// Client says how to reach the cluster.
	Client ClientConfig
	// Topic is the topic to consume.
	Topic string
	// Group is the consumer group: the pipeline id, shared by all its workers.
	Group string
	// InstanceID, when set, makes this worker a static member (Kafka's
	// group.instance.id): a restarted worker with the same id takes its partitions back
	// at once, and the group waits SessionTimeout before giving them to others. A static
	// member does not leave the group on Close.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent member before moving its
	// partitions; DefaultSessionTimeout when zero. The broker must allow it (the embedded one accepts 1 s).
	SessionTimeout time.Duration
	// RebalanceTimeout is how long members may take to finish a batch and rejoin once a
	// rebalance starts (the engine releases only between batches); 60 s when zero.
	RebalanceTimeout time.Duration
	// Resume tells where newly assigned partitions start. Nil starts them at the group's
	// committed offset, or the earliest offset without one; fine for tools, not for the
	// exactly-once pipeline, where the tables hold the truth.
	Resume engine.ResumeFunc
	// MaxPollRecords caps the records one Fetch returns; zero returns all that are
	// buffered.
	MaxPollRecords int
	// Logger receives assignment changes and errors. Nil discards them.
	Logger *slog.Logger
	// Tracker, when set, learns from every request to the brokers whether Kafka answers
	// (retry.Kafka up or down): a black-holed broker shows as down once its requests time
	// out, even while Fetch, which franz-go keeps retrying underneath, reports nothing.
	Tracker *retry.Tracker
}

// Source is an engine.Source over a franz-go group consumer reading with read_committed.
//
// It is meant for one polling goroutine (the engine's loop): Fetch, Seek, Release,
// CommitAdvisory and Ends are called from it. Assigned is safe from any goroutine, and
// the Resume func is called from franz-go's group goroutine, possibly while the loop is
// processing a batch of other partitions.
type Source struct {
	topic  string
	group  string
	resume engine.ResumeFunc
	log    *slog.Logger
	maxRec int
	// session is the group's session timeout: also how long an advisory commit may take.
	session time.Duration
	// Leave and Rejoin make the clients again from these.
	client     ClientConfig
	groupOpts  []kgo.Opt // the group member's options (plainOpts included)
	plainOpts  []kgo.Opt // those of a client outside the group (hooks)
	instanceID string

	closeOnce sync.Once

	mu sync.Mutex
	// cl is the group member, or, while the worker is out of the group (Leave), a client
	// outside it that still answers Lag, Ends and Topic. adm is over cl.
	cl      *kgo.Client
	adm     *kadm.Client
	left    bool
	owned   map[engine.Partition]struct{}
	pending error // a fetch error held back because it came with records
}

var _ engine.Source = (*Source)(nil)

// NewSource joins the consumer group and returns at once; partitions arrive with the
// first rebalance, reported by Assigned and started where Resume says. The caller must
// Close it.
func NewSource(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.Topic == "" {
		return nil, errors.New("kafka: source: no topic")
	}
	if cfg.Group == "" {
		return nil, errors.New("kafka: source: no group")
	}
	session := cfg.SessionTimeout
	if session <= 0 {
		session = DefaultSessionTimeout
	}
	s := &Source{
		topic:   cfg.Topic,
		group:   cfg.Group,
		resume:  cfg.Resume,
		log:     cfg.Logger,
		maxRec:  cfg.MaxPollRecords,
		session: session,
		owned:   make(map[engine.Partition]struct{}),
	}
	if s.log == nil {
		s.log = discardLogger
	}
	s.log = s.log.With("topic", cfg.Topic, "group", cfg.Group)

	opts := []kgo.Opt{
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumerGroup(cfg.Group),
		// Aborted records never reach us; the transaction markers do, as Control
		// records, so that positions move past them and reach the last stable offset.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// Group offsets are advisory; CommitAdvisory writes them after a table commit.
		kgo.DisableAutoCommit(),
		// No partition is taken away between a Fetch and the Release that ends the batch.
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(heartbeatFor(session)),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		// A position that is out of range (Resume's offset fell below the log start
		// through retention, or lies past the end after the topic was re-created) is
		// never reset silently: the fetch returns OFFSET_OUT_OF_RANGE for the partition
		// (FetchError.OutOfRange) and the engine decides, since jumping to the log
		// start would skip records without a trace. Partitions start where Resume says.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.WithPools(&recordSlices{}),
		kgo.WithDecompressor(newDecompressor()),
	}
	if cfg.Resume != nil {
		opts = append(opts, kgo.AdjustFetchOffsetsFn(s.adjustOffsets))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	if cfg.Tracker != nil {
		s.plainOpts = append(s.plainOpts, kgo.WithHooks(healthHook{cfg.Tracker}))
		opts = append(opts, s.plainOpts...)
	}
	if cfg.RebalanceTimeout > 0 {
		opts = append(opts, kgo.RebalanceTimeout(cfg.RebalanceTimeout))
	}
	s.client, s.groupOpts, s.instanceID = cfg.Client, opts, cfg.InstanceID
	cl, err := cfg.Client.newClient(opts...)
	if err != nil {
		return nil, err
	}
	s.cl = cl
	s.adm = kadm.NewClient(cl)
	return s, nil
}

// clients returns the current client and its admin client.
func (s *Source) clients() (*kgo.Client, *kadm.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cl, s.adm
}

// ErrLeft is what Fetch returns while the worker is out of the group (Leave).
var ErrLeft = errors.New("kafka: this worker left the consumer group; it fetches nothing until it rejoins")

// Leave gives every partition up and leaves the consumer group, so that the group moves
// them to the other members now: for a worker that cannot do its work for a while (its
// catalog or its storage is unreachable). A static member is removed with a LeaveGroup
// naming its instance id (KIP-345; quitGroup): franz-go, like Kafka's Java client, does
// not leave the group when a static member closes, and the group would keep its
// partitions for the session timeout. The Source then holds a client
// outside the group, for Lag, Ends and Topic; Fetch returns ErrLeft until Rejoin. Called
// from the polling goroutine.
func (s *Source) Leave(ctx context.Context, reason string) error {
	s.mu.Lock()
	if s.left {
		s.mu.Unlock()
		return nil
	}
	old := s.cl
	s.mu.Unlock()
	closed, err := s.quitGroup(ctx, old, true, reason)
	if !closed {
		s.log.Warn("kafka: the group client is still closing (a group request is waiting for the coordinator); going on without it", "waited", closeWait)
	}
	plain, perr := s.client.newClient(s.plainOpts...)
	if perr != nil {
		return errors.Join(err, perr) // Rejoin tries again with a group client
	}
	s.mu.Lock()
	s.cl, s.adm, s.left = plain, kadm.NewClient(plain), true
	clear(s.owned)
	s.pending = nil
	s.mu.Unlock()
	return err
}

// Rejoin joins the consumer group again after Leave; partitions arrive with the next
// rebalance, started where Resume says. Called from the polling goroutine.
func (s *Source) Rejoin() error {
	s.mu.Lock()
	if !s.left {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	cl, err := s.client.newClient(s.groupOpts...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.cl
	s.cl, s.adm, s.left = cl, kadm.NewClient(cl), false
	s.mu.Unlock()
	old.Close()
	return nil
}

// Fetch waits for records and returns them, in offset order within each partition,
// control records included (Control set). When ctx ends it returns what it has and no
// error.
//
// Fetch errors are returned as errors, each a *FetchError. One whose Temporary method
// reports true heals by itself (the client retries, the group rejoins): log, pause,
// fetch again; the Source remains usable.
// Records that arrive together with an error are returned first, with a nil error, and
// the error on the next call, so that a caller that stops at an error loses nothing it
// was handed.
func (s *Source) Fetch(ctx context.Context, max int) ([]engine.Record, error) {
	s.mu.Lock()
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	if pending != nil {
		return nil, pending
	}

	cl, left := s.member()
	if left {
		return nil, &FetchError{Err: ErrLeft}
	}
	if s.maxRec > 0 && (max <= 0 || s.maxRec < max) {
		max = s.maxRec
	}
	var fetches kgo.Fetches
	if max > 0 {
		// The client keeps what is over max buffered for the next poll.
		fetches = cl.PollRecords(ctx, max)
	} else {
		fetches = cl.PollFetches(ctx)
	}

	var errs []error
	fetches.EachError(func(topic string, p int32, err error) {
		if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return // our own deadline: the trigger interval ended
		}
		if topic == "" { // group-level errors carry no partition
			err = fmt.Errorf("kafka: fetch from %s (group %s): %w", s.topic, s.group, err)
		} else {
			err = fmt.Errorf("kafka: fetch %s[%d]: %w", topic, p, err)
		}
		errs = append(errs, &FetchError{Err: err, temporary: isTemporary(err), outOfRange: errors.Is(err, kerr.OffsetOutOfRange)})
	})
	var err error
	if len(errs) > 0 {
		err = errors.Join(errs...)
		s.log.Warn("kafka fetch error", "err", err)
	}

	n := fetches.NumRecords()
	if n == 0 {
		return nil, err
	}
	recs := make([]engine.Record, 0, n)
	fetches.EachRecord(func(r *kgo.Record) {
		recs = append(recs, toRecord(r))
		r.Recycle() // its slice goes back to s.pool; the fields kept point elsewhere
	})
	if err != nil {
		s.mu.Lock()
		s.pending = err
		s.mu.Unlock()
	}
	return recs, nil
}

// member returns the client and whether the worker is out of the group.
func (s *Source) member() (*kgo.Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cl, s.left
}

// FetchError is an error Fetch returns. Its Temporary method (the net.Error idiom, so
// that callers can test it without importing this package) reports errors the client
// recovers from by itself, such as a member dropped from the group after missing its
// session timeout: the partitions were lost (Assigned no longer lists them) and come back
// through a new assignment, with Resume called again.
type FetchError struct {
	Err        error
	temporary  bool
	outOfRange bool
}

// OutOfRange reports an OFFSET_OUT_OF_RANGE: a partition's position is below its log
// start (records deleted before they were read) or past its end (the topic was re-created,
// or the log truncated). The partition stays stopped until it is Seeked; the caller
// compares the position with the topic's state (Topic) to say which.
func (e *FetchError) OutOfRange() bool { return e.outOfRange }

func (e *FetchError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FetchError) Unwrap() error { return e.Err }

// Temporary reports whether fetching again, after a short pause, is expected to work.
func (e *FetchError) Temporary() bool { return e.temporary }

// isTemporary classifies fetch errors with the one classification of the project
// (retry.Classify): group membership churn, a dead broker connection ("the broker
// connection has died and the request will be retried on a new connection"), refused
// dials and retriable broker errors heal by themselves; a refused session timeout,
// authorization, data loss or a closed client need a person or a restart.
func isTemporary(err error) bool { return retry.IsTemporary(err) }

func toRecord(r *kgo.Record) engine.Record {
	rec := engine.Record{
		Partition: engine.Partition{Topic: r.Topic, Partition: r.Partition},
		Offset:    r.Offset,
		Key:       r.Key,
		Value:     r.Value,
		Timestamp: r.Timestamp,
		Control:   r.Attrs.IsControl(),
	}
	if len(r.Headers) > 0 {
		rec.Headers = make([]engine.Header, len(r.Headers))
		for i, h := range r.Headers {
			rec.Headers[i] = engine.Header{Key: h.Key, Value: h.Value}
		}
	}
	return rec
}

// Seek sets the next offset to fetch for owned partitions and drops what is buffered.
// Only real offsets are accepted (not OffsetEarliest/OffsetLatest); partitions this
// worker does not own are ignored.
//
// franz-go's SetOffsets stops the fetch session and discards every buffered fetch (of
// all partitions, not only these); the other partitions lose nothing, since their
// positions advance only when Fetch hands records out, and are fetched again.
func (s *Source) Seek(offsets engine.Offsets) {
	set := make(map[string]map[int32]kgo.EpochOffset)
	for p, off := range offsets {
		if off < 0 {
			s.log.Warn("kafka seek to a special offset ignored", "partition", p.Partition, "offset", off)
			continue
		}
		m := set[p.Topic]
		if m == nil {
			m = make(map[int32]kgo.EpochOffset)
			set[p.Topic] = m
		}
		// Epoch -1: no leader-epoch validation, the offset is the truth.
		m[p.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	if cl, left := s.member(); len(set) > 0 && !left {
		cl.SetOffsets(set)
	}
}

// Assigned returns the partitions this worker owns now, sorted.
func (s *Source) Assigned() []engine.Partition {
	s.mu.Lock()
	out := make([]engine.Partition, 0, len(s.owned))
	for p := range s.owned {
		out = append(out, p)
	}
	s.mu.Unlock()
	sortPartitions(out)
	return out
}

// Release lets a rebalance that waited for the current batch proceed.
func (s *Source) Release() {
	if cl, left := s.member(); !left {
		cl.AllowRebalance()
	}
}

// CommitAdvisory commits offsets (the next offset to read) to the consumer group, for
// the owned partitions among them. These offsets feed lag dashboards only.
func (s *Source) CommitAdvisory(ctx context.Context, offsets engine.Offsets) error {
	commit := make(map[string]map[int32]kgo.EpochOffset)
	s.mu.Lock()
	for p, off := range offsets {
		if _, ok := s.owned[p]; !ok || off < 0 {
			continue // another worker's now: do not move its advisory offset
		}
		m := commit[p.Topic]
		if m == nil {
			m = make(map[int32]kgo.EpochOffset)
			commit[p.Topic] = m
		}
		m[p.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	s.mu.Unlock()
	if len(commit) == 0 {
		return nil
	}

	cl, left := s.member()
	if left {
		return nil // nothing is owned while out of the group
	}
	// Bounded by the session timeout: a rebalance waits for this worker, which releases
	// its partitions only after this commit (BlockRebalanceOnPoll), so a commit that does
	// not return holds the whole group. In TestChaos one made while other members were
	// joining did not return until the worker was stopped 31 s later, and no worker that
	// joined meanwhile got a partition (the final drain then found partitions held).
	// Advisory offsets can wait for the next batch.
	ctx, cancel := context.WithTimeout(ctx, s.session)
	defer cancel()
	var errs []error
	cl.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err))
				}
			}
		}
	})
	if len(errs) > 0 {
		err := fmt.Errorf("kafka: commit advisory offsets for group %s: %w", s.group, errors.Join(errs...))
		s.log.Warn("kafka advisory commit failed", "err", err)
		return err
	}
	return nil
}

// Ends returns, for the owned partitions, the log start offsets and the last stable
// offsets: the end of what a read_committed consumer can read now (the high watermark,
// or the first offset of the oldest transaction still open).
func (s *Source) Ends(ctx context.Context) (start, end engine.Offsets, err error) {
	owned := s.Assigned()
	start = make(engine.Offsets, len(owned))
	end = make(engine.Offsets, len(owned))
	if len(owned) == 0 {
		return start, end, nil
	}
	// Ends first: a start listed after an end can only be newer (retention), never
	// past that end.
	_, adm := s.clients()
	ends, err := listStableEnds(ctx, adm, s.topic)
	if err != nil {
		return nil, nil, err
	}
	starts, err := listStarts(ctx, adm, s.topic)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range owned {
		e, okE := ends[p]
		st, okS := starts[p]
		if !okE || !okS {
			return nil, nil, fmt.Errorf("kafka: offsets of %s: partition %d missing from the answer", s.topic, p.Partition)
		}
		start[p], end[p] = st, e
	}
	return start, end, nil
}

// PartitionLag is where the pipeline stands on one partition for a read_committed reader.
type PartitionLag struct {
	// End is the partition's last stable offset: the end of what read_committed can read
	// now (the high watermark, or the first offset of the oldest transaction still open).
	End int64
	// Lag is how many offsets below End the committed offset has not reached yet (never
	// negative).
	Lag int64
}

// Lag returns, for every partition of the topic, its last stable offset and how far
// committed (the next offset to read per partition, as the ledger records it; an absent
// partition counts from 0) is behind it. It measures against last stable offsets, not high
// watermarks: behind an open transaction, read_committed cannot read up to the high
// watermark, so a lag taken from it would not fall to 0 when the pipeline is caught up.
func (s *Source) Lag(ctx context.Context, committed engine.Offsets) (map[engine.Partition]PartitionLag, error) {
	_, adm := s.clients()
	ends, err := listStableEnds(ctx, adm, s.topic)
	if err != nil {
		return nil, err
	}
	out := make(map[engine.Partition]PartitionLag, len(ends))
	for p, end := range ends {
		out[p] = PartitionLag{End: end, Lag: max(0, end-committed[p])}
	}
	return out, nil
}

// listStarts lists every partition's log start offset.
func listStarts(ctx context.Context, adm *kadm.Client, topic string) (engine.Offsets, error) {
	listed, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: list start offsets of %s: %w", topic, err)
	}
	out := make(engine.Offsets)
	listed.Each(func(o kadm.ListedOffset) {
		out[engine.Partition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	return out, nil
}

// listStableEnds lists every partition's last stable offset. kadm's ListEndOffsets asks
// for read_uncommitted (the high watermark); ListCommittedOffsets asks for
// read_committed, which is the one we need.
func listStableEnds(ctx context.Context, adm *kadm.Client, topic string) (engine.Offsets, error) {
	listed, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: list end offsets of %s: %w", topic, err)
	}
	out := make(engine.Offsets)
	listed.Each(func(o kadm.ListedOffset) {
		out[engine.Partition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	return out, nil
}

// closeWait bounds leaving the group and closing its client (Close, Leave).
const closeWait = 10 * time.Second

// Close leaves the group (a static member keeps its place until the session times out)
// and closes the client, within closeWait (quitGroup). Stop calling Fetch before Close;
// later calls are safe and return an error.
func (s *Source) Close() {
	s.closeOnce.Do(func() {
		cl, _ := s.clients()
		closed, err := s.quitGroup(context.Background(), cl, false, "ledgerstream worker stopping")
		if err != nil {
			s.log.Warn("kafka: could not leave the consumer group; it moves this worker's partitions when the session times out", "error", err)
		}
		if !closed {
			s.log.Warn("kafka: the client is still closing (a group request is waiting for the coordinator); stopping without it", "waited", closeWait)
		}
	})
}

// quitGroup leaves the consumer group with cl, a group client, and closes cl, within
// closeWait; it first allows any blocked rebalance, since leaving is one. franz-go's leave
// and Close wait for the group's JoinGroup in flight, which the coordinator may hold for
// the whole rebalance timeout (60 s) while another member finishes its batch, or which a
// network fault may leave unanswered as long. So when the leave has not finished in half
// of closeWait, the member is removed by a LeaveGroup sent from a client outside the group
// (leaveAs), so that the group neither waits for it nor keeps its partitions; a static
// member is removed that way in any case when evenStatic is set (a hand-off), since
// franz-go, like Kafka's Java client, does not leave the group when a static member
// closes. closed is false when cl was still closing at closeWait: the goroutine left
// closing it ends with the process.
func (s *Source) quitGroup(ctx context.Context, cl *kgo.Client, evenStatic bool, reason string) (closed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, closeWait)
	defer cancel()
	cl.AllowRebalance()
	member, _ := cl.GroupMetadata()
	lctx, lcancel := context.WithTimeout(ctx, closeWait/2)
	err = cl.LeaveGroupContext(lctx)
	lcancel()
	if err != nil {
		err = fmt.Errorf("kafka: leave group %s: %w", s.group, err)
	}
	switch {
	case evenStatic && s.instanceID != "":
		err = errors.Join(err, s.leaveAs(ctx, member, reason))
	case err != nil && member != "":
		err = s.leaveAs(ctx, member, reason) // a direct leave that works is a leave
	}
	return closeWithin(ctx, cl), err
}

// leaveAs removes this worker from the group with a LeaveGroup sent from a client outside
// the group: by its instance id when it is a static member (as kadm does), else by member,
// its member id. A member the group no longer knows has left already (a session expired
// meanwhile).
func (s *Source) leaveAs(ctx context.Context, member, reason string) error {
	plain, err := s.client.newClient(s.plainOpts...)
	if err != nil {
		return err
	}
	defer plain.Close()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = s.group
	m := kmsg.NewLeaveGroupRequestMember()
	if s.instanceID != "" {
		m.InstanceID = kmsg.StringPtr(s.instanceID)
	} else {
		req.MemberID, m.MemberID = member, member
	}
	m.Reason = kmsg.StringPtr(reason)
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, plain)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, m := range resp.Members {
			err = errors.Join(err, kerr.ErrorForCode(m.ErrorCode))
		}
	}
	switch {
	case err != nil && !errors.Is(err, kerr.UnknownMemberID):
		if s.instanceID != "" {
			return fmt.Errorf("kafka: leave group %s as static member %s (the group keeps its partitions until the session times out): %w", s.group, s.instanceID, err)
		}
		return fmt.Errorf("kafka: leave group %s as member %s: %w", s.group, member, err)
	case err == nil:
		s.log.Info("kafka: left the consumer group directly", "member", member, "instance", s.instanceID)
	}
	return nil
}

// closeWithin closes cl, waiting no longer than ctx, and reports whether it closed.
func closeWithin(ctx context.Context, cl *kgo.Client) bool {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		cl.Close()
	}()
	select {
	case <-closed:
		return true
	case <-ctx.Done():
		return false
	}
}

// adjustOffsets runs on franz-go's group goroutine once partitions are assigned (after
// onAssigned) and before any fetch from them: it replaces Kafka's committed offsets with
// where the tables say to resume.
func (s *Source) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var parts []engine.Partition
	for t, ps := range offsets {
		for p := range ps {
			parts = append(parts, engine.Partition{Topic: t, Partition: p})
		}
	}
	if len(parts) == 0 {
		return offsets, nil
	}
	sortPartitions(parts)
	start, err := s.resume(ctx, parts)
	if err != nil {
		err = fmt.Errorf("kafka: resume positions for %v: %w", parts, err)
		s.log.Error("kafka resume failed; the group will retry", "err", err)
		return nil, err
	}
	for _, p := range parts {
		off, ok := start[p]
		var o kgo.Offset
		switch {
		case !ok || off == engine.OffsetEarliest:
			if !ok {
				// Earliest is the safe default: sinks ignore what they already hold.
				s.log.Warn("kafka resume gave no offset; starting at earliest", "partition", p.Partition)
			}
			o = kgo.NewOffset().AtStart()
		case off == engine.OffsetLatest:
			o = kgo.NewOffset().AtEnd()
		case off >= 0:
			o = kgo.NewOffset().At(off) // epoch -1: no leader-epoch validation
		default:
			return nil, fmt.Errorf("kafka: resume gave offset %d for %s[%d]", off, p.Topic, p.Partition)
		}
		offsets[p.Topic][p.Partition] = o
		s.log.Info("kafka partition starts", "partition", p.Partition, "offset", off)
	}
	return offsets, nil
}

func (s *Source) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	for t, ps := range assigned {
		for _, p := range ps {
			s.owned[engine.Partition{Topic: t, Partition: p}] = struct{}{}
		}
	}
	s.mu.Unlock()
	if len(assigned) > 0 {
		s.log.Info("kafka partitions assigned", "partitions", assigned[s.topic])
	}
}

func (s *Source) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if s.drop(revoked) {
		s.log.Info("kafka partitions revoked", "partitions", revoked[s.topic])
	}
}

func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if s.drop(lost) {
		s.log.Warn("kafka partitions lost", "partitions", lost[s.topic])
	}
}

func (s *Source) drop(m map[string][]int32) (any bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(s.owned, engine.Partition{Topic: t, Partition: p})
			any = true
		}
	}
	return any
}

func sortPartitions(ps []engine.Partition) {
	slices.SortFunc(ps, func(a, b engine.Partition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}
