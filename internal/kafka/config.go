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
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanism names, as Kafka spells them.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLMechanisms lists the mechanisms NewSASL and the embedded broker support.
var SASLMechanisms = []string{SASLPlain, SASLScramSHA256, SASLScramSHA512}

// NormalizeSASLMechanism returns the canonical name of mechanism (case-insensitive, '_'
// accepted for '-'), or an error naming the supported ones.
func NormalizeSASLMechanism(mechanism string) (string, error) {
	m := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(mechanism), "_", "-"))
	for _, known := range SASLMechanisms {
		if m == known {
			return m, nil
		}
	}
	return "", fmt.Errorf("kafka: SASL mechanism %q: want one of %s", mechanism, strings.Join(SASLMechanisms, ", "))
}

const saslHint = "SASL authentication failed?"

// ExplainError adds a hint to an error of a client configured by c when the likely cause
// is authentication: a broker that drops the connection during SASL (kfake does, on a
// wrong SCRAM password) shows up as a bare EOF otherwise.
func ExplainError(err error, c ClientConfig) error {
	if err == nil || c.SASL == nil || strings.Contains(err.Error(), saslHint) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, kerr.SaslAuthenticationFailed) {
		return fmt.Errorf("%w (%s check the username, the password and the mechanism %s)", err, saslHint, c.SASL.Name())
	}
	return err
}

// NewSASL returns the client side of a SASL mechanism for user and password. The password
// stays inside the returned mechanism; nothing here logs or formats it.
func NewSASL(mechanism, user, password string) (sasl.Mechanism, error) {
	m, err := NormalizeSASLMechanism(mechanism)
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, fmt.Errorf("kafka: SASL %s needs a username", m)
	}
	if password == "" {
		return nil, fmt.Errorf("kafka: SASL %s for user %q needs a password", m, user)
	}
	switch m {
	case SASLPlain:
		return plain.Auth{User: user, Pass: password}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism(), nil
	}
}

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

	// ConnectTimeout, when positive, bounds the first contact: a client that reaches no
	// broker within it fails with ErrUnreachable naming the addresses, instead of
	// retrying for ever (franz-go's way, right for a long-running service that should wait
	// a broker out, wrong for a command a person waits on). Zero keeps retrying.
	ConnectTimeout time.Duration
}

// ErrUnreachable reports that no bootstrap server answered within ConnectTimeout.
var ErrUnreachable = errors.New("kafka: no broker reachable")

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
		kgo.DialTimeout(dialTimeout),
		kgo.RequestTimeoutOverhead(requestTimeoutOverhead),
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
	if c.TLS != nil || c.SASL != nil || c.ConnectTimeout > 0 {
		// franz-go retries a failed handshake or authentication for ever, so a wrong
		// password or CA would hang a command instead of failing it. Try once up front and
		// fail on authentication errors; an unreachable broker fails only with a
		// ConnectTimeout, and is otherwise left to the client's retries.
		wait := c.ConnectTimeout
		if wait <= 0 {
			wait = 20 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		perr := pingUntil(ctx, cl, c)
		cancel()
		switch {
		case perr == nil:
		case isAuthFailure(perr, c):
			cl.Close()
			return nil, fmt.Errorf("kafka: connect to %v: %w", c.Brokers, ExplainError(perr, c))
		case c.ConnectTimeout > 0:
			cl.Close()
			return nil, fmt.Errorf("%w at %s within %s (--connect-timeout): %v; check --brokers and that the cluster is up",
				ErrUnreachable, strings.Join(c.Brokers, ","), c.ConnectTimeout, perr)
		}
	}
	return cl, nil
}

// pingUntil pings until a broker answers, authentication fails, or ctx ends, and returns
// the last error (the cause, such as "connection refused", rather than only the deadline).
func pingUntil(ctx context.Context, cl *kgo.Client, c ClientConfig) error {
	for {
		err := cl.Ping(ctx)
		if err == nil || isAuthFailure(err, c) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second): // franz-go logs each failed dial: not too often
		}
		if ctx.Err() != nil {
			return err
		}
	}
}

// isAuthFailure reports whether err (from a first contact) is a TLS or SASL refusal.
func isAuthFailure(err error, c ClientConfig) bool {
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState),
		errors.Is(err, kerr.UnsupportedSaslMechanism):
		return true
	case errors.As(err, &certErr), errors.As(err, &alert), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return true
	case c.SASL != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return true
	}
	return false
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

// CreateTopic creates topic with the cluster's default partition count and replication,
// unless it exists.
func CreateTopic(ctx context.Context, c ClientConfig, topic string) error {
	return CreateTopicPartitions(ctx, c, topic, -1)
}

// CreateTopicPartitions is CreateTopic with a partition count (-1: the broker's default).
func CreateTopicPartitions(ctx context.Context, c ClientConfig, topic string, partitions int32) error {
	cl, err := c.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}
