package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ledgerstream/ledgerstream/internal/retry"
)

// Bounds on every request to a broker, so that a broker that stops answering (a black
// hole) is an error within seconds, not a silent wait: a dial gives up after dialTimeout,
// and a request after requestTimeoutOverhead plus the wait the request itself asks for (a
// fetch's 5 s max wait, a join's rebalance timeout). franz-go then retries on a new
// connection.
const (
	dialTimeout            = 5 * time.Second
	requestTimeoutOverhead = 5 * time.Second
)

// healthHook reports the outcome of every broker request and dial to a retry.Tracker.
type healthHook struct{ t *retry.Tracker }

var (
	_ kgo.HookBrokerE2E     = healthHook{}
	_ kgo.HookBrokerConnect = healthHook{}
)

// OnBrokerE2E sees every request written to a broker and its response read (or not).
func (h healthHook) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	err := e2e.Err()
	if err == nil {
		h.t.Succeeded(retry.Kafka)
		return
	}
	if ignorable(err) {
		return
	}
	h.t.Failed(retry.Kafka, fmt.Sprintf("%s to broker %s", kmsg.NameForKey(key), brokerAddr(meta)), err)
}

// OnBrokerConnect sees every dial (and the handshakes after it).
func (h healthHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil || ignorable(err) {
		return // a connection is not an answer yet: the first request on it says more
	}
	h.t.Failed(retry.Kafka, "connect to broker "+brokerAddr(meta), err)
}

// ignorable errors are our own doing: a closed client, a cancelled request.
func ignorable(err error) bool {
	return errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled)
}

func brokerAddr(m kgo.BrokerMetadata) string {
	return net.JoinHostPort(m.Host, fmt.Sprint(m.Port))
}
