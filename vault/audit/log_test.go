package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/panvault/panvault/vault/audit"
)

func TestConcurrentAppendsFormOneChain(t *testing.T) {
	l, path := openLog(t, audit.Options{})
	const workers, each = 64, 40
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(context.Background(), entry(w*each+i)); err != nil {
					errs <- fmt.Errorf("worker %d append %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	seq, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entries != workers*each || st.Entries != workers*each || seq != workers*each {
		t.Fatalf("verified %d entries, stats %d, head seq %d; want %d", sum.Entries, st.Entries, seq, workers*each)
	}
	if sum.LastHash != head {
		t.Fatalf("verified last hash %s, head %s", sum.LastHash, head)
	}
	if st.Syncs >= workers*each {
		t.Fatalf("%d syncs for %d appends: no group commit", st.Syncs, workers*each)
	}
	t.Logf("%d appends, %d syncs", st.Entries, st.Syncs)
}

func TestReopenContinuesTheChain(t *testing.T) {
	l, path := openLog(t, audit.Options{})
	appendN(t, l, 0, 10)
	_, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := l2.Recovered(); r.Seq != 10 || r.LastHash != head || r.TornBytes != 0 {
		t.Fatalf("recovered %+v, want seq 10, hash %s, nothing torn", r, head)
	}
	appendN(t, l2, 10, 5)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entries != 15 {
		t.Fatalf("verified %d entries, want 15", sum.Entries)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l, _ := openLog(t, audit.Options{})
	appendN(t, l, 0, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), entry(1)); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("second close: %v, want ErrClosed", err)
	}
}

func TestSecondOpenOfTheSameFileIsRefused(t *testing.T) {
	_, path := openLog(t, audit.Options{})
	l2, err := audit.Open(path, audit.Options{})
	if !errors.Is(err, audit.ErrLocked) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// TestNamesWithDigitsAreRecorded: only the fields that carry request data
// (masked, reason) are refused for PAN-like digits; a key named with a date
// stamp or an identity with a UUID is recorded as it is.
func TestNamesWithDigitsAreRecorded(t *testing.T) {
	l, path := openLog(t, audit.Options{})
	e := entry(0)
	e.Key = "dek-20261125-0001"
	e.Scheme = "cards-20261125-0001"
	e.Identity = "spiffe://x/123e4567-e89b-12d3-a456-426614174000"
	if err := l.Append(context.Background(), e); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"key":"dek-20261125-0001"`) || !strings.Contains(string(b), "426614174000") {
		t.Fatalf("names not recorded as given")
	}
}

func TestUnmaskedEntryIsRefusedWithoutLatching(t *testing.T) {
	l, path := openLog(t, audit.Options{})
	for _, bad := range []string{"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "token 987654321098"} {
		e := entry(0)
		e.Masked = bad
		err := l.Append(context.Background(), e)
		if !errors.Is(err, audit.ErrUnmasked) {
			t.Fatalf("append of an unmasked value: %v, want ErrUnmasked", err)
		}
		if strings.ContainsAny(err.Error(), "0123456789") {
			t.Fatal("the error quotes the refused digits") // not printed: they are PAN-like
		}
		e = entry(0)
		e.Reason = bad
		if err := l.Append(context.Background(), e); !errors.Is(err, audit.ErrUnmasked) {
			t.Fatalf("unmasked reason: %v, want ErrUnmasked", err)
		}
	}
	appendN(t, l, 0, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := verifyFile(t, path)
	if err != nil || sum.Entries != 2 {
		t.Fatalf("verify: %+v, %v; want 2 entries", sum, err)
	}
}

func TestAppendWithEndedContextWritesNothing(t *testing.T) {
	l, path := openLog(t, audit.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, entry(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append: %v, want context.Canceled", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("file after a canceled append: %v, %v; want empty", fi, err)
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "audit")
	path := filepath.Join(dir, "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want&^umask() {
			t.Errorf("%s: mode %04o, want %04o", p, got, want&^umask())
		}
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o400, 0o700, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(path, audit.Options{})
		if !errors.Is(err, audit.ErrPermissions) {
			if l != nil {
				l.Close()
			}
			t.Fatalf("open of a %04o file: %v, want ErrPermissions", mode, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if l, err := audit.Open(link, audit.Options{}); !errors.Is(err, audit.ErrPermissions) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("open through a symlink: %v, want ErrPermissions", err)
	}
	if l, err := audit.Open(dir, audit.Options{}); !errors.Is(err, audit.ErrPermissions) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("open of a directory: %v, want ErrPermissions", err)
	}
}

// Chain names the file by its first record, from the first append on and
// after a reopen; an empty log has none.
func TestChainIsTheFirstRecordsHash(t *testing.T) {
	l, path := openLog(t, audit.Options{})
	if c := l.Chain(); c != "" {
		t.Fatalf("empty log has chain %q", c)
	}
	appendN(t, l, 0, 3)
	first := decodeLine(t, readLines(t, path)[0]).Hash
	if c := l.Chain(); c != first {
		t.Fatalf("chain %q, want the first record's hash %q", c, first)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if c := r.Chain(); c != first {
		t.Fatalf("after reopen: chain %q, want %q", c, first)
	}
	if seq, _ := r.Head(); seq != 3 {
		t.Fatalf("head seq %d after reopen", seq)
	}
	if c, err := audit.FileChain(path); err != nil || c != first {
		t.Fatalf("FileChain: %q, %v; want %q", c, err, first)
	}
}
