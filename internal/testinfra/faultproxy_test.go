package testinfra

import (
	"bufio"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer answers each line with the line, and counts the lines it received.
func echoServer(t *testing.T) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var got atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					got.Add(1)
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), &got
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string, timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestFaultProxy(t *testing.T) {
	target, received := echoServer(t)
	p := StartFaultProxy(t, target)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "one", 2*time.Second); err != nil || got != "one" {
		t.Fatalf("pass: %q, %v", got, err)
	}

	// Latency delays each way.
	p.SetLatency(150 * time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(c, r, "slow", 2*time.Second); err != nil || got != "slow" {
		t.Fatalf("latency: %q, %v", got, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("latency: round trip took %s, want >= 300ms", took)
	}
	p.SetLatency(0)

	// A black hole: nothing arrives, and what was sent arrives after the heal.
	p.Set(BlackHole)
	before := received.Load()
	if _, err := roundTrip(c, r, "held", 300*time.Millisecond); err == nil {
		t.Fatal("black hole: got an answer")
	}
	if received.Load() != before {
		t.Fatal("black hole: the server received the message")
	}
	// A new connection goes nowhere either.
	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	r2 := bufio.NewReader(c2)
	if _, err := roundTrip(c2, r2, "new", 300*time.Millisecond); err == nil {
		t.Fatal("black hole: a new connection got an answer")
	}
	p.Heal()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "held" {
		t.Fatalf("after heal: %q, %v; want the held message's echo", line, err)
	}
	_ = c2.SetDeadline(time.Now().Add(2 * time.Second))
	if line, err := r2.ReadString('\n'); err != nil || strings.TrimSpace(line) != "new" {
		t.Fatalf("after heal, the new connection: %q, %v", line, err)
	}
	c2.Close()

	// Dropped replies: the request reaches the server, the answer is lost, and the broken
	// connection is closed on heal.
	p.Set(DropReplies)
	before = received.Load()
	if _, err := roundTrip(c, r, "lost", 300*time.Millisecond); err == nil {
		t.Fatal("drop replies: got an answer")
	}
	deadline := time.Now().Add(2 * time.Second)
	for received.Load() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if received.Load() != before+1 {
		t.Fatal("drop replies: the request did not reach the server")
	}
	p.Heal()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("drop replies: the broken connection survived the heal")
	}

	// Reset: open connections are reset, new ones too.
	c3, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	r3 := bufio.NewReader(c3)
	if got, err := roundTrip(c3, r3, "x", 2*time.Second); err != nil || got != "x" {
		t.Fatalf("before reset: %q, %v", got, err)
	}
	p.Set(Reset)
	if _, err := roundTrip(c3, r3, "y", 2*time.Second); err == nil {
		t.Fatal("reset: the connection still works")
	}
	if c4, err := net.Dial("tcp", p.Addr); err == nil {
		r4 := bufio.NewReader(c4)
		if _, err := roundTrip(c4, r4, "z", 2*time.Second); err == nil {
			t.Fatal("reset: a new connection works")
		}
		c4.Close()
	}
	p.Heal()
	c5, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c5.Close()
	if got, err := roundTrip(c5, bufio.NewReader(c5), "back", 2*time.Second); err != nil || got != "back" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
}
