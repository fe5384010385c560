package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/ledger"
	"github.com/ledgerstream/ledgerstream/internal/report"
)

// RepublishedHeader is the header `rejects republish` adds to each message it sends again:
// topic/partition/offset of the reject it came from.
const RepublishedHeader = "ledgerstream.republished-from"

func newRejectsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rejects",
		Short: "List, show and re-publish the messages in the rejects table",
		Long: `The rejects table (<table>_rejects) holds every message that did not become a ledger
row: its source position, key, value (the first 64 KiB, with the size and SHA-256 of the
whole), headers, a reason code and a readable message.`,
	}
	cmd.AddCommand(newRejectsListCmd(g), newRejectsShowCmd(g), newRejectsRepublishCmd(g))
	return cmd
}

// readRejects scans the rejects table of --table and returns the rows keep accepts, in
// source position order.
func readRejects(ctx context.Context, g *globals, keep func(*ledger.RejectRow) bool) ([]rejectView, error) {
	ident, cat, err := openLedger(ctx, g)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	var out []rejectView
	err = cat.ScanRejects(ctx, iceberg.RejectsIdent(ident), 0, func(r ledger.RejectRow, at time.Time) error {
		if keep(&r) {
			out = append(out, rejectView{RejectRow: r, RejectedAt: at})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b rejectView) int {
		return cmp.Or(strings.Compare(a.SourceTopic, b.SourceTopic), cmp.Compare(a.SourcePartition, b.SourcePartition),
			cmp.Compare(a.SourceOffset, b.SourceOffset))
	})
	return out, nil
}

// rejectView is a reject row with its rejected_at.
type rejectView struct {
	ledger.RejectRow
	RejectedAt time.Time
}

func (r *rejectView) position() string {
	return fmt.Sprintf("%s/%d/%d", r.SourceTopic, r.SourcePartition, r.SourceOffset)
}

// MarshalJSON prints the row with snake_case names; key, value and header values are
// given as text when they are printable UTF-8 and in hex otherwise (see printable).
func (r *rejectView) MarshalJSON() ([]byte, error) {
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
	}{r.position(), r.SourceTopic, r.SourcePartition, r.SourceOffset, string(r.Reason), r.Message, r.TransactionID,
		newBytesJSON(r.Key), newBytesJSON(r.Value), r.ValueSize, r.truncated(), r.ValueSHA256, hs, r.KafkaTimestamp, r.RejectedAt})
}

// truncated reports whether the table holds only the first part of the value.
func (r *rejectView) truncated() bool { return r.Value != nil && int64(len(r.Value)) < r.ValueSize }

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

func newRejectsListCmd(g *globals) *cobra.Command {
	var reason string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rejects in source position order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkReason(reason); err != nil {
				return err
			}
			rows, err := readRejects(cmd.Context(), g, func(r *ledger.RejectRow) bool {
				return reason == "" || string(r.Reason) == reason
			})
			if err != nil {
				return err
			}
			total := len(rows)
			if limit > 0 && len(rows) > limit {
				rows = rows[:limit]
			}
			return writeRejectList(cmd.OutOrStdout(), rows, total, asJSON)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "only rejects with this reason code")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many rows (0 = all)")
	flagRange(cmd.Flags(), "limit", "0", unbounded)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	return cmd
}

func writeRejectList(w io.Writer, rows []rejectView, total int, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			Total   int          `json:"total"`
			Rejects []rejectView `json:"rejects"`
		}{total, append([]rejectView{}, rows...)})
	}
	cells := make([][]string, len(rows))
	for i := range rows {
		r := &rows[i]
		cells[i] = []string{r.position(), string(r.Reason), r.TransactionID, strconv.FormatInt(r.ValueSize, 10), cut(r.Message, 60)}
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

// parsePosition reads TOPIC/PARTITION/OFFSET.
func parsePosition(s string) (topic string, part int32, off int64, err error) {
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

// positionsFilter keeps the rows at the given positions.
func positionsFilter(args []string) (func(*ledger.RejectRow) bool, error) {
	want := map[string]bool{}
	for _, a := range args {
		t, p, o, err := parsePosition(a)
		if err != nil {
			return nil, err
		}
		want[fmt.Sprintf("%s/%d/%d", t, p, o)] = true
	}
	return func(r *ledger.RejectRow) bool {
		return want[fmt.Sprintf("%s/%d/%d", r.SourceTopic, r.SourcePartition, r.SourceOffset)]
	}, nil
}

func newRejectsShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show TOPIC/PARTITION/OFFSET...",
		Short: "Print whole reject rows: key, value (text if printable UTF-8, else hex), headers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := positionsFilter(args)
			if err != nil {
				return err
			}
			rows, err := readRejects(cmd.Context(), g, keep)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				err = writeRejectList(w, rows, len(rows), true)
			}
			for i := 0; i < len(rows) && !asJSON && err == nil; i++ {
				err = writeReject(w, &rows[i])
			}
			if err != nil {
				return err
			}
			found := map[string]bool{}
			for i := range rows {
				found[rows[i].position()] = true
			}
			var missing []string
			for _, a := range args {
				if t, p, o, _ := parsePosition(a); !found[fmt.Sprintf("%s/%d/%d", t, p, o)] {
					missing = append(missing, a)
				}
			}
			if len(missing) > 0 {
				return &exitError{code: 1, msg: "no reject at " + strings.Join(missing, ", ")}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	return cmd
}

// writeReject prints one row, a field a line.
func writeReject(w io.Writer, r *rejectView) error {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-16s %s\n", k+":", v) }
	line("position", r.position())
	line("reason", string(r.Reason))
	line("message", r.Message)
	line("transaction_id", r.TransactionID)
	line("kafka_timestamp", r.KafkaTimestamp.Format(time.RFC3339Nano))
	line("rejected_at", r.RejectedAt.Format(time.RFC3339Nano))
	line("key", showBytes(r.Key))
	size := fmt.Sprintf("%d bytes, sha256 %s", r.ValueSize, r.ValueSHA256)
	if r.truncated() {
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

func newRejectsRepublishCmd(g *globals) *cobra.Command {
	var reason string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "republish (--reason R | TOPIC/PARTITION/OFFSET...)",
		Short: "Send chosen rejects to the topic again, once their cause is fixed",
		Long: `Sends the chosen rejects to --topic again through the idempotent producer, with their
key, value and headers, plus the header ` + RepublishedHeader + `=TOPIC/PARTITION/OFFSET
naming the reject. The pipeline then treats them as new messages: a fixed cause (a
currency or type added to the rules, a larger --max-message-bytes) lets them into the
ledger, and one republished twice is refused the second time as a duplicate.
Rejects whose value the table holds only in part (too_large beyond 64 KiB) are skipped:
their whole value is not there to send; so are gaps (lost_before_processing), which
hold no message at all.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (reason == "") == (len(args) == 0) {
				return errors.New("republish: give either --reason or positions, not both nor neither")
			}
			if err := checkReason(reason); err != nil {
				return err
			}
			keep := func(r *ledger.RejectRow) bool { return string(r.Reason) == reason }
			if len(args) > 0 {
				var err error
				if keep, err = positionsFilter(args); err != nil {
					return err
				}
			}
			rows, err := readRejects(cmd.Context(), g, keep)
			if err != nil {
				return err
			}
			return republish(cmd.Context(), g, rows, dryRun, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "re-publish every reject with this reason code")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be sent, send nothing")
	return cmd
}

func republish(ctx context.Context, g *globals, rows []rejectView, dryRun bool, out io.Writer) error {
	var msgs []kafka.Message
	var from []string
	for i := range rows {
		r := &rows[i]
		if r.IsGap() {
			// A gap is offsets whose records were deleted before they were read: there is
			// no message to send (sending its empty value would publish a tombstone).
			fmt.Fprintf(out, "skip %s (%s): offsets %d-%d were deleted from the topic before they were read; nothing to send\n",
				r.position(), r.Reason, r.SourceOffset, r.LastOffset)
			continue
		}
		if r.truncated() {
			fmt.Fprintf(out, "skip %s (%s): the table holds only %d of its %d bytes\n", r.position(), r.Reason, len(r.Value), r.ValueSize)
			continue
		}
		hs := append(slices.Clip(r.Headers), engine.Header{Key: RepublishedHeader, Value: []byte(r.position())})
		msgs = append(msgs, kafka.Message{Topic: g.topic, Key: r.Key, Value: r.Value, Headers: hs})
		from = append(from, r.position()+" ("+string(r.Reason)+")")
	}
	if dryRun {
		for _, f := range from {
			fmt.Fprintf(out, "would send %s to %s\n", f, g.topic)
		}
		fmt.Fprintf(out, "Dry run: %d messages would be sent to %s\n", len(msgs), g.topic)
		return nil
	}
	if len(msgs) == 0 {
		fmt.Fprintln(out, "Nothing to send")
		return nil
	}
	prod, err := kafka.NewProducer(g.kafkaConfigBounded())
	if err != nil {
		return err
	}
	defer prod.Close()
	res, err := prod.SendAll(ctx, msgs)
	sent := 0
	for i, d := range res {
		if d.Err != nil {
			fmt.Fprintf(out, "FAILED %s: %v\n", from[i], d.Err)
			continue
		}
		sent++
		fmt.Fprintf(out, "sent %s as %s/%d/%d\n", from[i], g.topic, d.Partition, d.Offset)
	}
	fmt.Fprintf(out, "Re-published %d of %d messages to %s\n", sent, len(msgs), g.topic)
	if err != nil {
		return fmt.Errorf("republish: %w", err)
	}
	return nil
}
