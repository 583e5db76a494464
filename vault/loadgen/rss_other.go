//go:build !linux

package loadgen

import (
	"errors"
	"fmt"
)

// ProcessRSS is only implemented on Linux.
func ProcessRSS(pid int) (uint64, error) {
	return 0, fmt.Errorf("process %d rss: %w", pid, errors.ErrUnsupported)
}
