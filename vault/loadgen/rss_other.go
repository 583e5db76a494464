//go:build !linux

package loadgen

import (
	"errors"
	"fmt"
	"time"
)

// ProcessRSS is only implemented on Linux.
func ProcessRSS(pid int) (uint64, error) {
	return 0, fmt.Errorf("process %d rss: %w", pid, errors.ErrUnsupported)
}

// ProcessCPU is only implemented on Linux.
func ProcessCPU(pid int) (time.Duration, error) {
	return 0, fmt.Errorf("process %d cpu: %w", pid, errors.ErrUnsupported)
}

// ProcessAnonRSS is only implemented on Linux.
func ProcessAnonRSS(pid int) (uint64, error) {
	return 0, fmt.Errorf("process %d anonymous rss: %w", pid, errors.ErrUnsupported)
}
