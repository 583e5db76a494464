package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// ProcessRSS returns the resident set size of process pid in bytes (VmRSS
// of /proc/<pid>/status), for MetricMaxRSS.
func ProcessRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "VmRSS:" && string(f[2]) == "kB" {
			kb, err := strconv.ParseUint(string(f[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: VmRSS of process %d: %w", ErrSetup, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%w: process %d reports no VmRSS", ErrSetup, pid)
}
