package kafka

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer writes records to Kafka with franz-go's idempotent producer: retries cannot
// duplicate or reorder records within a partition. Records are batched per partition and
// sent asynchronously; a key picks the partition (murmur2, like the Java client and kcat).
type Producer struct {
	cl *kgo.Client
}

// NewProducer connects a producer. The caller must Close it.
func NewProducer(cfg ClientConfig) (*Producer, error) {
	cl, err := cfg.newClient(
		// Idempotence is franz-go's default and is kept; acks=all comes with it.
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
		// A deep buffer keeps every partition's next batch ready while the previous
		// one is in flight; Produce blocks only when it is full.
		kgo.MaxBufferedRecords(1<<18),
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		return nil, err
	}
	return &Producer{cl: cl}, nil
}

// Close closes the client. Produce flushes before it returns, so nothing is left buffered.
func (p *Producer) Close() { p.cl.Close() }

// ProduceOptions tunes Produce.
type ProduceOptions struct {
	// Rate is the target records per second; zero or negative sends as fast as the
	// client can.
	Rate float64
	// Progress, when set, is called from Produce's goroutine about every
	// ProgressEvery, and once more at the end with the final figures.
	Progress func(ProduceStats)
	// ProgressEvery is the progress period; one second when zero.
	ProgressEvery time.Duration
}

// ProduceStats counts what Produce has done so far.
type ProduceStats struct {
	Sent    int64         // records handed to the client
	Acked   int64         // records the broker acknowledged
	Failed  int64         // records that could not be produced
	Elapsed time.Duration // since Produce began
}

// maxReportedErrors bounds how many distinct failures Produce keeps in its error; the
// rest are counted in ProduceStats.Failed.
const maxReportedErrors = 5

// Produce sends every (key, value) pair of records to topic and returns when all of them
// are acknowledged or failed. It does not wait per record: records are buffered and
// batched, and acknowledgements are counted as they arrive.
//
// The key and value slices are retained until their record is acknowledged, so records
// must yield fresh slices. After the first failure Produce stops taking new records,
// waits for those in flight, and returns an error describing the failures; the stats
// say how many were acknowledged. If ctx ends, Produce stops likewise and returns
// ctx's error.
func (p *Producer) Produce(ctx context.Context, topic string, records iter.Seq2[[]byte, []byte], opts ProduceOptions) (ProduceStats, error) {
	start := time.Now()
	every := opts.ProgressEvery
	if every <= 0 {
		every = time.Second
	}

	var (
		acked, failed atomic.Int64
		errMu         sync.Mutex
		errs          []error
		stop          atomic.Bool // set on the first failure: stop feeding
	)
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			acked.Add(1)
			return
		}
		failed.Add(1)
		stop.Store(true)
		if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return // one "stopped" for the whole run below, not one line per record
		}
		errMu.Lock()
		if len(errs) < maxReportedErrors {
			errs = append(errs, fmt.Errorf("partition %d: %w", r.Partition, err))
		}
		errMu.Unlock()
	}
	stats := func(sent int64) ProduceStats {
		return ProduceStats{Sent: sent, Acked: acked.Load(), Failed: failed.Load(), Elapsed: time.Since(start)}
	}

	var (
		sent       int64
		nextReport = start.Add(every)
		interval   time.Duration
		timer      *time.Timer
		ctxErr     error
	)
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
		timer = time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
	}
	for key, value := range records {
		if stop.Load() {
			break
		}
		if err := ctx.Err(); err != nil {
			ctxErr = err
			break
		}
		if interval > 0 {
			// Pace against the schedule from the start, not the previous record, so
			// that coarse sleeps are caught up and the average rate holds.
			due := start.Add(time.Duration(sent) * interval)
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					ctxErr = ctx.Err()
				}
				if ctxErr != nil {
					break
				}
			}
		}
		p.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}, promise)
		sent++
		// Reading the clock per record costs more than producing at full speed, so
		// unpaced runs look at it every 1024 records.
		if opts.Progress != nil && (interval > 0 || sent&1023 == 0) && time.Now().After(nextReport) {
			opts.Progress(stats(sent))
			nextReport = time.Now().Add(every)
		}
	}

	// Flush waits for every buffered record; records whose ctx has ended are failed by
	// the client rather than sent, so this returns promptly after a cancellation.
	flushErr := p.cl.Flush(context.WithoutCancel(ctx))
	final := stats(sent)
	if opts.Progress != nil {
		opts.Progress(final)
	}

	errMu.Lock()
	defer errMu.Unlock()
	var err error
	if len(errs) > 0 {
		err = fmt.Errorf("kafka: produce to %s: %d of %d records failed: %w", topic, final.Failed, final.Sent, errors.Join(errs...))
	}
	if flushErr != nil {
		err = errors.Join(err, fmt.Errorf("kafka: flush %s: %w", topic, flushErr))
	}
	if ctxErr == nil && final.Failed > 0 {
		ctxErr = ctx.Err() // records failed by the cancellation after the loop ended
	}
	if ctxErr != nil && err == nil {
		err = fmt.Errorf("kafka: produce to %s stopped after %d records were sent (%d acknowledged): %w", topic, final.Sent, final.Acked, ctxErr)
	}
	return final, err
}
