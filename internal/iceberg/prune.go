package iceberg

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

// Window selects the ledger rows that report and verify read: a time window on the
// contract's report time column (event_timestamp for the notebook's ledger) and values of
// its report group_by columns. As an Iceberg row filter (Filter) it prunes the scan: a
// manifest or data file whose partition values (day(event_timestamp), identity(currency),
// ...) or column bounds cannot match is never opened. The zero Window selects every row.
type Window struct {
	// From and To bound the time column: From <= t < To; a zero bound is open.
	From, To time.Time
	// Where keeps the rows whose column is one of the values, for every condition.
	Where []Condition
}

// Condition is one `--where COLUMN=V1,V2`: the column is one of the values.
type Condition struct {
	Column string
	Values []string
}

// IsZero reports whether w selects every row.
func (w Window) IsZero() bool { return w.From.IsZero() && w.To.IsZero() && len(w.Where) == 0 }

// Describe says which rows w selects in a ledger of contract ct, for a report's heading:
// `event_timestamp >= 2025-01-16T00:00:00Z and currency in (EUR, USD)`.
func (w Window) Describe(ct *ledger.Contract) string {
	timeCol := ct.Report.Time
	var terms []string
	if !w.From.IsZero() {
		terms = append(terms, timeCol+" >= "+w.From.UTC().Format(time.RFC3339Nano))
	}
	if !w.To.IsZero() {
		terms = append(terms, timeCol+" < "+w.To.UTC().Format(time.RFC3339Nano))
	}
	for _, c := range w.Where {
		terms = append(terms, c.Column+" in ("+strings.Join(c.Values, ", ")+")")
	}
	return strings.Join(terms, " and ")
}

// Check says what is wrong with w for a ledger of contract ct: a window that ends before
// it starts, a condition on a column that is not one of the report's group_by columns, or a
// value that is not of the column's type.
func (w Window) Check(ct *ledger.Contract) error {
	_, err := w.Filter(ct)
	return err
}

// Filter returns w as an Iceberg row filter on a ledger of contract ct (nil for the zero
// Window), or says what is wrong with w (see Check).
func (w Window) Filter(ct *ledger.Contract) (ice.BooleanExpression, error) {
	if !w.From.IsZero() && !w.To.IsZero() && !w.From.Before(w.To) {
		return nil, fmt.Errorf("the window is empty: --from %s is not before --to %s", w.From.UTC().Format(time.RFC3339Nano), w.To.UTC().Format(time.RFC3339Nano))
	}
	var terms []ice.BooleanExpression
	if !w.From.IsZero() || !w.To.IsZero() {
		col := ct.Report.Time
		fi := ct.FieldIndex(col)
		if fi < 0 {
			return nil, fmt.Errorf("the contract's report time column %q is not one of its fields", col)
		}
		ref := ice.Reference(col)
		switch t := ct.Fields[fi].Type; t.Kind {
		case ledger.TypeTimestampTz, ledger.TypeTimestamp:
			if !w.From.IsZero() {
				terms = append(terms, ice.GreaterThanEqual(ref, ice.Timestamp(w.From.UnixMicro())))
			}
			if !w.To.IsZero() {
				terms = append(terms, ice.LessThan(ref, ice.Timestamp(w.To.UnixMicro())))
			}
		case ledger.TypeDate:
			// A date is in the window when its midnight (UTC) is.
			if !w.From.IsZero() {
				terms = append(terms, ice.GreaterThanEqual(ref, ice.Date(ceilDays(w.From))))
			}
			if !w.To.IsZero() {
				terms = append(terms, ice.LessThan(ref, ice.Date(ceilDays(w.To))))
			}
		default:
			return nil, fmt.Errorf("the contract's report time column %q is a %s, not a date or timestamp", col, t)
		}
	}
	for _, c := range w.Where {
		if !slices.Contains(ct.Report.GroupBy, c.Column) {
			return nil, fmt.Errorf("--where %s: not one of the report's group_by columns (%s)", c.Column, strings.Join(ct.Report.GroupBy, ", "))
		}
		if len(c.Values) == 0 {
			return nil, fmt.Errorf("--where %s: no value (want %s=V1,V2,...)", c.Column, c.Column)
		}
		f := &ct.Fields[ct.FieldIndex(c.Column)]
		ref := ice.Reference(c.Column)
		var term ice.BooleanExpression
		var err error
		switch f.Type.Kind {
		case ledger.TypeString:
			term = ice.IsIn(ref, c.Values...)
		case ledger.TypeLong, ledger.TypeInt:
			vals := make([]int64, len(c.Values))
			for i, s := range c.Values {
				if vals[i], err = strconv.ParseInt(s, 10, 64); err != nil {
					return nil, fmt.Errorf("--where %s=%s: not an integer (the column is a %s)", c.Column, s, f.Type)
				}
			}
			term = ice.IsIn(ref, vals...)
		case ledger.TypeBoolean:
			vals := make([]bool, len(c.Values))
			for i, s := range c.Values {
				if vals[i], err = strconv.ParseBool(s); err != nil {
					return nil, fmt.Errorf("--where %s=%s: not true or false", c.Column, s)
				}
			}
			term = ice.IsIn(ref, vals...)
		case ledger.TypeDate:
			vals := make([]ice.Date, len(c.Values))
			for i, s := range c.Values {
				d, err := time.Parse(time.DateOnly, s)
				if err != nil {
					return nil, fmt.Errorf("--where %s=%s: not a date YYYY-MM-DD", c.Column, s)
				}
				vals[i] = ice.Date(d.Unix() / 86400)
			}
			term = ice.IsIn(ref, vals...)
		default:
			return nil, fmt.Errorf("--where %s: a %s column cannot be filtered on (string, long, int, boolean and date columns can)", c.Column, f.Type)
		}
		terms = append(terms, term)
	}
	switch len(terms) {
	case 0:
		return nil, nil
	case 1:
		return terms[0], nil
	}
	return ice.NewAnd(terms[0], terms[1], terms[2:]...), nil
}

// Match reports whether row (decoded by contract ct, or the notebook's when ct is the
// default) is in w: the rule Filter gives the scan, in Go, for callers that must not depend
// on how a scan applies a filter.
func (w Window) Match(ct *ledger.Contract, row *ledger.Row) bool {
	if !w.From.IsZero() || !w.To.IsZero() {
		t := row.EventTime // the report time column; midnight UTC for a date
		switch {
		case t.IsZero():
			return false
		case isDate(ct):
			d := t.Unix() / 86400
			if !w.From.IsZero() && d < int64(ceilDays(w.From)) || !w.To.IsZero() && d >= int64(ceilDays(w.To)) {
				return false
			}
		case !w.From.IsZero() && t.Before(w.From), !w.To.IsZero() && !t.Before(w.To):
			return false
		}
	}
	for _, c := range w.Where {
		var v string
		switch fi := ct.FieldIndex(c.Column); {
		case row.Custom != nil:
			v = row.Custom.Canonical(fi, ct.Fields[fi].Type)
		case c.Column == ColTransactionType:
			v = row.TransactionType
		case c.Column == ColCurrency:
			v = row.Currency
		}
		if !slices.Contains(c.Values, v) {
			return false
		}
	}
	return true
}

// isDate reports whether ct's report time column is a date.
func isDate(ct *ledger.Contract) bool {
	fi := ct.FieldIndex(ct.Report.Time)
	return fi >= 0 && ct.Fields[fi].Type.Kind == ledger.TypeDate
}

// ceilDays is the first whole day (days since 1970-01-01, UTC) at or after t.
func ceilDays(t time.Time) int32 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d-- // floor, not truncation
	}
	if s-d*86400 != 0 || t.Nanosecond() != 0 {
		d++
	}
	return int32(d)
}

// ScanPlan is how much of a table a filtered scan reads.
type ScanPlan struct {
	// Files is how many data files the scan opens, of Total in the snapshot.
	Files, Total int
}

// PlanScan plans the scan of ident at snapshotID (0: main's head) with filter (nil: all)
// without reading any data file: how many data files it would open, and how many the
// snapshot has. It reads the manifests, as the scan itself does.
func (c *Catalog) PlanScan(ctx context.Context, ident table.Identifier, snapshotID int64, filter ice.BooleanExpression) (ScanPlan, error) {
	tbl, err := c.LoadTable(ctx, ident)
	if err != nil {
		return ScanPlan{}, err
	}
	if snapshotID == 0 {
		if snapshotID = mainSnapshotID(tbl.Metadata()); snapshotID == 0 {
			return ScanPlan{}, nil
		}
	}
	count := func(filter ice.BooleanExpression) (int, error) {
		opts := []table.ScanOption{table.WithSnapshotID(snapshotID)}
		if filter != nil {
			opts = append(opts, table.WithRowFilter(filter))
		}
		tasks, err := tbl.Scan(opts...).PlanFiles(ctx)
		if err != nil {
			return 0, fmt.Errorf("iceberg: plan a scan of %s: %w", identString(ident), err)
		}
		return len(tasks), nil
	}
	var p ScanPlan
	if p.Total, err = count(nil); err != nil {
		return ScanPlan{}, err
	}
	if p.Files, err = count(filter); err != nil {
		return ScanPlan{}, err
	}
	return p, nil
}
