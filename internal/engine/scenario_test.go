package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// TestScenarios runs the transcripts in testdata/: each file is one tricky case of the
// protocol told as a story (produce, assign, step, crash, fail a commit, a zombie, a foreign
// writer) with what the workers logged and what the tables committed, over the in-memory
// fakes of the topic, the tables and a clock that only moves when told (a back-off is a
// printed "sleep", not a wait). Each file runs twice: with batches written whole at commit
// time, and with every batch written in parts while it reads; the story must be the same.
//
// After a change of behaviour, regenerate the expected output and read the diff:
//
//	go test ./internal/engine -run TestScenarios -rewrite
//
// The commands (arguments in brackets are optional):
//
//	worker NAME [crash=FAULT-POINT] [attempts=N] [max-batch=N] [per-fetch=N] [trigger=DURATION]
//	       [outage=DURATION]          the retry policy's outage timeout (default 15m)
//	produce p=N [n=N] [bad] [marker] [retry=ID] [conflicting=ID]
//	assign NAME p=(N,...)          the group gives the worker partitions (Engine.Resume)
//	lose NAME p=(N,...)            a session expiry takes them away, unannounced
//	step NAME                      one batch: read, commit (Engine.Step)
//	on-fetch NAME [skip=N]         the input's commands run at the start of the worker's next
//	                               Fetch but N, and
//	on-sleep                       at the next back-off: what happens meanwhile elsewhere
//	fail TABLE outcomes=(...)      the table's next commits: conflict, lost-ack (applied, but
//	                               the worker sees a timeout), before-write (a timeout, not
//	                               applied), foreign-first (another writer commits just before)
//	foreign-commit TABLE           a writer that is not ledgerstream commits
//	tables                         the pipeline's state in both tables
//	stats NAME                     the worker's counters
//	reconcile                      the invariant: every record in exactly one table, once
func TestScenarios(t *testing.T) {
	for _, mode := range []struct {
		name       string
		stageAhead int
	}{{"whole", 0}, {"staged-ahead", 1}} {
		t.Run(mode.name, func(t *testing.T) {
			datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
				s := newScript(t, mode.stageAhead)
				datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
					return s.do(t, d.Cmd, d.CmdArgs, d.Input)
				})
			})
		})
	}
}

// script is the state of one transcript: a world and its named workers, and the events
// (log lines, commits, sleeps) printed as a command's output.
type script struct {
	w       *world
	workers map[string]*scriptWorker

	mu     sync.Mutex
	events []string
	indent string // nested commands (on-fetch, on-sleep) print indented
}

type scriptWorker struct {
	*worker
	name string
	dead bool
}

func newScript(t *testing.T, stageAhead int) *script {
	s := &script{w: newWorld(t), workers: map[string]*scriptWorker{}}
	s.w.stageAhead = stageAhead
	s.w.ledger.observe = s.event
	s.w.rejects.observe = s.event
	s.w.clock.observe = s.event
	return s
}

func (s *script) event(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, s.indent+e)
}

func (s *script) flush() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.Join(s.events, "\n")
	s.events = nil
	if out != "" {
		out += "\n"
	}
	return out
}

// do runs one command and returns what happened.
func (s *script) do(t *testing.T, cmd string, args []datadriven.CmdArg, input string) string {
	if err := s.run(cmd, args, input); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return s.flush()
}

func (s *script) run(cmd string, args []datadriven.CmdArg, input string) error {
	a := scriptArgs(args)
	switch cmd {
	case "worker":
		return s.newWorker(a)
	case "produce":
		return s.produce(a)
	case "assign", "lose", "step", "stats":
		k, err := s.worker(a)
		if err != nil {
			return err
		}
		switch cmd {
		case "assign":
			return s.assign(k, a.partitions())
		case "lose":
			k.src.lose(a.partitions()...)
			s.event(fmt.Sprintf("%s: lost %s (a session expiry; the worker is not told)", k.name, partitionList(a.partitions())))
		case "step":
			s.step(k)
		case "stats":
			st := k.eng.Stats()
			s.event(fmt.Sprintf("%s: batches %d, accepted %d, rejected %d, replayed %d, conflicts %d, unknown %d, fenced %d",
				k.name, st.Batches.Load(), st.Accepted.Load(), st.Rejected.Load(), st.Replayed.Load(),
				st.Conflicts.Load(), st.Unknown.Load(), st.Fenced.Load()))
		}
		return nil
	case "on-fetch":
		k, err := s.worker(a)
		if err != nil {
			return err
		}
		f := s.nested(input)
		skip, err := strconv.Atoi(cmpOr(a.value("skip"), "0"))
		if err != nil {
			return err
		}
		var hook func()
		hook = func() {
			if skip > 0 {
				skip--
				k.src.onFetch = hook
				return
			}
			f()
		}
		k.src.onFetch = hook
		return nil
	case "on-sleep":
		s.w.clock.mu.Lock()
		s.w.clock.onSleep = s.nested(input)
		s.w.clock.mu.Unlock()
		return nil
	case "fail":
		var fs []failure
		for _, o := range a.list("outcomes") {
			f, ok := map[string]failure{"conflict": failConflict, "lost-ack": failLostAck,
				"before-write": failBeforeWrite, "foreign-first": failAfterConflict}[o]
			if !ok {
				return fmt.Errorf("unknown outcome %q", o)
			}
			fs = append(fs, f)
		}
		switch a.key(0) {
		case "ledger":
			s.w.ledger.failNext(fs...)
		case "rejects":
			s.w.rejects.failNext(fs...)
		default:
			return fmt.Errorf("no table %q", a.key(0))
		}
		return nil
	case "foreign-commit":
		switch a.key(0) {
		case "ledger":
			s.w.ledger.foreignCommit()
		case "rejects":
			s.w.rejects.foreignCommit()
		default:
			return fmt.Errorf("no table %q", a.key(0))
		}
		return nil
	case "tables":
		l, _ := s.w.ledger.Load(context.Background())
		r, _ := s.w.rejects.Load(context.Background())
		s.event(fmt.Sprintf("ledger: batch %d, offsets %s, clean %s, %d rows", l.Batch,
			engine.MarshalOffsets(l.Offsets), engine.MarshalOffsets(l.Clean), len(s.w.ledger.rows(0))))
		s.event(fmt.Sprintf("rejects: batch %d, offsets %s, %d rows", r.Batch,
			engine.MarshalOffsets(r.Offsets), len(s.w.rejects.rows(0))))
		return nil
	case "reconcile":
		if err := s.w.check(); err != nil {
			s.event("VIOLATED: " + err.Error())
		} else {
			s.event(fmt.Sprintf("ok: %d records, %d in the ledger, %d in the rejects table, each once",
				len(s.w.want), len(s.w.ledger.rows(0)), len(s.w.rejects.rows(0))))
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// nested returns a func that runs input's commands, one a line, with their events
// indented: what happens elsewhere while a worker is in the middle of something.
func (s *script) nested(input string) func() {
	return func() {
		s.mu.Lock()
		s.indent += "  "
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.indent = s.indent[2:]
			s.mu.Unlock()
		}()
		for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
			cmd, args, err := parseLine(line)
			if err == nil {
				err = s.run(cmd, args, "")
			}
			if err != nil {
				s.event(fmt.Sprintf("ERROR in %q: %v", line, err))
			}
		}
	}
}

func (s *script) newWorker(a scriptArgs) error {
	name := a.key(0)
	if name == "" || s.workers[name] != nil && !s.workers[name].dead {
		return fmt.Errorf("worker %q: no name, or one alive already", name)
	}
	var cfg engine.Config
	var err error
	if v := a.value("max-batch"); v != "" {
		if cfg.MaxBatchRecords, err = strconv.Atoi(v); err != nil {
			return err
		}
	}
	if v := a.value("attempts"); v != "" {
		if cfg.CommitAttempts, err = strconv.Atoi(v); err != nil {
			return err
		}
	}
	if v := a.value("trigger"); v != "" {
		if cfg.Trigger, err = time.ParseDuration(v); err != nil {
			return err
		}
	}
	// The worker's log, one line an event.
	cfg.Logger = slog.New(&logSink{s: s, name: name})
	if v := a.value("outage"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		// The production policy but for its outage timeout, without randomness.
		cfg.Retry = &retry.Policy{OutageTimeout: d, Clock: s.w.clock, Logger: cfg.Logger, Jitter: func() float64 { return 0.5 }}
	}
	k := s.w.workerDyingAt(cfg, a.value("crash"))
	k.src.observe = func(e string) { s.event(name + ": " + e) }
	if v := a.value("per-fetch"); v != "" {
		if k.src.perFetch, err = strconv.Atoi(v); err != nil {
			return err
		}
	}
	s.workers[name] = &scriptWorker{worker: k, name: name}
	return nil
}

func (s *script) worker(a scriptArgs) (*scriptWorker, error) {
	k := s.workers[a.key(0)]
	switch {
	case k == nil:
		return nil, fmt.Errorf("no worker %q", a.key(0))
	case k.dead:
		return nil, fmt.Errorf("worker %q was killed", a.key(0))
	}
	return k, nil
}

func (s *script) assign(k *scriptWorker, parts []engine.Partition) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(crash)
			if !ok {
				panic(r)
			}
			k.dead = true
			s.event(fmt.Sprintf("%s: killed at %s", k.name, string(c)))
			err = nil
		}
	}()
	if err := k.src.assignErr(parts...); err != nil {
		s.event(fmt.Sprintf("%s: assignment failed: %v", k.name, err))
	}
	return nil
}

func (s *script) step(k *scriptWorker) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(crash)
			if !ok {
				panic(r)
			}
			k.dead = true
			s.event(fmt.Sprintf("%s: killed at %s", k.name, string(c)))
		}
	}()
	if _, err := k.eng.Step(context.Background(), k.feed); err != nil {
		s.event(fmt.Sprintf("%s: step failed: %v", k.name, err))
	}
}

func (s *script) produce(a scriptArgs) error {
	pn, err := strconv.Atoi(a.value("p"))
	if err != nil {
		return fmt.Errorf("produce: p=%q: %w", a.value("p"), err)
	}
	p := engine.Partition{Topic: "tx", Partition: int32(pn)}
	from := s.w.log.end(p)
	var what string
	switch {
	case a.has("bad"):
		s.w.produceBad(p)
		what = "a malformed message"
	case a.has("marker"):
		s.w.produceMarker(p)
		what = "a transaction marker"
	case a.value("retry") != "" || a.value("conflicting") != "":
		same := a.value("retry") != ""
		idArg := a.value("retry") + a.value("conflicting")
		id, err := strconv.Atoi(idArg)
		if err != nil {
			return fmt.Errorf("produce: id %q: %w", idArg, err)
		}
		s.w.produceAgain(p, id, same)
		if same {
			what = fmt.Sprintf("TXN%08d again (a producer retry)", id)
		} else {
			what = fmt.Sprintf("TXN%08d again with another amount", id)
		}
	default:
		n := 1
		if v := a.value("n"); v != "" {
			if n, err = strconv.Atoi(v); err != nil {
				return err
			}
		}
		first := s.w.seq + 1
		s.w.produce(p, n)
		what = fmt.Sprintf("TXN%08d", first)
		if n > 1 {
			what += fmt.Sprintf("-TXN%08d", s.w.seq)
		}
	}
	at := fmt.Sprintf("%s@%d", p, from)
	if to := s.w.log.end(p) - 1; to > from {
		at += fmt.Sprintf("-%d", to)
	}
	s.event(at + ": " + what)
	return nil
}

// scriptArgs are a command's arguments: bare keys (a worker's name) and key=value pairs.
type scriptArgs []datadriven.CmdArg

func (a scriptArgs) key(i int) string {
	if i < len(a) && len(a[i].Vals) == 0 {
		return a[i].Key
	}
	return ""
}

func (a scriptArgs) has(key string) bool {
	return slices.ContainsFunc(a, func(c datadriven.CmdArg) bool { return c.Key == key })
}

func (a scriptArgs) value(key string) string {
	for _, c := range a {
		if c.Key == key && len(c.Vals) > 0 {
			return c.Vals[0]
		}
	}
	return ""
}

func (a scriptArgs) list(key string) []string {
	for _, c := range a {
		if c.Key == key {
			return c.Vals
		}
	}
	return nil
}

func (a scriptArgs) partitions() []engine.Partition {
	var ps []engine.Partition
	for _, v := range a.list("p") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		ps = append(ps, engine.Partition{Topic: "tx", Partition: int32(n)})
	}
	return ps
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func partitionList(ps []engine.Partition) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// parseLine parses a nested command line as datadriven parses a directive: the command,
// then bare keys, key=value and key=(v1,v2).
func parseLine(line string) (string, []datadriven.CmdArg, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return "", nil, fmt.Errorf("empty command")
	}
	var args []datadriven.CmdArg
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		arg := datadriven.CmdArg{Key: k}
		if ok {
			v = strings.TrimSuffix(strings.TrimPrefix(v, "("), ")")
			for _, x := range strings.Split(v, ",") {
				arg.Vals = append(arg.Vals, strings.TrimSpace(x))
			}
		}
		args = append(args, arg)
	}
	return fields[0], args, nil
}

// logSink is a slog.Handler that prints a worker's log records as script events:
// "name: message key=value ...", without the durations a fake clock makes meaningless.
type logSink struct {
	s     *script
	name  string
	attrs []slog.Attr
}

func (h *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (h *logSink) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return nil
	}
	var b strings.Builder
	b.WriteString(h.name + ": " + r.Message)
	add := func(a slog.Attr) bool {
		if a.Key != "took" {
			fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.String())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.s.event(b.String())
	return nil
}

func (h *logSink) WithAttrs(as []slog.Attr) slog.Handler {
	return &logSink{s: h.s, name: h.name, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logSink) WithGroup(string) slog.Handler { return h }
