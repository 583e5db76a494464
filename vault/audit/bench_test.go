package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/audit"
)

// BenchmarkAppend64VsRawFdatasync measures, in one run, b.N appends from 64
// goroutines (ns/op is per append) and b.N write+fdatasync of a line of the
// same size from one goroutine; it reports both and their ratio.
func BenchmarkAppend64VsRawFdatasync(b *testing.B) {
	for _, c := range []struct {
		name  string
		delay time.Duration
	}{{"maxdelay=default", 0}, {"maxdelay=off", -1}} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			raw := rawLoop(b, filepath.Join(dir, "raw.log"), b.N)
			l, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Options{MaxDelay: c.delay})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			appendParallel(b, l, 64, b.N)
			el := time.Since(start)
			b.StopTimer()
			st := l.Stats()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			perAppend := float64(el.Nanoseconds()) / float64(b.N)
			perRaw := float64(raw.Nanoseconds()) / float64(b.N)
			b.ReportMetric(perRaw, "raw-ns/sync")
			b.ReportMetric(perRaw/perAppend, "x-raw")
			b.ReportMetric(float64(st.Entries)/float64(st.Syncs), "entries/sync")
		})
	}
}

// BenchmarkAppendSerial is the latency of one appender alone.
func BenchmarkAppendSerial(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := entry(1)
	ctx := context.Background()
	for b.Loop() {
		if err := l.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// rawLoop writes n lines of a typical record's size, each followed by
// fdatasync, and returns how long that took.
func rawLoop(b *testing.B, path string, n int) time.Duration {
	b.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := make([]byte, 380)
	for i := range line {
		line[i] = 'a'
	}
	line[len(line)-1] = '\n'
	fd := int(f.Fd())
	start := time.Now()
	for range n {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(fd); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// appendParallel makes n appends from workers goroutines.
func appendParallel(b *testing.B, l *audit.Log, workers, n int) {
	b.Helper()
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			e := entry(3)
			for next.Add(1) <= int64(n) {
				if err := l.Append(context.Background(), e); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
