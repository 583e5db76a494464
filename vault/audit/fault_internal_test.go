package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultFile wraps the real log file. It exists only to force a write or
// sync failure, or to hold a sync while a test lines up a race; the bytes
// still go to the real file.
type faultFile struct {
	logFile

	mu        sync.Mutex
	syncErr   error         // returned by Sync instead of syncing, when set
	writeErr  error         // returned by Write after writing writeKeep bytes
	writeKeep int           //
	hold      chan struct{} // when set, the next Sync reports entered and waits on it
	entered   chan struct{}
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	err, keep := f.writeErr, f.writeKeep
	f.mu.Unlock()
	if err == nil {
		return f.logFile.Write(p)
	}
	n, werr := f.logFile.Write(p[:min(keep, len(p))])
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (f *faultFile) Sync() error {
	f.mu.Lock()
	err, hold, entered := f.syncErr, f.hold, f.entered
	f.hold = nil
	f.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	if err != nil {
		return err
	}
	return f.logFile.Sync()
}

// openFaulty opens a real log and slips a faultFile under it.
func openFaulty(t *testing.T, opts Options) (*Log, *faultFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The committer only touches l.f while it holds a batch; none is queued.
	ff := &faultFile{logFile: l.f}
	l.f = ff
	t.Cleanup(func() { _ = l.Close() })
	return l, ff, path
}

func testEntry(i int) Entry {
	return Entry{Node: "n1", Identity: "CN=app", Method: "/panvault.v1.Vault/Sign", Code: "OK", Key: "mac", Items: i}
}

func verifyPath(t *testing.T, path string) Summary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Verify(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSyncFailureLatches(t *testing.T) {
	l, ff, path := openFaulty(t, Options{})
	ctx := context.Background()
	if err := l.Append(ctx, testEntry(1)); err != nil {
		t.Fatal(err)
	}
	ff.mu.Lock()
	ff.syncErr = &os.PathError{Op: "fdatasync", Path: path, Err: syscall.EIO}
	ff.mu.Unlock()
	err := l.Append(ctx, testEntry(2))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing sync: %v, want ErrFailed wrapping EIO", err)
	}
	// The disk "recovers"; the log must not.
	ff.mu.Lock()
	ff.syncErr = nil
	ff.mu.Unlock()
	syncs := l.Stats().Syncs
	for i := range 3 {
		if err := l.Append(ctx, testEntry(3+i)); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("append %d after the failure: %v, want the latched ErrFailed", i, err)
		}
	}
	if got := l.Stats().Syncs; got != syncs {
		t.Fatalf("a latched log synced again (%d -> %d)", syncs, got)
	}
	if err := l.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("close of a failed log: %v, want ErrFailed", err)
	}
	// Reopening re-reads the file and continues the chain. The entry whose
	// sync "failed" was written, so it is there (never acknowledged).
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := l2.Recovered(); r.Seq != 2 || r.TornBytes != 0 {
		t.Fatalf("recovered %+v, want seq 2", r)
	}
	if err := l2.Append(ctx, testEntry(9)); err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if s := verifyPath(t, path); s.Entries != 3 {
		t.Fatalf("verified %d entries, want 3", s.Entries)
	}
}

func TestShortWriteLatchesAndReopenTruncates(t *testing.T) {
	l, ff, path := openFaulty(t, Options{})
	ctx := context.Background()
	if err := l.Append(ctx, testEntry(1)); err != nil {
		t.Fatal(err)
	}
	ff.mu.Lock()
	ff.writeErr, ff.writeKeep = syscall.ENOSPC, 30
	ff.mu.Unlock()
	if err := l.Append(ctx, testEntry(2)); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append with a short write: %v, want ErrFailed wrapping ENOSPC", err)
	}
	if err := l.Append(ctx, testEntry(3)); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after a short write: %v, want ErrFailed", err)
	}
	_ = l.Close()
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := l2.Recovered(); r.Seq != 1 || r.TornBytes != 30 {
		t.Fatalf("recovered %+v, want seq 1 and 30 torn bytes", r)
	}
	if err := l2.Append(ctx, testEntry(4)); err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if s := verifyPath(t, path); s.Entries != 2 {
		t.Fatalf("verified %d entries, want 2", s.Entries)
	}
}

// TestGroupCommitSharesOneSync holds the first sync until 63 more appends
// are queued behind it: they must all go out in one write and one sync.
func TestGroupCommitSharesOneSync(t *testing.T) {
	l, ff, path := openFaulty(t, Options{})
	hold, entered := make(chan struct{}), make(chan struct{})
	ff.mu.Lock()
	ff.hold, ff.entered = hold, entered
	ff.mu.Unlock()

	const n = 64
	errs := make(chan error, n)
	appendOne := func(i int) {
		errs <- l.Append(context.Background(), testEntry(i))
	}
	go appendOne(0)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first append never reached sync")
	}
	for i := 1; i < n; i++ {
		go appendOne(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.queued() < n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d appends queued", l.queued())
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(hold)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Syncs != 2 || st.Entries != n {
		t.Fatalf("%d appends took %d syncs (%d entries); want 2 syncs", n, st.Syncs, st.Entries)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s := verifyPath(t, path); s.Entries != n {
		t.Fatalf("verified %d entries, want %d", s.Entries, n)
	}
}

// TestCloseWritesWhatIsQueued holds a sync, queues appends behind it, then
// closes: the queued appends succeed and are in the file.
func TestCloseWritesWhatIsQueued(t *testing.T) {
	l, ff, path := openFaulty(t, Options{})
	hold, entered := make(chan struct{}), make(chan struct{})
	ff.mu.Lock()
	ff.hold, ff.entered = hold, entered
	ff.mu.Unlock()
	const n = 5
	errs := make(chan error, n)
	go func() { errs <- l.Append(context.Background(), testEntry(0)) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first append never reached sync")
	}
	for i := 1; i < n; i++ {
		go func() { errs <- l.Append(context.Background(), testEntry(i)) }()
	}
	waitUntil(t, "appends queued", func() bool { return l.queued() >= n-1 })
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	waitUntil(t, "close started", l.isClosed)
	if err := l.Append(context.Background(), testEntry(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append while closing: %v, want ErrClosed", err)
	}
	close(hold)
	for i := range n {
		if err := <-errs; err != nil {
			t.Fatal(fmt.Errorf("queued append %d: %w", i, err))
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if s := verifyPath(t, path); s.Entries != n {
		t.Fatalf("verified %d entries, want %d", s.Entries, n)
	}
}

func (l *Log) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// waitUntil polls cond for up to 10 s, failing the test (instead of hanging
// until go test's timeout) when it never holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
