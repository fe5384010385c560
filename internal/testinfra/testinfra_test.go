package testinfra

import (
	"net"
	"net/http"
	"testing"
)

// TestS3RestartOnATakenPort: while the gateway is down, another server takes its port and
// answers every path with 404, as another test's gateway would. Restart must not take that
// server for its own (a client would then read another warehouse and find every object
// missing): it moves to a new port.
func TestS3RestartOnATakenPort(t *testing.T) {
	s := StartS3(t, "testinfra", "testinfra-secret", "lake")
	old := s.addr
	s.Kill()
	ln, err := net.Listen("tcp", old)
	if err != nil {
		t.Skipf("the port %s was taken before the test could take it: %v", old, err)
	}
	thief := &http.Server{Handler: http.NotFoundHandler()}
	go func() { _ = thief.Serve(ln) }()
	t.Cleanup(func() { thief.Close() })

	s.Restart(t)
	if s.addr == old {
		t.Fatalf("Restart took the server on %s (another process's) for the gateway", old)
	}
	rsp, err := http.Get(s.Endpoint + s.health)
	if err != nil {
		t.Fatalf("the restarted gateway on %s: %v", s.Endpoint, err)
	}
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusOK {
		t.Fatalf("the restarted gateway's health on %s answered %s", s.Endpoint, rsp.Status)
	}
}
