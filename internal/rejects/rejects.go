// Package rejects is the rejects table as an operator reads it: its rows in source position
// order, one row whole (key, value and headers as text or hex), and sending chosen rows to
// the topic again once their cause is fixed (`ledgerstream rejects list|show|republish`).
// The table itself (schema, sink) is internal/iceberg's.
package rejects

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/iceberg-go/table"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// Row is a reject row with its rejected_at.
type Row struct {
	ledger.RejectRow
	RejectedAt time.Time
}

// Read scans the rejects table of the ledger ident and returns the rows keep accepts, in
// source position order.
func Read(ctx context.Context, cat *iceberg.Catalog, ident table.Identifier, keep func(*ledger.RejectRow) bool) ([]Row, error) {
	var out []Row
	err := cat.ScanRejects(ctx, iceberg.RejectsIdent(ident), 0, func(r ledger.RejectRow, at time.Time) error {
		if keep(&r) {
			out = append(out, Row{RejectRow: r, RejectedAt: at})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.SourceTopic, b.SourceTopic), cmp.Compare(a.SourcePartition, b.SourcePartition),
			cmp.Compare(a.SourceOffset, b.SourceOffset))
	})
	return out, nil
}

// Position is the row's source position, TOPIC/PARTITION/OFFSET.
func (r *Row) Position() string {
	return fmt.Sprintf("%s/%d/%d", r.SourceTopic, r.SourcePartition, r.SourceOffset)
}

// MarshalJSON prints the row with snake_case names; key, value and header values are
// given as text when they are printable UTF-8 and in hex otherwise (see printable).
func (r *Row) MarshalJSON() ([]byte, error) {
	type header struct {
		Key   string     `json:"key"`
		Value *bytesJSON `json:"value"`
	}
	hs := make([]header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = header{Key: h.Key, Value: newBytesJSON(h.Value)}
	}
	return json.Marshal(struct {
		Position       string     `json:"position"`
		Topic          string     `json:"source_topic"`
		Partition      int32      `json:"source_partition"`
		Offset         int64      `json:"source_offset"`
		Reason         string     `json:"reason"`
		Message        string     `json:"message"`
		TransactionID  string     `json:"transaction_id"`
		Key            *bytesJSON `json:"key"`
		Value          *bytesJSON `json:"value"`
		ValueSize      int64      `json:"value_size"`
		ValueTruncated bool       `json:"value_truncated"`
		ValueSHA256    string     `json:"value_sha256"`
		Headers        []header   `json:"headers"`
		KafkaTimestamp time.Time  `json:"kafka_timestamp"`
		RejectedAt     time.Time  `json:"rejected_at"`
	}{r.Position(), r.SourceTopic, r.SourcePartition, r.SourceOffset, string(r.Reason), r.Message, r.TransactionID,
		newBytesJSON(r.Key), newBytesJSON(r.Value), r.ValueSize, r.Truncated(), r.ValueSHA256, hs, r.KafkaTimestamp, r.RejectedAt})
}

// Truncated reports whether the table holds only the first part of the value.
func (r *Row) Truncated() bool { return r.Value != nil && int64(len(r.Value)) < r.ValueSize }

// bytesJSON is bytes in JSON: {"text": "..."} when printable, else {"hex": "..."}; null for nil.
type bytesJSON struct {
	Text *string `json:"text,omitempty"`
	Hex  *string `json:"hex,omitempty"`
}

func newBytesJSON(b []byte) *bytesJSON {
	if b == nil {
		return nil
	}
	s, isText := printable(b)
	if isText {
		return &bytesJSON{Text: &s}
	}
	return &bytesJSON{Hex: &s}
}

// printable returns b as text when it is valid UTF-8 without control characters other than
// tab and newlines (safe to print to a terminal), and else as lower-case hex.
func printable(b []byte) (string, bool) {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool {
		return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
	}) {
		return string(b), true
	}
	return hex.EncodeToString(b), false
}

// showBytes is printable for the text output: hex is marked as such, nil is (null).
func showBytes(b []byte) string {
	if b == nil {
		return "(null)"
	}
	s, isText := printable(b)
	if !isText {
		return "hex:" + s
	}
	return s
}

// WriteList prints rows (the first of total) as a table, or as one JSON document.
func WriteList(w io.Writer, rows []Row, total int, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			Total   int   `json:"total"`
			Rejects []Row `json:"rejects"`
		}{total, append([]Row{}, rows...)})
	}
	cells := make([][]string, len(rows))
	for i := range rows {
		r := &rows[i]
		cells[i] = []string{r.Position(), string(r.Reason), r.TransactionID, strconv.FormatInt(r.ValueSize, 10), cut(r.Message, 60)}
	}
	// Whole cells (a position cut at 20 characters is no use), but the message cut: `show`
	// prints it whole.
	_, err := fmt.Fprintf(w, "%s%d of %d rejects\n",
		report.Show([]string{"position", "reason", "transaction_id", "value_size", "message"}, cells, false), len(rows), total)
	return err
}

// cut shortens s to n runes, marking the cut with "...".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-3]) + "..."
}

// WriteRow prints one row whole, a field a line.
func WriteRow(w io.Writer, r *Row) error {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-16s %s\n", k+":", v) }
	line("position", r.Position())
	line("reason", string(r.Reason))
	line("message", r.Message)
	line("transaction_id", r.TransactionID)
	line("kafka_timestamp", r.KafkaTimestamp.Format(time.RFC3339Nano))
	line("rejected_at", r.RejectedAt.Format(time.RFC3339Nano))
	line("key", showBytes(r.Key))
	size := fmt.Sprintf("%d bytes, sha256 %s", r.ValueSize, r.ValueSHA256)
	if r.Truncated() {
		size += fmt.Sprintf(" (the table keeps the first %d bytes)", len(r.Value))
	}
	line("value_size", size)
	line("value", showBytes(r.Value))
	if len(r.Headers) == 0 {
		line("headers", "(none)")
	}
	for _, h := range r.Headers {
		line("header", fmt.Sprintf("%s = %s", h.Key, showBytes(h.Value)))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ParsePosition reads TOPIC/PARTITION/OFFSET.
func ParsePosition(s string) (topic string, part int32, off int64, err error) {
	i := strings.LastIndexByte(s, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], '/')
	}
	if j <= 0 {
		return "", 0, 0, fmt.Errorf("position %q: want TOPIC/PARTITION/OFFSET", s)
	}
	p, perr := strconv.ParseInt(s[j+1:i], 10, 32)
	o, oerr := strconv.ParseInt(s[i+1:], 10, 64)
	if perr != nil || oerr != nil || p < 0 || o < 0 {
		return "", 0, 0, fmt.Errorf("position %q: want TOPIC/PARTITION/OFFSET with numbers", s)
	}
	return s[:j], int32(p), o, nil
}

// AtPositions keeps the rows at the given positions (TOPIC/PARTITION/OFFSET each).
func AtPositions(positions []string) (func(*ledger.RejectRow) bool, error) {
	want := map[string]bool{}
	for _, a := range positions {
		t, p, o, err := ParsePosition(a)
		if err != nil {
			return nil, err
		}
		want[fmt.Sprintf("%s/%d/%d", t, p, o)] = true
	}
	return func(r *ledger.RejectRow) bool {
		return want[fmt.Sprintf("%s/%d/%d", r.SourceTopic, r.SourcePartition, r.SourceOffset)]
	}, nil
}

// Missing returns the positions (as given) that no row of rows is at.
func Missing(positions []string, rows []Row) []string {
	found := map[string]bool{}
	for i := range rows {
		found[rows[i].Position()] = true
	}
	var missing []string
	for _, a := range positions {
		if t, p, o, _ := ParsePosition(a); !found[fmt.Sprintf("%s/%d/%d", t, p, o)] {
			missing = append(missing, a)
		}
	}
	return missing
}
