//go:build unix

package dedup

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockDir takes an exclusive flock on path (created if needed), waiting up to timeout for
// another holder (another process, or another Open in this one) to let go.
func lockDir(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, errLockTimeout
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func unlockDir(f *os.File) error {
	// Closing the file releases the lock.
	return f.Close()
}
