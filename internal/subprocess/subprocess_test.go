package subprocess

import (
	"net"
	"sync"
	"testing"
)

func TestOutputConcurrentWrites(t *testing.T) {
	var o Output
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = o.Write([]byte("x"))
				_ = o.String()
			}
		}()
	}
	wg.Wait()
	if n := len(o.String()); n != 800 {
		t.Fatalf("%d bytes, want 800", n)
	}
}

func TestFreeAddr(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the free address %s: %v", addr, err)
	}
	ln.Close()
}
