// Package subprocess holds what a program that runs others as child processes needs to
// watch them: a buffer they write to while it reads, and a free loopback address to give
// one. The bench runs the product binary this way, and so do the end-to-end tests.
package subprocess

import (
	"net"
	"strings"
	"sync"
)

// Output is a buffer that a child process writes to (stdout and stderr, at once) while
// its parent reads it. The zero value is ready to use.
type Output struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// FreeAddr returns a loopback address, host:port, with a port free at the time of the
// call (another process may take it before the caller's child listens on it).
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
