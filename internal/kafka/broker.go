package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// Listen is the loopback host:port to serve on; "127.0.0.1:0" (a free port) when
	// empty. Only loopback addresses are accepted: the embedded broker is for local use
	// and tests, even with TLS and SASL on.
	Listen string
	// Advertise, when set, is the host:port the broker tells clients to connect to
	// (Kafka's advertised.listeners) instead of Listen: the address of a proxy or a port
	// forward in front of it. Loopback only, like Listen.
	Advertise string
	// DataDir, when set, persists topics, records, group offsets and producer state
	// there and reloads them on the next start. Empty keeps everything in memory.
	DataDir string
	// SyncWrites fsyncs every produced batch. Without it the data still survives a
	// killed broker process (the OS holds the page cache) but not a lost machine.
	SyncWrites bool
	// Partitions is the partition count of topics the broker creates (Topics, and
	// topics auto-created by a client); 3 when zero. A topic that already exists in
	// DataDir keeps its saved count.
	Partitions int
	// Topics are created at start if they do not exist yet.
	Topics []string
	// MinSessionTimeout is the smallest consumer-group session timeout accepted; 1 s when
	// zero (Kafka's default is 6 s, too slow for tests and local recovery).
	MinSessionTimeout time.Duration
	// Logger receives the broker's warnings and errors. Nil discards them.
	Logger *slog.Logger

	// TLS, when non-nil, makes the listener speak TLS with this server configuration
	// (Certificates; ClientCAs with ClientAuth to require client certificates).
	TLS *tls.Config
	// Users, when any, turn SASL on: every connection must authenticate as one of them.
	// They are the broker's only users: users saved in DataDir by an earlier run are
	// dropped at start, and kfake's saved copy (which holds PLAIN passwords in clear) is
	// removed again at Close.
	Users []BrokerUser
}

// BrokerUser is a SASL user of the embedded broker.
type BrokerUser struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	Name      string
	Password  string
}

// saslStateFile is where kfake persists SASL users under its DataDir.
const saslStateFile = "sasl.json"

// Broker is a running embedded Kafka-protocol broker (one node).
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	dataDir string
	sasl    bool
	lock    *dirLock // held on dataDir while the broker runs
}

// StartBroker starts an embedded broker and returns once it accepts connections and its
// topics exist. The caller must Close it.
func StartBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("kafka: broker listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("kafka: broker listen address %q: bad port", listen)
	}
	if !isLoopback(host) {
		return nil, fmt.Errorf("kafka: broker listen address %q: only loopback addresses are allowed", listen)
	}
	if cfg.Advertise != "" {
		ahost, _, err := net.SplitHostPort(cfg.Advertise)
		if err != nil || !isLoopback(ahost) {
			return nil, fmt.Errorf("kafka: broker advertised address %q: want a loopback host:port", cfg.Advertise)
		}
	}
	parts := cfg.Partitions
	if parts <= 0 {
		parts = 3
	}
	minSession := cfg.MinSessionTimeout
	if minSession <= 0 {
		minSession = time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discardLogger
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1), // one node: Addr is the only address a client needs
		kfake.Ports(port),
		// kfake always asks for 127.0.0.1:port; listen on the host the caller named
		// instead (localhost, ::1), already checked to be loopback.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil || cfg.Advertise == "" {
				return ln, err
			}
			// kfake advertises its listener's address in metadata: name the proxy's.
			return advertisedListener{Listener: ln, addr: advertisedAddr(cfg.Advertise)}, nil
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(parts),
		kfake.GroupMinSessionTimeout(minSession),
		kfake.WithLogger(kfakeLogger{logger}),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(parts), cfg.Topics...))
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS.Clone()))
	}
	var mechs []string
	for _, u := range cfg.Users {
		m, err := NormalizeSASLMechanism(u.Mechanism)
		if err != nil {
			return nil, err
		}
		if u.Name == "" || u.Password == "" {
			return nil, fmt.Errorf("kafka: broker SASL %s user: name and password are required", m)
		}
		opts = append(opts, kfake.Superuser(m, u.Name, u.Password))
		mechs = append(mechs, m+":"+u.Name)
	}
	if len(cfg.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
	}
	var lock *dirLock
	if cfg.DataDir != "" {
		// One broker per log, and only a log that reads back as one sequence of records.
		if lock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		if err := checkLog(cfg.DataDir); err != nil {
			lock.Close()
			return nil, err
		}
		// kfake reloads saved users over the configured ones; the configured ones must win
		// (a changed password takes effect, a removed user is gone).
		if err := removeIfExists(filepath.Join(cfg.DataDir, saslStateFile)); err != nil {
			lock.Close()
			return nil, fmt.Errorf("kafka: broker: %w", err)
		}
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("kafka: start embedded broker on %s: %w", listen, err)
	}
	b := &Broker{cluster: cluster, addr: cluster.ListenAddrs()[0], dataDir: cfg.DataDir, sasl: len(cfg.Users) > 0, lock: lock}

	// SeedTopics applies only to a fresh DataDir: on a restart kfake reloads the saved
	// state and ignores it. Create any topic still missing; existing topics keep their
	// partition count.
	if len(cfg.Topics) > 0 && cfg.DataDir != "" {
		if err := b.ensureTopics(ctx, int32(parts), cfg.Topics); err != nil {
			b.Close()
			return nil, err
		}
	}
	logger.Info("embedded kafka broker started", "addr", b.addr, "data_dir", cfg.DataDir, "partitions", parts,
		"tls", cfg.TLS != nil, "sasl_users", strings.Join(mechs, ","))
	return b, nil
}

// advertisedListener is a listener that gives another address as its own.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// Addr returns the host:port clients bootstrap from (the advertised one, when set).
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and, with a DataDir, flushes its state to disk. It is safe to
// call more than once.
func (b *Broker) Close() {
	b.cluster.Close()
	if b.sasl && b.dataDir != "" {
		// Users are configuration, not state; and kfake's copy holds PLAIN passwords in
		// clear. A kill -9 skips this, but kfake only writes the file at a clean stop.
		_ = removeIfExists(filepath.Join(b.dataDir, saslStateFile))
	}
	b.lock.Close() // after kfake has saved its state
}

// ensureTopics creates the topics that do not exist yet, in-process (no client, so it
// works the same with TLS and SASL on).
func (b *Broker) ensureTopics(ctx context.Context, parts int32, topics []string) error {
	for _, t := range topics {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.cluster.CreateTopic(t, parts, nil); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t, err)
		}
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// kfakeLogger forwards kfake's log lines to slog. kfake logs every request at info and
// debug, so only its warnings and errors are kept.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var l slog.Level
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	default:
		return
	}
	if k.l.Enabled(context.Background(), l) {
		k.l.Log(context.Background(), l, "kfake: "+fmt.Sprintf(format, args...))
	}
}
