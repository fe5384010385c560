package rejects

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
)

// RepublishedHeader is the header Republish adds to each message it sends again:
// topic/partition/offset of the reject it came from.
const RepublishedHeader = "ledgerstream.republished-from"

// Republish sends rows to topic again through the idempotent producer, with their key,
// value and headers plus RepublishedHeader, and prints a line per row and a total to out.
// Gaps (no message) and rows whose value the table holds only in part are skipped, saying
// so. With dryRun it prints what it would send and sends nothing.
func Republish(ctx context.Context, kc kafka.ClientConfig, topic string, rows []Row, dryRun bool, out io.Writer) error {
	var msgs []kafka.Message
	var from []string
	for i := range rows {
		r := &rows[i]
		if r.IsGap() {
			// A gap is offsets whose records were deleted before they were read: there is
			// no message to send (sending its empty value would publish a tombstone).
			fmt.Fprintf(out, "skip %s (%s): offsets %d-%d were deleted from the topic before they were read; nothing to send\n",
				r.Position(), r.Reason, r.SourceOffset, r.LastOffset)
			continue
		}
		if r.Truncated() {
			fmt.Fprintf(out, "skip %s (%s): the table holds only %d of its %d bytes\n", r.Position(), r.Reason, len(r.Value), r.ValueSize)
			continue
		}
		hs := append(slices.Clip(r.Headers), engine.Header{Key: RepublishedHeader, Value: []byte(r.Position())})
		msgs = append(msgs, kafka.Message{Topic: topic, Key: r.Key, Value: r.Value, Headers: hs})
		from = append(from, r.Position()+" ("+string(r.Reason)+")")
	}
	if dryRun {
		for _, f := range from {
			fmt.Fprintf(out, "would send %s to %s\n", f, topic)
		}
		fmt.Fprintf(out, "Dry run: %d messages would be sent to %s\n", len(msgs), topic)
		return nil
	}
	if len(msgs) == 0 {
		fmt.Fprintln(out, "Nothing to send")
		return nil
	}
	prod, err := kafka.NewProducer(kc)
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
		fmt.Fprintf(out, "sent %s as %s/%d/%d\n", from[i], topic, d.Partition, d.Offset)
	}
	fmt.Fprintf(out, "Re-published %d of %d messages to %s\n", sent, len(msgs), topic)
	if err != nil {
		return fmt.Errorf("republish: %w", err)
	}
	return nil
}
