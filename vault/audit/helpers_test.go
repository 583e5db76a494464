package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/audit"
)

// entry returns a distinct, fully populated entry.
func entry(i int) audit.Entry {
	return audit.Entry{
		Node:     "node-1",
		Identity: "spiffe://panvault/client/app",
		Method:   "/panvault.v1.Vault/Detokenize",
		Code:     "OK",
		Reason:   fmt.Sprintf("r%d", i),
		Scheme:   "ff1-16",
		Key:      "dek",
		Masked:   "411111******1111",
		Items:    i % 7,
	}
}

// openLog opens a log at a fresh path and closes it at the end of the test.
func openLog(t testing.TB, opts audit.Options) (*audit.Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "audit.log")
	l, err := audit.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, path
}

// appendN appends n entries from the test goroutine.
func appendN(t *testing.T, l *audit.Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), entry(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// writeLog makes a closed log of n entries with fixed times and returns its path.
func writeLog(t *testing.T, n int) string {
	t.Helper()
	l, path := openLog(t, audit.Options{})
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i := range n {
		e := entry(i)
		e.Time = base.Add(time.Duration(i) * time.Millisecond)
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readLines returns the file's lines without their newlines.
func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i := range lines {
		lines[i] = bytes.TrimSuffix(lines[i], []byte{'\n'})
	}
	return lines
}

// joinLines is the inverse of readLines.
func joinLines(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// verifyFile runs Verify on a file.
func verifyFile(t *testing.T, path string) (audit.Summary, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return audit.Verify(f)
}
