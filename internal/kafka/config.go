// Package kafka connects ledgerstream to Kafka: a franz-go group consumer that implements
// engine.Source, an idempotent batched producer, a read_committed topic reader for verify,
// and an embedded Kafka-protocol broker (franz-go's kfake) for demos, tests and local runs.
//
// Everything here speaks the real Kafka wire protocol; the embedded broker is just another
// cluster to the clients, so what the tests prove against it holds against a real cluster
// as far as the protocol goes.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// ClientConfig is what every Kafka client in this package needs to reach the cluster.
type ClientConfig struct {
	// Brokers are the bootstrap servers, host:port.
	Brokers []string
	// ClientID is sent to the brokers for their logs and quotas; "ledgerstream" when empty.
	ClientID string

	// Security. Both are nil for a plaintext, unauthenticated cluster such as the
	// embedded broker. The CLI builds them from its flags; nothing else in this package
	// needs to know which mechanism is in use.

	// TLS, when non-nil, dials every broker with this configuration.
	TLS *tls.Config
	// SASL, when non-nil, authenticates every connection, e.g. with
	// github.com/twmb/franz-go/pkg/sasl/plain or .../sasl/scram.
	SASL sasl.Mechanism

	// Logger receives the client's own log lines (warnings and errors only, unless its
	// handler enables debug). Nil discards them.
	Logger *slog.Logger
}

// ErrNoBrokers reports a ClientConfig without bootstrap servers.
var ErrNoBrokers = errors.New("kafka: no brokers configured")

// Opts returns the kgo options that connect a client as c describes. Callers append the
// options specific to their role (producer, consumer).
func (c ClientConfig) Opts() ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, ErrNoBrokers
	}
	id := c.ClientID
	if id == "" {
		id = "ledgerstream"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(id),
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	if c.SASL != nil {
		opts = append(opts, kgo.SASL(c.SASL))
	}
	if c.Logger != nil {
		opts = append(opts, kgo.WithLogger(slogAdapter{c.Logger}))
	}
	return opts, nil
}

// newClient builds a kgo client from c plus role-specific options.
func (c ClientConfig) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client for %v: %w", c.Brokers, err)
	}
	return cl, nil
}

// slogAdapter lets franz-go log through log/slog. franz-go is chatty at info level (every
// assignment, every heartbeat loop), so info is logged at slog's debug level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case a.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case a.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case a.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (a slogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	default:
		l = slog.LevelDebug
	}
	a.l.Log(context.Background(), l, "kgo: "+msg, keyvals...)
}

// discardLogger is used where a caller gave no logger.
var discardLogger = slog.New(slog.DiscardHandler)

// heartbeatFor picks a heartbeat interval that fits several beats into the session
// timeout: kgo's default 3 s heartbeat would expire a 1 s session.
func heartbeatFor(session time.Duration) time.Duration {
	hb := session / 3
	if hb > 3*time.Second {
		hb = 3 * time.Second
	}
	if hb < 100*time.Millisecond {
		hb = 100 * time.Millisecond
	}
	return hb
}
