package audit_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/panvault/panvault/vault/audit"
	"github.com/panvault/panvault/vault/card"
)

// verifyFiles checks files in order as one chain: the first from seq 1,
// each next one continuing the one before. It returns the last summary.
func verifyFiles(t *testing.T, files []string) audit.Summary {
	t.Helper()
	var start *audit.Anchor
	var sum audit.Summary
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			sum, err = audit.Verify(bytes.NewReader(b))
		} else {
			sum, err = audit.VerifyFrom(bytes.NewReader(b), start)
		}
		if err != nil {
			t.Fatalf("file %d (%s): %v", i, f, err)
		}
		start = &audit.Anchor{Seq: sum.LastSeq, Hash: sum.LastHash}
	}
	return sum
}

// A log with MaxFileBytes rotates into files that verify as one chain in
// seq order and each on its own; the current file's chain is its own first
// record; a reopened log continues it.
func TestRotationContinuesTheChain(t *testing.T) {
	l, path := openLog(t, audit.Options{MaxFileBytes: 2000})
	appendN(t, l, 0, 30)
	// Rotation runs after a batch is answered: Close waits for it.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, err := audit.RotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) < 2 || l.Stats().Rotations != uint64(len(rotated)) || l.Stats().RotateFailures != 0 {
		t.Fatalf("%d rotated files, stats %+v", len(rotated), l.Stats())
	}
	for _, f := range rotated {
		if fi, err := os.Stat(f); err != nil || fi.Size() < 2000 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("rotated file %s: %v, %v", f, fi, err)
		}
		if _, err := audit.VerifyFrom(bytesOf(t, f), nil); err != nil {
			t.Fatalf("%s on its own: %v", f, err)
		}
	}
	all := append(append([]string(nil), rotated...), path)
	last := verifyFiles(t, all)
	if seq, hash := l.Head(); last.LastSeq != 30 || seq != 30 || hash != last.LastHash {
		t.Fatalf("last file ends at %d %s, head %d %s", last.LastSeq, last.LastHash, seq, hash)
	}
	if c, err := audit.FileChain(path); err != nil || c != l.Chain() || c != last.Chain {
		t.Fatalf("chain %q, file chain %q (%v), summary %q", l.Chain(), c, err, last.Chain)
	}

	// A file left out breaks the chain at the next one's first line.
	skipped := append(append([]string(nil), rotated[:1]...), rotated[2:]...)
	skipped = append(skipped, path)
	first, err := audit.Verify(bytesOf(t, skipped[0]))
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.VerifyFrom(bytesOf(t, skipped[1]), &audit.Anchor{Seq: first.LastSeq, Hash: first.LastHash})
	wantCorruptAt(t, "a file left out", err, 1)

	r, err := audit.Open(path, audit.Options{MaxFileBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	appendN(t, r, 30, 1)
	if seq, _ := r.Head(); seq != 31 {
		t.Fatalf("reopened log at seq %d, want 31", seq)
	}
}

// A crash right after a rotation leaves the log file missing or empty: Open
// continues from the newest rotated file's last record, so the chain goes
// on.
func TestOpenContinuesAfterAnInterruptedRotation(t *testing.T) {
	for _, how := range []string{"missing", "empty"} {
		t.Run(how, func(t *testing.T) {
			l, path := openLog(t, audit.Options{MaxFileBytes: 2000})
			appendN(t, l, 0, 12)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rotated, err := audit.RotatedFiles(path)
			if err != nil || len(rotated) == 0 {
				t.Fatalf("rotated %v, %v", rotated, err)
			}
			// Fold the current file's records back into a rotated file's
			// place, as if the crash came right after its rename.
			cur, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(cur) > 0 {
				first, err := audit.VerifyFrom(bytes.NewReader(cur), nil)
				if err != nil {
					t.Fatal(err)
				}
				moved := audit.RotatedName(path, first.FirstSeq)
				if err := os.WriteFile(moved, cur, 0o600); err != nil {
					t.Fatal(err)
				}
				rotated = append(rotated, moved)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if how == "empty" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := audit.Open(path, audit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Recovered(); got.ContinuedFrom != rotated[len(rotated)-1] || got.Seq != 12 {
				t.Fatalf("recovered %+v, want to continue %s at seq 12", got, rotated[len(rotated)-1])
			}
			if r.Chain() != "" {
				t.Fatalf("an empty file has chain %q", r.Chain())
			}
			appendN(t, r, 12, 2)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if last := verifyFiles(t, append(rotated, path)); last.LastSeq != 14 || last.FirstSeq != 13 {
				t.Fatalf("continued file holds seqs %d..%d, want 13..14", last.FirstSeq, last.LastSeq)
			}
		})
	}
}

// A rotation that cannot happen (here the rotated name is taken) is
// counted and the log keeps writing to its file: no append fails.
func TestFailedRotationKeepsWriting(t *testing.T) {
	l, path := openLog(t, audit.Options{MaxFileBytes: 1000})
	if err := os.Mkdir(audit.RotatedName(path, 1), 0o700); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Rotations != 0 || st.RotateFailures == 0 {
		t.Fatalf("stats %+v, want failures and no rotation", st)
	}
	sum, err := audit.Verify(bytesOf(t, path))
	if err != nil || sum.Entries != 10 {
		t.Fatalf("the log after failed rotations: %+v, %v", sum, err)
	}
}

func bytesOf(t *testing.T, path string) *bytes.Reader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// Rotated names sort in seq order and carry no run of digits a masking
// rule would take for a card number.
func TestRotatedNames(t *testing.T) {
	a, b := audit.RotatedName("/x/audit.log", 99_999), audit.RotatedName("/x/audit.log", 100_000)
	if a != "/x/audit.log.00000_00000_00000_99999" || !(a < b) {
		t.Fatalf("names %q, %q", a, b)
	}
	if card.HasPANLikeRun(audit.RotatedName("audit.log", 12_345_678_901_234)) {
		t.Fatal("a rotated name holds a PAN-like digit run")
	}
}
