package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/subprocess"
)

// startBroker runs `ledgerstream broker` as a child process and returns its address.
func (b *run) startBroker(ctx context.Context) (*exec.Cmd, string, error) {
	cmd := exec.CommandContext(ctx, b.o.Binary, "broker", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(b.dir, "broker"), "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start broker (%s): %w", b.o.Binary, err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "broker listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }() // drained until the broker exits
			return cmd, addr, nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, "", fmt.Errorf("broker (%s broker) did not report its address", b.o.Binary)
}

// service prepares a long-running child (a streaming `run`) that ctx's cancellation stops
// with SIGTERM, as an operator would, so that it closes cleanly; its stdout and stderr go
// to the returned buffer.
func (b *run) service(ctx context.Context, args ...string) (*exec.Cmd, *subprocess.Output) {
	cmd := exec.CommandContext(ctx, b.o.Binary, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	out := &subprocess.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

// childRun is what a child process used: its peak RSS in MiB and its CPU time (user and
// system), and what it printed.
type childRun struct {
	rssMiB float64
	cpu    time.Duration
	out    string
}

// child runs the binary with args to its end.
func (b *run) child(ctx context.Context, args ...string) (childRun, error) {
	cmd := exec.CommandContext(ctx, b.o.Binary, args...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return childRun{}, err
	}
	// The child's peak resident set as the kernel keeps it (VmHWM), read until it exits.
	// Not the rusage of wait: Linux counts there the memory of the parent that forked the
	// child (this process, which holds a million rows for the Parquet stage) as the
	// child's peak.
	done := make(chan struct{})
	var hwm float64
	poll := make(chan struct{})
	go func() { // ends with the child; waited for below
		defer close(poll)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := peakRSS(cmd.Process.Pid); ok {
				hwm = max(hwm, v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-poll
	// The CPU of wait's rusage is the child's own (unlike its peak RSS, above).
	r := childRun{rssMiB: hwm, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), out: out.String()}
	if err != nil {
		return r, fmt.Errorf("%s %s: %w\n%s", filepath.Base(b.o.Binary), strings.Join(args, " "), err, lastLines(out.String(), 20))
	}
	return r, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitReady polls url, served by the child process pid, until it answers 200, the timeout
// passes, or the child exits (a worker that failed at its start is not waited for).
func waitReady(ctx context.Context, url string, pid int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if exited(pid) {
			return fmt.Errorf("%s: the process (pid %d) exited before it was ready", url, pid)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s", url, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scrape reads the samples of a Prometheus text endpoint, by name with its labels as
// exposed (`name{label="value"}`).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		m[name] = v
	}
	return m, sc.Err()
}

// peakRSS reads a live process's peak resident set (VmHWM) in MiB.
func peakRSS(pid int) (float64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kib float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kib); err == nil {
				return kib / 1024, true
			}
		}
	}
	return 0, false
}

// exited reports whether child process pid has exited (it is a zombie, not yet waited for,
// or gone).
func exited(pid int) bool {
	f, err := procStat(pid)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X") // field 3, the state
}

// procStat returns the fields of /proc/PID/stat after the command name (field 2), which may
// hold spaces: f[0] is field 3.
func procStat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Fields(s), nil
}

// procCPU is a live process's user and system CPU time (/proc/PID/stat, in clock ticks of
// 1/100 s, the USER_HZ of every Linux architecture Go supports).
func procCPU(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("CPU time of process %d: /proc/%d/stat has %d fields after the name, want 13 or more", pid, pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
