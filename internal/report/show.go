package report

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Defaults of Spark's DataFrame.show(): 20 rows, cells truncated to 20 characters.
const (
	showRows     = 20
	showTruncate = 20
)

// sparkTimestamp is how Spark prints a TIMESTAMP (session time zone UTC here): microseconds,
// with trailing fractional zeros and then the point dropped. Go's ".999999" does exactly
// that, and truncates (never rounds) nanoseconds, as Spark's microsecond storage does.
const sparkTimestamp = "2006-01-02 15:04:05.999999"

func formatTimestamp(t time.Time) string { return t.UTC().Format(sparkTimestamp) }

// showString lays out a table as Spark's Dataset.showString(numRows, truncate) does:
//
//	+---+---+
//	|  a|  b|
//	+---+---+
//	|  1|  x|
//	+---+---+
//
// Column widths are at least 3. With truncate > 0 every cell, the header included, is
// right-aligned, and a cell longer than truncate (whatever its type: a timestamp with a
// fraction is 21 to 26 characters, so show() cuts it) becomes its first truncate-3
// characters and "..."; with truncate 0 cells are whole and left-aligned. When there are more than numRows rows, only numRows are shown and the footer
// "only showing top N rows" follows. Lengths are counted as Java counts them: truncation
// in UTF-16 code units, widths in "half widths" (East Asian full-width characters count 2).
func showString(header []string, rows [][]string, numRows, truncate int) string {
	hasMore := len(rows) > numRows
	if hasMore {
		rows = rows[:numRows]
	}
	cells := make([][]string, 0, len(rows)+1)
	cells = append(cells, prettyCells(header, truncate))
	for _, row := range rows {
		cells = append(cells, prettyCells(row, truncate))
	}

	widths := make([]int, len(header))
	for i := range widths {
		widths[i] = 3
	}
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], halfWidth(c))
		}
	}

	var sb strings.Builder
	sep := func() {
		sb.WriteByte('+')
		for _, w := range widths {
			sb.WriteString(strings.Repeat("-", w))
			sb.WriteByte('+')
		}
		sb.WriteByte('\n')
	}
	line := func(row []string) {
		sb.WriteByte('|')
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-halfWidth(c))
			if truncate > 0 {
				sb.WriteString(pad + c)
			} else {
				sb.WriteString(c + pad)
			}
			sb.WriteByte('|')
		}
		sb.WriteByte('\n')
	}
	sep()
	line(cells[0])
	sep()
	for _, row := range cells[1:] {
		line(row)
	}
	sep()
	if hasMore {
		noun := "rows"
		if numRows == 1 {
			noun = "row"
		}
		sb.WriteString("only showing top ")
		sb.WriteString(strconv.Itoa(numRows))
		sb.WriteByte(' ')
		sb.WriteString(noun)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func prettyCells(row []string, truncate int) []string {
	out := make([]string, len(row))
	for i, c := range row {
		out[i] = truncateCell(escapeMeta(c), truncate)
	}
	return out
}

// metaEscaper is Spark's SchemaUtils.escapeMetaCharacters: control characters that would
// break the table layout are shown as their escape sequences.
var metaEscaper = strings.NewReplacer(
	"\n", `\n`, "\r", `\r`, "\t", `\t`, "\f", `\f`, "\b", `\b`, "\v", `\v`, "\a", `\a`,
)

func escapeMeta(s string) string { return metaEscaper.Replace(s) }

// truncateCell cuts s as show() does: longer than n UTF-16 code units becomes its first
// n-3 units and "..." (n < 4: its first n units).
func truncateCell(s string, n int) string {
	if n <= 0 || utf16Len(s) <= n {
		return s
	}
	keep := n - 3
	if n < 4 {
		keep = n
	}
	var sb strings.Builder
	units := 0
	for _, r := range s {
		u := utf16.RuneLen(r)
		if u < 0 {
			u = 1
		}
		if units+u > keep {
			if units < keep {
				// Java's substring would split the surrogate pair; the lone half prints as '?'.
				sb.WriteByte('?')
			}
			break
		}
		sb.WriteRune(r)
		units += u
	}
	if n >= 4 {
		sb.WriteString("...")
	}
	return sb.String()
}

func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// halfWidth is Spark's Utils.stringHalfWidth: UTF-16 length plus one for every character
// in the East Asian full-width ranges Spark lists.
func halfWidth(s string) int {
	n := utf16Len(s)
	for _, r := range s {
		if isFullWidth(r) {
			n++
		}
	}
	return n
}

func isFullWidth(r rune) bool {
	switch {
	case r < 0x1100:
		return false
	case r <= 0x115F,
		0x2E80 <= r && r <= 0xA4CF,
		0xAC00 <= r && r <= 0xD7A3,
		0xF900 <= r && r <= 0xFAFF,
		0xFE10 <= r && r <= 0xFE19,
		0xFE30 <= r && r <= 0xFE6F,
		0xFF00 <= r && r <= 0xFF60,
		0xFFE0 <= r && r <= 0xFFE6:
		return true
	}
	return false
}
