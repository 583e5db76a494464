package audit_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/panvault/panvault/vault/audit"
)

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTruncatesATornLastLine(t *testing.T) {
	path := writeLog(t, 3)
	lines := readLines(t, path)
	before, _ := verifyFile(t, path)
	// What a crash in the middle of writing line 4 leaves.
	torn := lines[2][:len(lines[2])/2]
	appendBytes(t, path, torn)
	if _, err := verifyFile(t, path); err == nil {
		t.Fatal("verify accepted a torn last line")
	}
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := l.Recovered(); r.TornBytes != int64(len(torn)) || r.Seq != 3 || r.LastHash != before.LastHash {
		t.Fatalf("recovered %+v, want %d torn bytes after seq 3", r, len(torn))
	}
	appendN(t, l, 3, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := verifyFile(t, path)
	if err != nil || sum.Entries != 5 {
		t.Fatalf("after recovery: %+v, %v; want 5 entries", sum, err)
	}
}

func TestOpenTruncatesATornFirstLine(t *testing.T) {
	path := writeLog(t, 1)
	line := readLines(t, path)[0]
	if err := os.WriteFile(path, line[:10], 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := l.Recovered(); r.TornBytes != 10 || r.Seq != 0 {
		t.Fatalf("recovered %+v, want 10 torn bytes and an empty log", r)
	}
	appendN(t, l, 0, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if sum, err := verifyFile(t, path); err != nil || sum.Entries != 1 {
		t.Fatalf("after recovery: %+v, %v", sum, err)
	}
}

func TestOpenRefusesACorruptLastLine(t *testing.T) {
	path := writeLog(t, 3)
	lines := readLines(t, path)
	lines[2] = bytes.Replace(lines[2], []byte(`"code":"OK"`), []byte(`"code":"NO"`), 1)
	if err := os.WriteFile(path, joinLines(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(path, audit.Options{})
	if err == nil {
		l.Close()
		t.Fatal("open accepted a last line that does not verify")
	}
	wantCorruptAt(t, "open", err, 3)
	// Nothing was truncated: the evidence stays.
	if got := readLines(t, path); len(got) != 3 {
		t.Fatalf("file has %d lines after a refused open, want 3", len(got))
	}
}

func TestOpenRefusesAnOverlongTail(t *testing.T) {
	path := writeLog(t, 2)
	appendBytes(t, path, bytes.Repeat([]byte("x"), 40<<10))
	l, err := audit.Open(path, audit.Options{})
	if err == nil {
		l.Close()
		t.Fatal("open accepted 40 KiB without a newline as a torn record")
	}
	wantCorruptAt(t, "open", err, 3)
	if !errors.Is(err, audit.ErrCorrupt) {
		t.Fatal(err)
	}
}
