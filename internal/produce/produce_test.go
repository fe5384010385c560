package produce

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/kafka"
)

// A second run continues after the highest id on the topic; --first-id reaching back says
// so; a topic that does not exist is refused unless CreateTopic; ids past TXN99999999 are
// refused before anything is sent.
func TestRunNumbersAfterTheTopic(t *testing.T) {
	ctx := context.Background()
	b, err := kafka.StartBroker(ctx, kafka.BrokerConfig{Partitions: 2, Topics: []string{"tx"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kc := kafka.ClientConfig{Brokers: []string{b.Addr()}}
	send := func(topic string, o Options) (string, kafka.ProduceStats, error) {
		var out bytes.Buffer
		st, err := Run(ctx, kc, topic, o, &out)
		return out.String(), st, err
	}
	out, st, err := send("tx", Options{Count: 10, Seed: 1, FirstID: -1})
	if err != nil || st.Acked != 10 || !strings.Contains(out, "ids from TXN00000000") {
		t.Fatalf("first run: %d acked, %v:\n%s", st.Acked, err, out)
	}
	out, _, err = send("tx", Options{Count: 5, Seed: 1, FirstID: -1})
	if err != nil || !strings.Contains(out, "already holds ids up to TXN00000009") || !strings.Contains(out, "ids from TXN00000010") {
		t.Fatalf("second run: %v:\n%s", err, out)
	}
	out, _, err = send("tx", Options{Count: 2, Seed: 1, FirstID: 0})
	if err != nil || !strings.Contains(out, "Note: --first-id 0 re-sends ids already on the topic (up to TXN00000014)") {
		t.Fatalf("--first-id 0: %v:\n%s", err, out)
	}
	if _, _, err := send("missing", Options{Count: 1, FirstID: -1}); !errors.Is(err, kafka.ErrNoTopic) {
		t.Fatalf("missing topic: %v", err)
	}
	out, _, err = send("missing", Options{Count: 1, FirstID: -1, CreateTopic: true})
	if err != nil || !strings.Contains(out, "Created topic missing") {
		t.Fatalf("missing topic, CreateTopic: %v:\n%s", err, out)
	}
	if _, st, err := send("tx", Options{Count: 3, FirstID: 99999998}); err == nil || st.Acked != 0 ||
		!strings.Contains(err.Error(), "would pass TXN99999999") {
		t.Fatalf("past the last id: %d acked, %v", st.Acked, err)
	}
}

// Stopped by its context, Run says how many of how many were acknowledged.
func TestRunInterrupted(t *testing.T) {
	b, err := kafka.StartBroker(context.Background(), kafka.BrokerConfig{Topics: []string{"tx"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	_, err = Run(ctx, kafka.ClientConfig{Brokers: []string{b.Addr()}}, "tx", Options{Count: 1000, Rate: 100, FirstID: -1,
		ProgressEvery: 10 * time.Millisecond, Progress: func(s kafka.ProduceStats) {
			if s.Acked > 0 {
				cancel()
			}
		}}, &out)
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Acked == 0 || ie.Acked >= 1000 || !strings.HasPrefix(err.Error(), "produce interrupted: ") ||
		!strings.HasSuffix(err.Error(), " of 1000 transactions acknowledged by tx") {
		t.Fatalf("interrupted: %v", err)
	}
}
