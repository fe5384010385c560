package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/audit"
	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var asJSON, tableOnly bool
	var pipeline, asOf string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the ledger: the notebook's validations and, against the topic, exactly once",
		Long: `Runs the reference notebook's validations on the ledger (rows > 0, distinct hashes =
rows, distinct ids = rows, no amount <= 0), then reconciles the ledger with the topic read
with read_committed up to the offsets the pipeline committed: every message there is in
exactly one of the ledger (once, at its source position, with its hash) and the rejects
table (with the reason its content or the ledger's history gives), no transaction_id
appears twice in the ledger, and nothing in either table is absent from the topic.
Exits 1 naming the first failed check.

--as-of checks the ledger as it was at an RFC 3339 time or a snapshot id (see
'ledgerstream history'), reconciled up to the offsets the pipeline had committed then.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, err := audit.ParseAsOf(asOf)
			if err != nil {
				return err
			}
			res, err := verify(cmd.Context(), g, pipeline, !tableOnly, at)
			if err != nil {
				return err
			}
			if res.pipelineNote != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), res.pipelineNote)
			}
			return res.write(cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().BoolVar(&tableOnly, "table-only", false, "run only the notebook's validations, without reading the topic")
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "pipeline whose committed offsets bound the reconciliation (default: the only one that committed to the table)")
	cmd.Flags().StringVar(&asOf, "as-of", "", "check the ledger as it was at this RFC 3339 time or snapshot id (default: now)")
	return cmd
}

// verifyResult is the outcome of verify: the notebook's checks and the reconciliation.
type verifyResult struct {
	// Pipeline is the pipeline whose offsets bound the reconciliation.
	Pipeline  string                 `json:"pipeline"`
	Checks    []report.Check         `json:"checks"`
	Reconcile *report.Reconciliation `json:"reconciliation"` // null with --table-only

	pipelineNote string // how Pipeline was chosen, when the user did not name it
}

func (v *verifyResult) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else {
		if v.Reconcile != nil {
			if err := v.Reconcile.WriteText(w); err != nil {
				return err
			}
		}
		if err := report.WriteChecksText(w, v.Checks); err != nil {
			return err
		}
	}
	if err := report.Err(v.Checks); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}

// verify scans the ledger as of at once for the notebook's validations and the
// reconciliation, and reads the topic when withTopic is set: the reconciliation is bounded
// by the offsets the pipeline had committed as of at.
func verify(ctx context.Context, g *globals, pipeline string, withTopic bool, at audit.AsOf) (*verifyResult, error) {
	ident, cat, err := openLedger(ctx, g)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	v, err := audit.Open(ctx, cat, ident, at)
	if err != nil {
		return nil, err
	}
	pipeline, note, err := choosePipeline(v.History, pipeline, g.table)
	if err != nil {
		return nil, err
	}
	committed, _, err := v.Committed(pipeline)
	if err != nil {
		return nil, err
	}
	if _, err := ledgerContract(ctx, g, cat, ident); err != nil {
		return nil, err // a --contract that is not the table's
	}
	// The topic ids the pipeline's newest snapshot recorded (ledgerstream.topic-ids), to
	// tell a re-created topic.
	var topicIDs map[string]string
	if s, found, err := iceberg.NewestOfPipeline(v.History, pipeline); err == nil && found {
		topicIDs = s.TopicIDs
	}
	b := report.NewContractBuilder(v.Contract, 0)
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
		if row.SourceTopic == g.topic {
			rec.AddRow(row)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	res := &verifyResult{Pipeline: pipeline, pipelineNote: note, Checks: report.Validate(b.Report())}
	if !withTopic {
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
	topic, err := kafka.ReadTopicState(ctx, g.kafkaConfigBounded(), g.topic, func(r engine.Record) error {
		if !r.Control {
			rec.AddRecord(report.TopicPartition{Topic: r.Topic, Partition: r.Partition.Partition}, r.Offset, r.Value, &rules)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read topic %s: %w", g.topic, err)
	}
	// Records below the log start were deleted (retention): rows there are not strays,
	// and offsets there that no table accounts for were lost before processing.
	starts := make(map[report.TopicPartition]int64, len(topic.Start))
	for p, off := range topic.Start {
		starts[report.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = off
	}
	rec.SetLogStarts(starts)
	// The rule run applies: is this the topic the offsets were read from?
	if changed := engine.CheckTopic(topicIDs[g.topic], committed, topic); changed != nil {
		rec.SetTopicRecreated(fmt.Sprintf("topic %s is not the topic the pipeline's offsets were read from: %s; "+
			"the ledger cannot be reconciled with it", g.topic, changed.What))
	}
	res.Reconcile = rec.Result()
	res.Checks = append(res.Checks, res.Reconcile.Check())
	return res, nil
}

// defaultPipeline is run's default --pipeline.
const defaultPipeline = "exactly-once-processor"

// choosePipeline picks the pipeline whose offsets a command reads, from what the table's
// history says committed to it: the one named, when it did commit (a name that never
// committed would make every row look unexpected: it is refused, listing the pipelines
// that did); with none named, the only pipeline that committed (and a note saying so), or
// run's default when none did. An expired history that no longer shows a named pipeline is
// left to the caller's own check (engine.ErrHistoryTruncated).
func choosePipeline(history []iceberg.SnapshotInfo, named, table string) (pipeline, note string, err error) {
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
	return defaultPipeline, "", nil
}
