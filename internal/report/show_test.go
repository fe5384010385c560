package report

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestShowFooterAfter20Rows(t *testing.T) {
	var rows [][]string
	for i := range 21 {
		rows = append(rows, []string{fmt.Sprint(i)})
	}
	got := showString([]string{"n"}, rows, 20, 20)
	// Width 3 (the minimum), 20 rows, then Spark's footer.
	if !strings.HasPrefix(got, "+---+\n|  n|\n+---+\n|  0|\n") ||
		!strings.HasSuffix(got, "| 19|\n+---+\nonly showing top 20 rows\n") {
		t.Fatalf("got:\n%s", got)
	}
	if got := showString([]string{"n"}, rows[:20], 20, 20); strings.Contains(got, "only showing") {
		t.Fatalf("exactly 20 rows need no footer:\n%s", got)
	}
	if got := showString([]string{"n"}, rows[:2], 1, 20); !strings.HasSuffix(got, "only showing top 1 row\n") {
		t.Fatalf("singular footer:\n%s", got)
	}
}

func TestTruncateCell(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"12345678901234567890", 20, "12345678901234567890"},  // exactly 20: kept
		{"123456789012345678901", 20, "12345678901234567..."}, // 21: 17 + "..."
		{"abcdef", 3, "abc"},    // truncate < 4: no ellipsis
		{"abcdef", 0, "abcdef"}, // 0: never
		{"ééééééééééééééééééééé", 20, "ééééééééééééééééé..."}, // counted in characters, not bytes
		{"aaaaaaaaaaaaaaaa😀bbbb", 20, "aaaaaaaaaaaaaaaa?..."}, // 😀 is 2 UTF-16 units; Java splits it
	} {
		if got := truncateCell(tc.in, tc.n); got != tc.want {
			t.Errorf("truncateCell(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestShowWidthsAndEscapes(t *testing.T) {
	// Full-width characters take two columns, as Spark's stringHalfWidth counts them;
	// a newline in a cell is shown escaped so it cannot break the table.
	got := showString([]string{"name", "note"}, [][]string{{"日本", "a\nb"}}, 20, 20)
	want := "+----+----+\n" +
		"|name|note|\n" +
		"+----+----+\n" +
		"|日本|a\\nb|\n" +
		"+----+----+\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatTimestamp(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 1, 16, 10, 0, 0, 123456000, time.UTC), "2025-01-16 10:00:00.123456"},
		{time.Date(2025, 1, 16, 10, 0, 0, 120000000, time.UTC), "2025-01-16 10:00:00.12"},
		{time.Date(2025, 1, 16, 10, 0, 0, 0, time.UTC), "2025-01-16 10:00:00"},
		{time.Date(2025, 1, 16, 10, 0, 0, 999999999, time.UTC), "2025-01-16 10:00:00.999999"}, // truncated, not rounded
		{time.Date(2025, 1, 16, 11, 0, 0, 0, cet), "2025-01-16 10:00:00"},                     // printed in UTC
	} {
		if got := formatTimestamp(tc.t); got != tc.want {
			t.Errorf("formatTimestamp(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}
