package report

import (
	"fmt"
	"io"
	"strings"
)

// DamagedFile is a file of the ledger or its rejects table that a report or a verify could
// not read: its rows are missing from the figures. It is the JSON and text form of
// iceberg.DamageError, which the scan reports.
type DamagedFile struct {
	// Table is the table the file belongs to, namespace.table.
	Table string `json:"table"`
	// Kind is "data file", "manifest", "manifest list" or "metadata file".
	Kind string `json:"kind"`
	// Path is the file's full path or URI.
	Path string `json:"path"`
	// Problem says what is wrong with it ("missing", a size, the reader's error).
	Problem string `json:"problem"`
	// Rows is how many rows the file held by the table's metadata (-1: unknown); Read is
	// how many of them were read, and counted, before the damage was found.
	Rows int64 `json:"rows"`
	Read int64 `json:"rows_read"`
	// Source is where its rows came from, when the file's column bounds tell
	// ("financial_transactions/1 offsets 2000-2999").
	Source string `json:"source"`
	// Hint says what to do.
	Hint string `json:"hint"`
}

// Lost is how many of the file's rows are missing from the figures (-1: unknown).
func (d DamagedFile) Lost() int64 {
	if d.Rows < 0 {
		return -1
	}
	return max(d.Rows-d.Read, 0)
}

// String is one line: the file, what is wrong, the rows it held.
func (d DamagedFile) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s %s: %s", d.Kind, d.Table, d.Path, d.Problem)
	switch lost := d.Lost(); {
	case lost < 0:
		b.WriteString(" (rows it held: unknown)")
	case d.Read > 0:
		fmt.Fprintf(&b, " (%d rows unread of %d", lost, d.Rows)
	default:
		fmt.Fprintf(&b, " (%d rows", lost)
	}
	if d.Lost() >= 0 {
		if d.Source != "" {
			b.WriteString(", " + d.Source)
		}
		b.WriteString(")")
	}
	return b.String()
}

// DamagedRows is how many rows the files held that were not read, and whether every
// file's count is known.
func DamagedRows(files []DamagedFile) (rows int64, known bool) {
	known = true
	for _, f := range files {
		if l := f.Lost(); l >= 0 {
			rows += l
		} else {
			known = false
		}
	}
	return rows, known
}

// Incomplete says which rows a report that could not read some files lacks, and what to
// do; "" when every file was read. A report with rows missing must not pass for a complete
// one.
func (r *Report) Incomplete() string {
	if len(r.Damaged) == 0 {
		return ""
	}
	rows, known := DamagedRows(r.Damaged)
	paths := make([]string, len(r.Damaged))
	for i, d := range r.Damaged {
		paths[i] = d.Path
	}
	more := ""
	if !known {
		more = " and more"
	}
	return fmt.Sprintf("the report is incomplete: %d rows%s are missing from its figures, in files that could not be read: %s (restore them from a backup of the warehouse)",
		rows, more, strings.Join(paths, ", "))
}

// CheckReadableFiles is the name of DamageCheck's check.
const CheckReadableFiles = "readable_files"

// DamageCheck is verify's check that every file of the tables could be read: failed, with
// the rows the unreadable files held counted as lost, when some could not.
func DamageCheck(files []DamagedFile) Check {
	c := Check{Name: CheckReadableFiles, Passed: len(files) == 0}
	if c.Passed {
		c.Detail = "no file missing or damaged"
		return c
	}
	rows, known := DamagedRows(files)
	c.Figure = rows
	unknown := ""
	if !known {
		unknown = " and rows of unknown number"
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.String()
	}
	c.Detail = fmt.Sprintf("%d rows%s lost with %d unreadable files: %s", rows, unknown, len(files), strings.Join(names, "; "))
	return c
}

// WriteDamageText prints the damaged files, each with what to do, under a heading that
// says the figures are incomplete; nothing when there are none.
func WriteDamageText(w io.Writer, files []DamagedFile) error {
	if len(files) == 0 {
		return nil
	}
	var b strings.Builder
	rows, known := DamagedRows(files)
	more := ""
	if !known {
		more = " and more"
	}
	fmt.Fprintf(&b, "DAMAGED: %d files could not be read; their %d rows%s are missing from the figures below:\n", len(files), rows, more)
	for _, f := range files {
		fmt.Fprintf(&b, "  %s\n    what to do: %s\n", f, f.Hint)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
