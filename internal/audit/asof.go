// Package audit answers an auditor's questions from the tables' own history: what the
// ledger held as of a given moment (View), what each snapshot brought (History), and which
// snapshot, batch and source record brought a given transaction in (Find).
//
// Every answer comes from Iceberg's snapshots: each batch of a pipeline is one snapshot
// whose summary carries the pipeline, the batch number and the offsets map, and rows are
// never deleted (maintenance only rewrites them into other files), so a past snapshot is
// the ledger exactly as it was. What maintenance expired is gone: the errors say how far
// back the history still reaches.
package audit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
)

// AsOf names a moment of a table's history: a time, or a snapshot id. The zero AsOf is
// now (the tables' heads).
type AsOf struct {
	Time       time.Time // when SnapshotID is 0
	SnapshotID int64
}

// ParseAsOf reads an RFC 3339 time (2026-11-27T17:00:00Z, fractions and offsets allowed)
// or a snapshot id (a decimal integer). "" is now.
func ParseAsOf(s string) (AsOf, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return AsOf{}, nil
	}
	if id, err := strconv.ParseInt(s, 10, 64); err == nil {
		if id == 0 {
			return AsOf{}, errors.New("--as-of 0: a snapshot id is never 0; give an id from `ledgerstream history` or an RFC 3339 time")
		}
		return AsOf{SnapshotID: id}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return AsOf{}, fmt.Errorf("--as-of %q: neither an RFC 3339 time (e.g. 2026-11-27T17:00:00Z) nor a snapshot id", s)
	}
	return AsOf{Time: t.UTC()}, nil
}

// IsZero reports whether a is now.
func (a AsOf) IsZero() bool { return a.SnapshotID == 0 && a.Time.IsZero() }

func (a AsOf) String() string {
	switch {
	case a.SnapshotID != 0:
		return fmt.Sprintf("snapshot %d", a.SnapshotID)
	case !a.Time.IsZero():
		return a.Time.Format(time.RFC3339Nano)
	}
	return "now"
}

// ErrNotInHistory is the error, wrapped in a *HistoryError, of a moment the table's history
// does not reach.
var ErrNotInHistory = errors.New("not in the table's history")

// HistoryError says that a moment is outside what the table's history still holds, and
// what the oldest moment still available is.
type HistoryError struct {
	Table  string
	AsOf   AsOf
	Oldest iceberg.SnapshotInfo // zero when the table has no snapshot at all
	// Expired says whether older snapshots existed and were expired (by maintenance).
	Expired bool
}

func (e *HistoryError) Error() string {
	var b strings.Builder
	switch {
	case e.AsOf.SnapshotID != 0:
		fmt.Fprintf(&b, "%s has no snapshot %d in its history", e.Table, e.AsOf.SnapshotID)
		if e.Oldest.SnapshotID != 0 {
			b.WriteString(" (expired by maintenance, or not a snapshot of this table)")
		}
	default:
		fmt.Fprintf(&b, "%s has no snapshot at or before %s", e.Table, e.AsOf.Time.Format(time.RFC3339Nano))
	}
	switch {
	case e.Oldest.SnapshotID == 0:
		b.WriteString(": the table has no snapshot yet")
	case e.Expired:
		fmt.Fprintf(&b, ": the oldest moment still available is %s (snapshot %d); older snapshots were expired by maintenance",
			e.Oldest.Time.Format(time.RFC3339Nano), e.Oldest.SnapshotID)
	default:
		fmt.Fprintf(&b, ": the oldest moment available is %s, the table's first snapshot (%d)",
			e.Oldest.Time.Format(time.RFC3339Nano), e.Oldest.SnapshotID)
	}
	return b.String()
}

func (e *HistoryError) Unwrap() error { return ErrNotInHistory }

// resolve picks, in history (main's snapshots, newest first, as iceberg.Catalog.Snapshots
// returns them), the snapshot a names, and returns its index in history and the moment the
// view stands at: a's time, or for a snapshot id the instant before its successor was
// committed (zero, i.e. now, when it is the head), so that a view of a snapshot sees the
// other tables as they were while it was the head. history must not be empty.
func resolve(name string, history []iceberg.SnapshotInfo, a AsOf) (int, time.Time, error) {
	oldest := history[len(history)-1]
	notFound := &HistoryError{Table: name, AsOf: a, Oldest: oldest, Expired: oldest.ParentID != 0}
	if a.SnapshotID != 0 {
		for i, s := range history {
			if s.SnapshotID == a.SnapshotID {
				if i == 0 {
					return 0, time.Time{}, nil
				}
				return i, history[i-1].Time.Add(-time.Millisecond), nil
			}
		}
		return 0, time.Time{}, notFound
	}
	if i, ok := at(history, a.Time); ok {
		return i, a.Time, nil
	}
	return 0, time.Time{}, notFound
}

// at returns the index in history (newest first) of the newest snapshot committed at or
// before t, or false when every snapshot is younger. Snapshot times have millisecond
// precision: a snapshot stamped within t's millisecond counts as at or before t.
func at(history []iceberg.SnapshotInfo, t time.Time) (int, bool) {
	ms := t.UnixMilli()
	for i, s := range history {
		if s.Time.UnixMilli() <= ms {
			return i, true
		}
	}
	return 0, false
}
