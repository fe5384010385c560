package kafka

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A second broker on a data directory in use must refuse to start, naming the directory
// and the holder; once the first stops, the directory is free again.
func TestBrokerLocksDataDir(t *testing.T) {
	dir := t.TempDir()
	b1 := startTestBroker(t, BrokerConfig{DataDir: dir, Topics: []string{"tx"}})
	_, err := StartBroker(context.Background(), BrokerConfig{DataDir: dir, Topics: []string{"tx"}, Logger: testLogger(t)})
	if !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second broker on %s: err = %v, want ErrDataDirLocked", dir, err)
	}
	for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid()), "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %q", err, want)
		}
	}
	b1.Close()
	b3 := startTestBroker(t, BrokerConfig{DataDir: dir, Topics: []string{"tx"}})
	b3.Close()
}

// A log whose offsets go back (what two brokers writing one directory leave) is refused
// rather than served with one offset naming two records.
func TestBrokerRefusesInconsistentLog(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	for _, dir := range []string{dirA, dirB} {
		b := startTestBroker(t, BrokerConfig{DataDir: dir, Partitions: 1, Topics: []string{"tx"}})
		produce(t, clientCfg(t, b), "tx", filepath.Base(dir), 20)
		b.Close()
	}
	segA := filepath.Join(dirA, "partitions", "tx-0", "0.dat")
	rawB, err := os.ReadFile(filepath.Join(dirB, "partitions", "tx-0", "0.dat"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(segA, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(rawB); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, err = StartBroker(context.Background(), BrokerConfig{DataDir: dirA, Partitions: 1, Topics: []string{"tx"}, Logger: testLogger(t)})
	if !errors.Is(err, ErrLogInconsistent) || !strings.Contains(err.Error(), segA) {
		t.Fatalf("start on a log with repeated offsets: err = %v, want ErrLogInconsistent naming %s", err, segA)
	}
	// The refusal released the lock: a fixed directory can be started at once.
	if err := os.WriteFile(segA, rawB, 0o644); err != nil {
		t.Fatal(err)
	}
	b := startTestBroker(t, BrokerConfig{DataDir: dirA, Partitions: 1, Topics: []string{"tx"}})
	b.Close()
}

// A torn last batch (the process died while writing it) is kfake's to cut, not a refusal;
// a damaged batch with acknowledged batches after it is a refusal.
func TestCheckLogTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	b := startTestBroker(t, BrokerConfig{DataDir: dir, Partitions: 1, Topics: []string{"tx"}})
	produce(t, clientCfg(t, b), "tx", "v", 5)
	produce(t, clientCfg(t, b), "tx", "w", 5)
	b.Close()
	seg := filepath.Join(dir, "partitions", "tx-0", "0.dat")
	raw, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seg, raw[:len(raw)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkLog(dir); err != nil {
		t.Fatalf("torn tail: %v, want nil", err)
	}
	bad := append([]byte(nil), raw...)
	bad[70] ^= 0xff // inside the first batch's records
	if err := os.WriteFile(seg, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkLog(dir); !errors.Is(err, ErrLogInconsistent) {
		t.Fatalf("damaged first batch: %v, want ErrLogInconsistent", err)
	}
}
