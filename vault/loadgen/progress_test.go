package loadgen

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	got := formatProgress(progressSample{op: OpTokenize, phase: "run", elapsed: 4 * time.Second,
		length: 10 * time.Second, rate: 15234.4, calls: 61002, errors: 3})
	want := "tokenize  run       4.0s/10.0s  15,234 calls/s  61,002 calls  3 errors"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", 100000: "100,000"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestProgressWriterTerminalRewritesInPlace(t *testing.T) {
	var buf bytes.Buffer
	p := &progressWriter{w: &buf, terminal: true}
	p.line("long line here")
	p.line("short")
	p.clear()
	want := "\rlong line here" + "\rshort" + strings.Repeat(" ", 9) + "\r" + strings.Repeat(" ", 5) + "\r"
	if buf.String() != want {
		t.Errorf("got %q\nwant %q", buf.String(), want)
	}
	if strings.Contains(buf.String(), "\n") {
		t.Errorf("terminal progress wrote a newline")
	}
}

func TestProgressWriterPlainWritesLines(t *testing.T) {
	var buf bytes.Buffer
	p := &progressWriter{w: &buf}
	p.line("a")
	p.line("b")
	p.clear()
	if buf.String() != "a\nb\n" {
		t.Errorf("got %q", buf.String())
	}
}

func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "progress")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
}

// startProgress writes phase-labelled lines to a non-terminal writer and
// stops when asked.
func TestStartProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	now := time.Now()
	win := window{start: now, measure: now.Add(60 * time.Millisecond), end: now.Add(300 * time.Millisecond)}
	w := newTestWorker(time.Millisecond, 0)
	w.live.calls.Store(40)
	w.live.errors.Store(1)
	stop := startProgress(Options{Op: OpSign, Progress: &buf, ProgressInterval: 20 * time.Millisecond}, win, []*worker{w})
	time.Sleep(200 * time.Millisecond)
	stop()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("%d progress lines in 200ms at 20ms intervals:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "sign  warmup") {
		t.Errorf("first line not in warmup: %q", lines[0])
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "sign  run") || !strings.Contains(last, "40 calls  1 errors") {
		t.Errorf("last line: %q", last)
	}
	n := buf.Len()
	time.Sleep(50 * time.Millisecond)
	if buf.Len() != n {
		t.Error("progress written after stop")
	}
}
