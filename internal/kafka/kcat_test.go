package kafka

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kcatPath returns kcat's path or skips: kcat is an independent client (librdkafka) that
// proves the embedded broker and our clients speak plain Kafka.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not on PATH (Debian package kcat); skipping the interop test")
	}
	return p
}

// kgoPartition is where franz-go's default partitioner puts a key among n partitions
// (murmur2, as the Java client).
func kgoPartition(topic string, key []byte, n int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: key}, n))
}

func TestKcatProducesSourceReads(t *testing.T) {
	kcat := kcatPath(t)
	b := startTestBroker(t, BrokerConfig{Topics: []string{"kc"}})
	const n = 200
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "key%d:val%d\n", i, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// murmur2_random is librdkafka's Java-compatible partitioner (its default,
	// consistent_random, hashes with CRC32 and places keys elsewhere).
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", b.Addr(), "-t", "kc", "-K", ":",
		"-X", "partitioner=murmur2_random", "-X", "enable.idempotence=true")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	s := newTestSource(t, clientCfg(t, b), "kc", "pipe", earliest)
	recs, _ := availableNow(t, s, 3)
	vals := dataValues(recs)
	if len(vals) != n {
		t.Fatalf("source read %d distinct values from kcat, want %d", len(vals), n)
	}
	for _, r := range recs {
		if r.Control {
			continue
		}
		if vals[string(r.Value)] != 1 {
			t.Errorf("%s read %d times", r.Value, vals[string(r.Value)])
		}
		if want := kgoPartition("kc", r.Key, 3); r.Partition.Partition != want {
			t.Errorf("kcat put key %s in partition %d, franz-go would use %d", r.Key, r.Partition.Partition, want)
		}
	}
}

func TestProducerKcatReads(t *testing.T) {
	kcat := kcatPath(t)
	b := startTestBroker(t, BrokerConfig{Topics: []string{"ours"}})
	const n = 200
	produce(t, clientCfg(t, b), "ours", "v", n)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", b.Addr(), "-t", "ours", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%p %k %s\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	seen := make(map[string]bool)
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("kcat line %q", line)
		}
		p, _ := strconv.Atoi(f[0])
		if want := kgoPartition("ours", []byte(f[1]), 3); int32(p) != want {
			t.Errorf("key %s in partition %d, want %d", f[1], p, want)
		}
		if seen[f[2]] {
			t.Errorf("%s twice", f[2])
		}
		seen[f[2]] = true
	}
	if len(seen) != n {
		t.Fatalf("kcat read %d records, want %d", len(seen), n)
	}
}
