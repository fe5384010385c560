package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// ParseWindow reads report's and verify's --from and --to (RFC 3339 times, or dates
// YYYY-MM-DD for their midnight UTC; "" is open) and --where (COLUMN=V1,V2, each repeat
// one more condition).
func ParseWindow(from, to string, where []string) (iceberg.Window, error) {
	var w iceberg.Window
	var err error
	if w.From, err = parseWindowTime("--from", from); err != nil {
		return w, err
	}
	if w.To, err = parseWindowTime("--to", to); err != nil {
		return w, err
	}
	for _, c := range where {
		col, vals, ok := strings.Cut(c, "=")
		col = strings.TrimSpace(col)
		if !ok || col == "" {
			return w, fmt.Errorf("--where %q: want COLUMN=VALUE[,VALUE...], e.g. currency=EUR,USD", c)
		}
		cond := iceberg.Condition{Column: col}
		for v := range strings.SplitSeq(vals, ",") {
			if v = strings.TrimSpace(v); v != "" {
				cond.Values = append(cond.Values, v)
			}
		}
		w.Where = append(w.Where, cond)
	}
	return w, nil
}

func parseWindowTime(flag, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: neither an RFC 3339 time (e.g. 2025-01-16T00:00:00Z) nor a date YYYY-MM-DD", flag, s)
	}
	return t.UTC(), nil
}

// ScanLedgerWindow calls fn for every row of the ledger as of the view that is in w, and
// returns how many data files the scan read of how many the snapshot has. The window is the
// scan's row filter, so that files whose partition values or column bounds exclude it are
// never opened; each row is checked against it again (Window.Match), so that what the scan
// returns never depends on how far it prunes. Damaged files are recorded as ScanLedger
// records them (DamagedFiles).
func (v *View) ScanLedgerWindow(ctx context.Context, w iceberg.Window, fn func(row ledger.Row, processed time.Time) error) (iceberg.ScanPlan, error) {
	filter, err := w.Filter(v.Contract)
	if err != nil {
		return iceberg.ScanPlan{}, err
	}
	if v.Ledger.SnapshotID == 0 {
		return iceberg.ScanPlan{}, nil
	}
	plan, err := v.cat.PlanScan(ctx, v.ident, v.Ledger.SnapshotID, filter)
	if err != nil {
		return iceberg.ScanPlan{}, err
	}
	opts := iceberg.ScanOptions{SnapshotID: v.Ledger.SnapshotID, Filter: filter, OnDamage: v.damage}
	err = v.cat.ScanRowsOpts(ctx, v.ident, v.Contract, opts, func(row ledger.Row, processed time.Time) error {
		if !w.Match(v.Contract, &row) {
			return nil
		}
		return fn(row, processed)
	})
	return plan, err
}

// ReportWindow is Report over the rows in w only (the zero Window: Report). The report says
// which rows it covers and how many data files were read; it has no rejects section, since
// a refused message has no event time the ledger trusts.
func (v *View) ReportWindow(ctx context.Context, w iceberg.Window) (*report.Report, error) {
	if w.IsZero() {
		return v.Report(ctx)
	}
	b := report.NewContractBuilder(v.Contract, 0)
	plan, err := v.ScanLedgerWindow(ctx, w, func(row ledger.Row, processed time.Time) error {
		b.Add(row, processed)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := b.Report()
	rep.Window = &report.Window{Filter: w.Describe(v.Contract), FilesRead: plan.Files, FilesTotal: plan.Total}
	rep.Damaged = v.DamagedFiles()
	return rep, nil
}
