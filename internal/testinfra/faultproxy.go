package testinfra

import (
	"net"
	"sync"
	"testing"
	"time"
)

// FaultMode is what a FaultProxy does to the traffic it carries.
type FaultMode int

const (
	// Pass forwards everything (after the configured latency).
	Pass FaultMode = iota
	// BlackHole forwards nothing in either direction and answers nothing, as a network
	// that drops every packet would: new connections are accepted but go nowhere, bytes
	// in flight wait. On Heal they flow again, late, as retransmitted packets would.
	BlackHole
	// Reset resets every connection and every new one at once (a crashed peer, a
	// firewall that rejects).
	Reset
	// DropReplies forwards the client's bytes to the server but discards the server's
	// replies: a request reaches the server and takes effect, and its answer is lost. A
	// connection that lost bytes is closed on Heal (its stream is broken).
	DropReplies
)

func (m FaultMode) String() string {
	return [...]string{"pass", "black-hole", "reset", "drop-replies"}[m]
}

// FaultProxy is a TCP proxy on a loopback port in front of one server, for tests that put
// faults between a client and the server: latency, a black hole, resets, lost replies.
// Point the client at Addr. Safe for concurrent use.
type FaultProxy struct {
	// Addr is the proxy's address, 127.0.0.1:PORT.
	Addr string
	ln   net.Listener
	wg   sync.WaitGroup

	mu      sync.Mutex
	target  string
	cond    *sync.Cond // signalled when mode changes
	mode    FaultMode
	latency time.Duration
	conns   map[*proxyConn]struct{}
	closed  bool
}

type proxyConn struct {
	client, server net.Conn
	lost           bool // bytes were dropped: the stream is broken
}

// StartFaultProxy listens on a free loopback port and forwards to target (host:port). It
// is closed when the test ends.
func StartFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault proxy: listen: %v", err)
	}
	p := &FaultProxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Target is the address the proxy forwards to.
func (p *FaultProxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// SetTarget makes new connections go to target (a server restarted on another port);
// open ones stay with the old one.
func (p *FaultProxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Mode returns the current mode.
func (p *FaultProxy) Mode() FaultMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetLatency delays every chunk of bytes, each way, by d (0: none).
func (p *FaultProxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Set switches to mode m. Reset resets every open connection at once.
func (p *FaultProxy) Set(m FaultMode) {
	p.mu.Lock()
	p.mode = m
	var reset []*proxyConn
	if m == Reset {
		for c := range p.conns {
			reset = append(reset, c)
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, c := range reset {
		c.reset()
	}
}

// Heal goes back to Pass, without latency, and closes the connections that lost bytes.
func (p *FaultProxy) Heal() {
	p.mu.Lock()
	p.mode = Pass
	p.latency = 0
	var broken []*proxyConn
	for c := range p.conns {
		if c.lost {
			broken = append(broken, c)
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, c := range broken {
		c.reset()
	}
}

// Close stops the proxy, closes every connection and waits for its goroutines.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var all []*proxyConn
	for c := range p.conns {
		all = append(all, c)
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range all {
		c.reset()
	}
	p.wg.Wait()
}

func (c *proxyConn) reset() {
	for _, conn := range []net.Conn{c.client, c.server} {
		if conn == nil {
			continue
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST, not FIN
		}
		conn.Close()
	}
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// waitPassable blocks while the proxy black-holes, and reports false once it is closed.
func (p *FaultProxy) waitPassable() (FaultMode, time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.mode == BlackHole && !p.closed {
		p.cond.Wait()
	}
	return p.mode, p.latency, !p.closed
}

func (p *FaultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	c := &proxyConn{client: client}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.reset()
	}()
	mode, _, ok := p.waitPassable() // a black hole does not even dial the server
	if !ok || mode == Reset {
		return
	}
	server, err := net.DialTimeout("tcp", p.Target(), 5*time.Second)
	if err != nil {
		return // the server is down: the client sees its connection closed
	}
	p.mu.Lock()
	c.server = server
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(c, client, server, false); done <- struct{}{} }()
	go func() { p.pipe(c, server, client, true); done <- struct{}{} }()
	<-done // one side ended: end both
	c.reset()
	<-done
}

// pipe copies src to dst, applying the proxy's mode to each chunk.
func (p *FaultProxy) pipe(c *proxyConn, src, dst net.Conn, reply bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			mode, latency, ok := p.waitPassable()
			if !ok || mode == Reset {
				return
			}
			if mode == DropReplies && reply {
				p.mu.Lock()
				c.lost = true
				p.mu.Unlock()
				continue
			}
			if latency > 0 {
				time.Sleep(latency)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or an error: serve ends both directions
		}
	}
}
