package rawlimits

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/panvault/panvault/vault/loadgen/latency"
)

// FsyncOptions configure FsyncLatency. Zero fields take the defaults.
type FsyncOptions struct {
	// Dir holds the probe's file; it should be on the disk the vault's data
	// live on. Default: os.TempDir().
	Dir string
	// Iterations is the number of write+fdatasync pairs (default 1000);
	// Duration bounds them in time (default 5s), whichever comes first.
	Iterations int
	Duration   time.Duration
	// Size is the bytes appended before each fdatasync (default 4096: one
	// page, about one Raft entry of a group commit).
	Size int
}

// FsyncResult is the latency of appending Size bytes to a file and
// fdatasync-ing it. A plain value.
type FsyncResult struct {
	Iterations int
	Size       int
	Latency    latency.Summary
}

// FsyncLatency appends opts.Size bytes to a fresh file in opts.Dir and calls
// fdatasync (fsync where there is none), Iterations times, as a write-ahead
// log does; each pair is one latency sample. The file is removed afterwards.
// This is the floor under every acknowledged write: the vault never skips
// it.
func FsyncLatency(ctx context.Context, opts FsyncOptions) (FsyncResult, error) {
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	if opts.Iterations == 0 {
		opts.Iterations = 1000
	}
	if opts.Duration == 0 {
		opts.Duration = 5 * time.Second
	}
	if opts.Size == 0 {
		opts.Size = 4096
	}
	if opts.Iterations < 1 || opts.Duration < 0 || opts.Size < 1 || opts.Size > 1<<20 {
		return FsyncResult{}, fmt.Errorf("%w: fsync iterations %d, duration %v, size %d", ErrInvalidOptions, opts.Iterations, opts.Duration, opts.Size)
	}
	f, err := os.CreateTemp(opts.Dir, "rawlimits-fsync-*")
	if err != nil {
		return FsyncResult{}, fmt.Errorf("%w: %w", ErrProbe, err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	buf := make([]byte, opts.Size)
	for i := range buf {
		buf[i] = byte(i)
	}
	rec := latency.New()
	end := time.Now().Add(opts.Duration)
	n := 0
	for ; n < opts.Iterations; n++ {
		t0 := time.Now()
		if ctx.Err() != nil {
			return FsyncResult{}, fmt.Errorf("%w: %w", ErrProbe, ctx.Err())
		}
		if !t0.Before(end) {
			break
		}
		if _, err := f.Write(buf); err != nil {
			return FsyncResult{}, fmt.Errorf("%w: write: %w", ErrProbe, err)
		}
		if err := fdatasync(f); err != nil {
			return FsyncResult{}, fmt.Errorf("%w: fdatasync: %w", ErrProbe, err)
		}
		rec.Record(time.Since(t0))
	}
	return FsyncResult{Iterations: n, Size: opts.Size, Latency: rec.Summary()}, nil
}
