package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ProcessRSS returns the resident set size of process pid in bytes (VmRSS
// of /proc/<pid>/status), for MetricMaxRSS.
func ProcessRSS(pid int) (uint64, error) { return procStatusKB(pid, "VmRSS:") }

// ProcessAnonRSS returns the anonymous part of process pid's resident set
// (RssAnon: heap, stacks; not memory-mapped files such as bbolt's), for
// MetricMaxAnonRSS.
func ProcessAnonRSS(pid int) (uint64, error) { return procStatusKB(pid, "RssAnon:") }

func procStatusKB(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == field && string(f[2]) == "kB" {
			kb, err := strconv.ParseUint(string(f[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: %s of process %d: %w", ErrSetup, field, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%w: process %d reports no %s", ErrSetup, pid, field)
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// ProcessCPU returns the CPU time (user + system) process pid has used so
// far (utime and stime of /proc/<pid>/stat), for MetricNodeCPU.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: fields count from
	// the closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: /proc/%d/stat has no command field", ErrSetup, pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: /proc/%d/stat is too short", ErrSetup, pid)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: cpu time of process %d: %w", ErrSetup, pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
