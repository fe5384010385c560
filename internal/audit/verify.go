package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// DefaultPipeline is run's default --pipeline.
const DefaultPipeline = "exactly-once-processor"

// VerifyOptions says what Verify checks.
type VerifyOptions struct {
	// Pipeline is the pipeline whose committed offsets bound the reconciliation; "" for
	// the only one that committed to the ledger (ChoosePipeline).
	Pipeline string
	// Topic is the topic the ledger's rows are reconciled with (rows of other topics, a
	// foreign writer's backfill, are left out of the reconciliation).
	Topic string
	// ReadTopic reads Topic with read_committed, calling fn for each record, and returns
	// what the topic was as it was read. Nil checks the tables alone (verify --table-only).
	ReadTopic func(ctx context.Context, fn func(engine.Record) error) (engine.TopicState, error)
	// Window, when not zero, checks the rows in it only, read with its pruning (verify
	// --table-only --from/--to/--where). The reconciliation takes none: it accounts for
	// every offset, so ReadTopic must be nil.
	Window iceberg.Window
}

// VerifyResult is the outcome of verify: the notebook's checks, the reconciliation, and
// the files that could not be read. Its JSON form is what `verify --json` prints.
type VerifyResult struct {
	// Pipeline is the pipeline whose offsets bound the reconciliation.
	Pipeline  string                 `json:"pipeline"`
	Checks    []report.Check         `json:"checks"`
	Reconcile *report.Reconciliation `json:"reconciliation"` // null with --table-only
	// Damaged lists the files of the tables that could not be read ([] when none): their
	// rows count as lost (check readable_files).
	Damaged []report.DamagedFile `json:"damaged_files"`
	// Window is the part of the ledger checked; null for the whole ledger.
	Window *report.Window `json:"window"`

	// PipelineNote says how Pipeline was chosen, when the caller did not name it.
	PipelineNote string `json:"-"`
}

// Verify scans the ledger as of the view once for the notebook's validations and the
// reconciliation, and with opts.ReadTopic reads the topic: the reconciliation is bounded
// by the offsets the pipeline had committed as of the view. A file of the tables that
// cannot be read does not stop it: its rows count as lost (check readable_files, and the
// reconciliation finds them missing), and Damaged names it.
func (v *View) Verify(ctx context.Context, opts VerifyOptions) (*VerifyResult, error) {
	pipeline, note, err := ChoosePipeline(v.History, opts.Pipeline, identName(v.ident))
	if err != nil {
		return nil, err
	}
	committed, _, err := v.Committed(pipeline)
	if err != nil {
		return nil, err
	}
	// The topic ids the pipeline's newest snapshot recorded (ledgerstream.topic-ids), to
	// tell a re-created topic.
	var topicIDs map[string]string
	if s, found, err := iceberg.NewestOfPipeline(v.History, pipeline); err == nil && found {
		topicIDs = s.TopicIDs
	}
	withTopic := opts.ReadTopic != nil
	b := report.NewContractBuilder(v.Contract, 0)
	if !opts.Window.IsZero() {
		if withTopic {
			return nil, fmt.Errorf("a window (%s) checks the ledger alone: the reconciliation with the topic accounts for every offset, so it reads every row", opts.Window.Describe(v.Contract))
		}
		plan, err := v.ScanLedgerWindow(ctx, opts.Window, func(row ledger.Row, processed time.Time) error {
			b.Add(row, processed)
			return nil
		})
		if err != nil {
			return nil, err
		}
		res := &VerifyResult{Pipeline: pipeline, PipelineNote: note, Checks: report.Validate(b.Report()),
			Window: &report.Window{Filter: opts.Window.Describe(v.Contract), FilesRead: plan.Files, FilesTotal: plan.Total}}
		res.finish(v)
		return res, nil
	}
	bounds := make(map[report.TopicPartition]int64, len(committed))
	for p, off := range committed {
		bounds[report.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = off
	}
	// The rejects table is read only to reconcile with the topic; a ledger without one
	// (written before it existed) is reconciled as such (nil bounds).
	var rejectsAt map[report.TopicPartition]int64
	if withTopic {
		if rejectsAt, err = v.RejectsComplete(pipeline); err != nil {
			return nil, err
		}
	}
	rec := report.NewReconciler(bounds, rejectsAt)
	if err := v.ScanLedger(ctx, func(row ledger.Row, processed time.Time) error {
		b.Add(row, processed)
		// Rows another writer loaded from elsewhere (a backfill) are not this topic's to
		// reconcile; the notebook's checks above still cover them.
		if row.SourceTopic == opts.Topic {
			rec.AddRow(row)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	res := &VerifyResult{Pipeline: pipeline, PipelineNote: note, Checks: report.Validate(b.Report())}
	if !withTopic {
		res.finish(v)
		return res, nil
	}
	if err := v.ScanRejects(ctx, func(row ledger.RejectRow, _ time.Time) error {
		rec.AddReject(row)
		return nil
	}); err != nil {
		return nil, err
	}
	rules := ledger.DefaultRules()
	rules.Contract = v.Contract
	var earlier []*ledger.Rules
	for _, c := range v.Earlier {
		r := ledger.DefaultRules()
		r.Contract = c
		earlier = append(earlier, &r)
	}
	rec.SetEarlierRules(earlier)
	topic, err := opts.ReadTopic(ctx, func(r engine.Record) error {
		if !r.Control {
			rec.AddRecord(report.TopicPartition{Topic: r.Topic, Partition: r.Partition.Partition}, r.Offset, r.Value, &rules)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read topic %s: %w", opts.Topic, err)
	}
	// Records below the log start were deleted (retention): rows there are not strays,
	// and offsets there that no table accounts for were lost before processing.
	starts := make(map[report.TopicPartition]int64, len(topic.Start))
	for p, off := range topic.Start {
		starts[report.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = off
	}
	rec.SetLogStarts(starts)
	// The rule run applies: is this the topic the offsets were read from?
	if changed := engine.CheckTopic(topicIDs[opts.Topic], committed, topic); changed != nil {
		rec.SetTopicRecreated(fmt.Sprintf("topic %s is not the topic the pipeline's offsets were read from: %s; "+
			"the ledger cannot be reconciled with it", opts.Topic, changed.What))
	}
	res.Reconcile = rec.Result()
	res.Checks = append(res.Checks, res.Reconcile.Check())
	res.finish(v)
	return res, nil
}

// finish adds what the scans could not read: the files, and a failed readable_files check.
func (r *VerifyResult) finish(v *View) {
	r.Damaged = v.DamagedFiles()
	r.Checks = append(r.Checks, report.DamageCheck(r.Damaged))
}

// ChoosePipeline picks the pipeline whose offsets a command reads, from what the table's
// history says committed to it: the one named, when it did commit (a name that never
// committed would make every row look unexpected: it is refused, listing the pipelines
// that did); with none named, the only pipeline that committed (and a note saying so), or
// run's default when none did. An expired history that no longer shows a named pipeline is
// left to the caller's own check (engine.ErrHistoryTruncated).
func ChoosePipeline(history []iceberg.SnapshotInfo, named, table string) (pipeline, note string, err error) {
	var seen []string
	for _, s := range history {
		if s.Pipeline != "" && !slices.Contains(seen, s.Pipeline) {
			seen = append(seen, s.Pipeline)
		}
	}
	complete := len(history) == 0 || history[len(history)-1].ParentID == 0
	switch {
	case named != "" && (slices.Contains(seen, named) || len(seen) == 0 || !complete):
		return named, "", nil
	case named != "":
		return "", "", fmt.Errorf("pipeline %q never committed to %s; the pipelines that did: %s (pass one of them with --pipeline)",
			named, table, strings.Join(seen, ", "))
	case len(seen) == 1:
		return seen[0], fmt.Sprintf("Pipeline %s: the only one that committed to %s (--pipeline chooses)", seen[0], table), nil
	case len(seen) > 1:
		return "", "", fmt.Errorf("several pipelines committed to %s: %s; choose one with --pipeline", table, strings.Join(seen, ", "))
	}
	return DefaultPipeline, "", nil
}
