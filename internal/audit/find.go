package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	ice "github.com/apache/iceberg-go"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// Position is the source position of a Kafka record.
type Position struct {
	Topic     string
	Partition int32
	Offset    int64
}

func (p Position) String() string { return fmt.Sprintf("%s/%d/%d", p.Topic, p.Partition, p.Offset) }

// ParsePosition reads TOPIC/PARTITION/OFFSET.
func ParsePosition(s string) (Position, error) {
	bad := fmt.Errorf("position %q: want TOPIC/PARTITION/OFFSET, e.g. financial_transactions/0/42", s)
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" {
		return Position{}, bad
	}
	p, err1 := strconv.ParseInt(parts[1], 10, 32)
	o, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Position{}, bad
	}
	return Position{Topic: parts[0], Partition: int32(p), Offset: o}, nil
}

// Origin is the snapshot that brought a row into its table.
type Origin struct {
	Table       string    `json:"table"`
	SnapshotID  int64     `json:"snapshot_id"`
	CommittedAt time.Time `json:"committed_at"`
	Kind        string    `json:"kind"`
	Pipeline    string    `json:"pipeline,omitempty"`
	Batch       int64     `json:"batch,omitempty"`
	// AtOrBefore says that the snapshots before this one were expired: the row came in
	// with this snapshot or an earlier one.
	AtOrBefore bool `json:"at_or_before,omitempty"`
}

func (o Origin) String() string {
	by := o.Kind
	if o.Kind == KindPipeline {
		by = fmt.Sprintf("pipeline %s batch %d", o.Pipeline, o.Batch)
	}
	s := fmt.Sprintf("snapshot %d of %s, committed %s by %s", o.SnapshotID, o.Table, o.CommittedAt.UTC().Format(time.RFC3339Nano), by)
	if o.AtOrBefore {
		s += " (or earlier: older snapshots were expired)"
	}
	return s
}

// LedgerMatch is a ledger row and where it came from.
type LedgerMatch struct {
	Origin         Origin     `json:"origin"`
	Row            ledger.Row `json:"-"`
	ProcessingTime time.Time  `json:"-"`
	// Columns are a custom contract's columns, name and canonical value (nil for the
	// notebook's rows).
	Columns [][2]string `json:"-"`
}

// MarshalJSON gives the row with the ledger's column names.
func (m LedgerMatch) MarshalJSON() ([]byte, error) {
	r := m.Row
	if m.Columns != nil {
		cols := make(map[string]string, len(m.Columns))
		for _, c := range m.Columns {
			cols[c[0]] = c[1]
		}
		return json.Marshal(struct {
			Origin          Origin            `json:"origin"`
			Columns         map[string]string `json:"columns"`
			TransactionHash string            `json:"transaction_hash"`
			ProcessingTime  time.Time         `json:"processing_time,omitzero"`
			Position        string            `json:"source_position"`
		}{m.Origin, cols, r.TransactionHash, m.ProcessingTime, position(r.SourceTopic, r.SourcePartition, r.SourceOffset).String()})
	}
	return json.Marshal(struct {
		Origin          Origin         `json:"origin"`
		TransactionID   string         `json:"transaction_id"`
		AccountFrom     string         `json:"account_from"`
		AccountTo       string         `json:"account_to"`
		Amount          report.Decimal `json:"amount"`
		Currency        string         `json:"currency"`
		TransactionType string         `json:"transaction_type"`
		TransactionHash string         `json:"transaction_hash"`
		EventTime       time.Time      `json:"event_timestamp"`
		ProcessingTime  time.Time      `json:"processing_time,omitzero"`
		Position        string         `json:"source_position"`
	}{m.Origin, r.TransactionID, r.AccountFrom, r.AccountTo, report.NewDecimal(r.Amount, 2), r.Currency, r.TransactionType,
		r.TransactionHash, r.EventTime, m.ProcessingTime, position(r.SourceTopic, r.SourcePartition, r.SourceOffset).String()})
}

// RejectMatch is a rejects row and where it came from.
type RejectMatch struct {
	Origin     Origin           `json:"origin"`
	Row        ledger.RejectRow `json:"-"`
	RejectedAt time.Time        `json:"-"`
}

// MarshalJSON gives the verdict and the position; `rejects show` gives the bytes.
func (m RejectMatch) MarshalJSON() ([]byte, error) {
	r := m.Row
	return json.Marshal(struct {
		Origin        Origin    `json:"origin"`
		Position      string    `json:"source_position"`
		Reason        string    `json:"reason"`
		Message       string    `json:"message"`
		TransactionID string    `json:"transaction_id,omitempty"`
		ValueSize     int64     `json:"value_size"`
		ValueSHA256   string    `json:"value_sha256,omitempty"`
		RejectedAt    time.Time `json:"rejected_at,omitzero"`
	}{m.Origin, position(r.SourceTopic, r.SourcePartition, r.SourceOffset).String(), string(r.Reason), r.Message,
		r.TransactionID, r.ValueSize, r.ValueSHA256, m.RejectedAt})
}

// Finding is what the tables hold for one transaction id or source position.
type Finding struct {
	Query   string        `json:"query"`
	Ledger  []LedgerMatch `json:"ledger"`
	Rejects []RejectMatch `json:"rejects"`
}

// Found reports whether either table holds something for the query.
func (f *Finding) Found() bool { return len(f.Ledger)+len(f.Rejects) > 0 }

// FindResult answers Find.
type FindResult struct {
	AsOf     string    `json:"as_of"`
	Findings []Finding `json:"findings"`
}

// Find looks up transaction ids and source positions in the ledger and the rejects table
// as of the view, and tells for each row which snapshot brought it in. A row of a pipeline
// is placed by the offsets maps alone (the first batch whose offsets passed its position);
// any other row (a foreign writer's) by a binary search of the history for the first
// snapshot that holds it, one filtered scan per step.
func (v *View) Find(ctx context.Context, ids []string, positions []Position) (*FindResult, error) {
	res := &FindResult{AsOf: v.AsOf.String()}
	filter := matchAny(iceberg.ColTransactionID, ledger.TypeString, ids, positions)
	if filter == nil {
		return res, nil
	}
	key := v.Contract.Field(v.Contract.Key)
	ledgerFilter := matchAny(key.Name, key.Type.Kind, ids, positions)
	var rows []LedgerMatch
	if v.Ledger.SnapshotID != 0 {
		if err := v.cat.ScanRowsWhere(ctx, v.ident, v.Ledger.SnapshotID, v.Contract, ledgerFilter, func(r ledger.Row, processed time.Time) error {
			m := LedgerMatch{Row: r, ProcessingTime: processed}
			if r.Custom != nil {
				for i, f := range v.Contract.Fields {
					m.Columns = append(m.Columns, [2]string{f.Name, r.Custom.Canonical(i, f.Type)})
				}
			}
			rows = append(rows, m)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	var rejects []RejectMatch
	if v.Rejects.SnapshotID != 0 {
		rident := iceberg.RejectsIdent(v.ident)
		if err := v.cat.ScanRejectsWhere(ctx, rident, v.Rejects.SnapshotID, filter, func(r ledger.RejectRow, at time.Time) error {
			r.Key, r.Value = nil, nil // the verdict, not the bytes
			rejects = append(rejects, RejectMatch{Row: r, RejectedAt: at})
			return nil
		}); err != nil {
			return nil, err
		}
	}
	for i := range rows {
		r := &rows[i].Row
		o, err := v.origin(ctx, identName(v.ident), v.History, position(r.SourceTopic, r.SourcePartition, r.SourceOffset), func(ctx context.Context, snap int64) (bool, error) {
			return v.holds(ctx, false, snap, r.TransactionID, position(r.SourceTopic, r.SourcePartition, r.SourceOffset))
		})
		if err != nil {
			return nil, err
		}
		rows[i].Origin = o
	}
	for i := range rejects {
		r := &rejects[i].Row
		pos := position(r.SourceTopic, r.SourcePartition, r.SourceOffset)
		o, err := v.origin(ctx, identName(iceberg.RejectsIdent(v.ident)), v.RejectsHistory, pos, func(ctx context.Context, snap int64) (bool, error) {
			return v.holds(ctx, true, snap, r.TransactionID, pos)
		})
		if err != nil {
			return nil, err
		}
		rejects[i].Origin = o
	}
	for _, id := range ids {
		f := Finding{Query: id}
		for _, m := range rows {
			if m.Row.TransactionID == id {
				f.Ledger = append(f.Ledger, m)
			}
		}
		for _, m := range rejects {
			if m.Row.TransactionID == id {
				f.Rejects = append(f.Rejects, m)
			}
		}
		res.Findings = append(res.Findings, f)
	}
	for _, p := range positions {
		f := Finding{Query: p.String()}
		for _, m := range rows {
			if position(m.Row.SourceTopic, m.Row.SourcePartition, m.Row.SourceOffset) == p {
				f.Ledger = append(f.Ledger, m)
			}
		}
		for _, m := range rejects {
			if position(m.Row.SourceTopic, m.Row.SourcePartition, m.Row.SourceOffset) == p {
				f.Rejects = append(f.Rejects, m)
			}
		}
		res.Findings = append(res.Findings, f)
	}
	return res, nil
}

// origin finds the snapshot of history (newest first; the row is in history[0]) that
// brought the row at pos in: by the offsets maps, else by searching with holds.
func (v *View) origin(ctx context.Context, name string, history []iceberg.SnapshotInfo, pos Position, holds func(context.Context, int64) (bool, error)) (Origin, error) {
	if len(history) == 0 {
		return Origin{}, fmt.Errorf("audit: %s holds a row at %s but has no snapshot", name, pos)
	}
	i, atOrBefore, ok := locate(history, pos)
	if !ok {
		// Not a pipeline's record: the first snapshot holding it. Rows are never removed,
		// so "holds" is true from some snapshot on: binary search for it.
		lo, hi := 0, len(history)-1 // history[lo] holds it; find the oldest that does
		for lo < hi {
			mid := (lo + hi + 1) / 2
			has, err := holds(ctx, history[mid].SnapshotID)
			if err != nil {
				return Origin{}, err
			}
			if has {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		i, atOrBefore = lo, lo == len(history)-1 && history[lo].ParentID != 0
	}
	s := history[i]
	return Origin{Table: name, SnapshotID: s.SnapshotID, CommittedAt: s.Time, Kind: kindOf(s), Pipeline: s.Pipeline,
		Batch: s.Batch, AtOrBefore: atOrBefore}, nil
}

// locate returns the index in history (newest first) of the first snapshot of a pipeline
// whose offsets map passed pos: the batch that read the record. atOrBefore is set when that
// is the oldest snapshot of its pipeline still kept and older ones were expired.
func locate(history []iceberg.SnapshotInfo, pos Position) (i int, atOrBefore, ok bool) {
	p := partitionOf(pos.Topic, pos.Partition)
	for i = len(history) - 1; i >= 0; i-- {
		s := history[i]
		if s.Pipeline == "" || s.Offsets[p] <= pos.Offset {
			continue
		}
		_, earlier := newestOf(history[i+1:], s.Pipeline)
		return i, !earlier && history[len(history)-1].ParentID != 0, true
	}
	return 0, false, false
}

// holds reports whether the ledger (or the rejects table) at snapshot snap has the row of
// transaction id at pos.
func (v *View) holds(ctx context.Context, rejects bool, snap int64, id string, pos Position) (bool, error) {
	filter := matchAny("", 0, nil, []Position{pos})
	found := false
	if rejects {
		err := v.cat.ScanRejectsWhere(ctx, iceberg.RejectsIdent(v.ident), snap, filter, func(r ledger.RejectRow, _ time.Time) error {
			found = found || r.TransactionID == id
			return nil
		})
		return found, err
	}
	err := v.cat.ScanRowsWhere(ctx, v.ident, snap, v.Contract, filter, func(r ledger.Row, _ time.Time) error {
		found = found || r.TransactionID == id
		return nil
	})
	return found, err
}

// matchAny is the row filter for rows with one of ids in column key (of kind keyKind: a
// long or int key compares as a number, and an id that is not one matches nothing) or at one
// of positions (nil: none asked for).
func matchAny(key string, keyKind ledger.TypeKind, ids []string, positions []Position) ice.BooleanExpression {
	var terms []ice.BooleanExpression
	switch {
	case len(ids) == 0:
	case keyKind == ledger.TypeLong || keyKind == ledger.TypeInt:
		var n []int64
		for _, id := range ids {
			if x, err := strconv.ParseInt(id, 10, 64); err == nil {
				n = append(n, x)
			}
		}
		if len(n) > 0 {
			terms = append(terms, ice.IsIn(ice.Reference(key), n...))
		}
	default:
		terms = append(terms, ice.IsIn(ice.Reference(key), ids...))
	}
	for _, p := range positions {
		terms = append(terms, ice.NewAnd(
			ice.EqualTo(ice.Reference(iceberg.ColSourceTopic), p.Topic),
			ice.EqualTo(ice.Reference(iceberg.ColSourcePartition), p.Partition),
			ice.EqualTo(ice.Reference(iceberg.ColSourceOffset), p.Offset)))
	}
	switch len(terms) {
	case 0:
		return nil
	case 1:
		return terms[0]
	}
	return ice.NewOr(terms[0], terms[1], terms[2:]...)
}

func position(topic string, partition int32, offset int64) Position {
	return Position{Topic: topic, Partition: partition, Offset: offset}
}

// WriteText prints each finding: the origin, then the row.
func (r *FindResult) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Findings {
		if !f.Found() {
			fmt.Fprintf(&b, "%s: in neither the ledger nor the rejects table (as of %s)\n\n", f.Query, r.AsOf)
			continue
		}
		for _, m := range f.Ledger {
			row := m.Row
			fmt.Fprintf(&b, "%s: ledger row from %s\n", f.Query, position(row.SourceTopic, row.SourcePartition, row.SourceOffset))
			fmt.Fprintf(&b, "  brought in by %s\n", m.Origin)
			fields := [][2]string{
				{"transaction_id", row.TransactionID}, {"account_from", row.AccountFrom}, {"account_to", row.AccountTo},
				{"amount", report.NewDecimal(row.Amount, 2).String()}, {"currency", row.Currency},
				{"transaction_type", row.TransactionType}, {"transaction_hash", row.TransactionHash},
				{"event_timestamp", row.EventTime.UTC().Format(time.RFC3339Nano)},
				{"processing_time", m.ProcessingTime.UTC().Format(time.RFC3339Nano)},
			}
			if m.Columns != nil {
				fields = append(slices.Clone(m.Columns), [2]string{"transaction_hash", row.TransactionHash},
					[2]string{"processing_time", m.ProcessingTime.UTC().Format(time.RFC3339Nano)})
			}
			writeFields(&b, fields)
		}
		for _, m := range f.Rejects {
			row := m.Row
			fmt.Fprintf(&b, "%s: rejected record %s\n", f.Query, position(row.SourceTopic, row.SourcePartition, row.SourceOffset))
			fmt.Fprintf(&b, "  brought in by %s\n", m.Origin)
			writeFields(&b, [][2]string{{"reason", string(row.Reason)}, {"message", row.Message},
				{"transaction_id", row.TransactionID}, {"value_size", strconv.FormatInt(row.ValueSize, 10)},
				{"rejected_at", m.RejectedAt.UTC().Format(time.RFC3339Nano)}})
			fmt.Fprintf(&b, "  (the message itself: ledgerstream rejects show %s)\n", position(row.SourceTopic, row.SourcePartition, row.SourceOffset))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFields(b *strings.Builder, fields [][2]string) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f[0]))
	}
	for _, f := range fields {
		fmt.Fprintf(b, "  %-*s  %s\n", width, f[0], f[1])
	}
}

// NotFound returns the queries neither table holds, sorted.
func (r *FindResult) NotFound() []string {
	var out []string
	for _, f := range r.Findings {
		if !f.Found() {
			out = append(out, f.Query)
		}
	}
	sort.Strings(out)
	return out
}
