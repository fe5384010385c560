package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// kcatConsume reads topic from its beginning to its end as librdkafka's own consumer does
// (kcat, read_committed), counting the records and printing nothing else: the yardstick
// of the end-to-end target, since a pipeline that keeps half of what a well-tuned C
// consumer reads of the same topic in the same run is limited by its work, not by Kafka.
// ok is false, with no error, when kcat is not on PATH (Debian's package `kcat`).
func (b *run) kcatConsume(ctx context.Context, topic string, want int64) (r Result, ok bool, err error) {
	path, err := exec.LookPath("kcat")
	if err != nil {
		return Result{}, false, nil
	}
	cmd := exec.CommandContext(ctx, path, "-C", "-q", "-e", "-o", "beginning",
		"-b", b.brokers, "-t", topic, "-X", "isolation.level=read_committed", "-f", `\n`)
	var lines newlineCounter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lines, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return Result{}, false, fmt.Errorf("kcat consume of topic %s at %s: %w: %s", topic, b.brokers, err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	if int64(lines) != want {
		return Result{}, false, fmt.Errorf("kcat consume of topic %s at %s read %d records, want %d: %s", topic, b.brokers, lines, want, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	r = Result{Stage: "kcat consume (librdkafka, read_committed)", Records: int64(lines), Seconds: time.Since(start).Seconds()}
	b.add(r)
	r.PerSec = float64(r.Records) / r.Seconds
	return r, true, nil
}

// newlineCounter counts the lines written to it: kcat prints one per record.
type newlineCounter int64

func (c *newlineCounter) Write(p []byte) (int, error) {
	*c += newlineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}
