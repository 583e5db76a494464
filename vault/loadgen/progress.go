package loadgen

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressSample is what one progress line shows.
type progressSample struct {
	op      Op
	phase   string        // "warmup" or "run"
	elapsed time.Duration // into the phase
	length  time.Duration // of the phase
	rate    float64       // calls/s over the last interval
	calls   uint64        // calls finished since the start, warmup included
	errors  uint64        // of which failed
}

// formatProgress renders s on one line, without line ending.
func formatProgress(s progressSample) string {
	return fmt.Sprintf("%s  %-6s %6.1fs/%.1fs  %s calls/s  %s calls  %s errors",
		s.op, s.phase, s.elapsed.Seconds(), s.length.Seconds(),
		groupDigits(uint64(s.rate+0.5)), groupDigits(s.calls), groupDigits(s.errors))
}

// progressWriter writes progress lines: on a terminal it rewrites one line in
// place with \r; elsewhere it writes one line per call. Not safe for
// concurrent use.
type progressWriter struct {
	w        io.Writer
	terminal bool
	width    int // of the line last written on a terminal
}

func (p *progressWriter) line(s string) {
	if !p.terminal {
		fmt.Fprintln(p.w, s)
		return
	}
	pad := max(p.width-len(s), 0)
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
	p.width = len(s)
}

// clear erases the in-place line so the report starts on a clean line.
func (p *progressWriter) clear() {
	if p.terminal && p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startProgress shows progress on o.Progress until the returned function is
// called (which waits for the reporter to stop). Without o.Progress it does
// nothing.
func startProgress(o Options, win window, workers []*worker) (stop func()) {
	if o.Progress == nil {
		return func() {}
	}
	pw := &progressWriter{w: o.Progress, terminal: isTerminal(o.Progress)}
	interval := o.ProgressInterval
	if interval == 0 {
		interval = 5 * time.Second
		if pw.terminal {
			interval = time.Second
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		lastCalls, lastAt := uint64(0), win.start
		for {
			select {
			case <-done:
				pw.clear()
				return
			case now := <-t.C:
				var calls, errs uint64
				for _, w := range workers {
					calls += w.live.calls.Load()
					errs += w.live.errors.Load()
				}
				s := progressSample{op: o.Op, calls: calls, errors: errs}
				if dt := now.Sub(lastAt).Seconds(); dt > 0 {
					s.rate = float64(calls-lastCalls) / dt
				}
				lastCalls, lastAt = calls, now
				if now.Before(win.measure) {
					s.phase, s.elapsed, s.length = "warmup", now.Sub(win.start), win.measure.Sub(win.start)
				} else {
					s.phase, s.elapsed, s.length = "run", min(now.Sub(win.measure), win.end.Sub(win.measure)), win.end.Sub(win.measure)
				}
				pw.line(formatProgress(s))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// groupDigits writes n with thousands separators: 1234567 -> "1,234,567".
func groupDigits(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
