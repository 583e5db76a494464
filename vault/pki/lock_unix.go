//go:build unix

package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive advisory lock (flock) on a lock file in dir, so
// that processes and goroutines sharing a dev CA directory (a dev cluster and a
// CLI issuing itself a client certificate) never interleave writes. The lock is
// per open file, so it also excludes other goroutines of this process.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pki: dev ca lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("pki: dev ca lock %q: %w", f.Name(), err)
	}
	// Closing the file releases the lock.
	return func() { _ = f.Close() }, nil
}
