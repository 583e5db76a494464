package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Rotation (Options.MaxFileBytes). Once the current file holds at least
// MaxFileBytes, the committer renames it RotatedName(PATH, seq of its first
// record) and creates a new PATH. The chain does not restart: the new
// file's first record has the next seq and, as prev, the hash of the
// rotated file's last record, so the files in seq order verify as one
// chain (`panvault audit verify OLDEST ... PATH`), and a single file
// verifies on its own from its first line. Each file is its own anchor
// chain (Log.Chain: the hash of its first record), and its first record's
// prev binds everything before it.
//
// Crash safety: the rotated file is complete and synced before it is
// renamed; a crash after the rename leaves PATH missing or empty, and Open
// then continues from the newest rotated file's last record
// (Recovery.ContinuedFrom). A failed rename or create leaves the log
// writing to the file it had (counted in Stats.RotateFailures, tried again
// after the next commit): rotation never fails an append.

// RotatedName is the name a rotated file of the log at path gets: path,
// ".", and the seq of its first record as 20 digits in groups of five
// joined by "_" (audit.log.00000_00000_00001_23457). Fixed width, so names
// sort in seq order; grouped, because a run of 12 or more digits reads as a
// card number to every masking rule of panvault (and of the tools that
// scan its output), which would mask the file's name in messages.
func RotatedName(path string, seq uint64) string {
	d := fmt.Sprintf("%020d", seq)
	return path + "." + d[0:5] + "_" + d[5:10] + "_" + d[10:15] + "_" + d[15:20]
}

// rotatedSeq parses the suffix RotatedName appends; ok is false for any
// other name.
func rotatedSeq(suffix string) (uint64, bool) {
	if len(suffix) != 23 {
		return 0, false
	}
	digits := strings.ReplaceAll(suffix, "_", "")
	if len(digits) != 20 || suffix[5] != '_' || suffix[11] != '_' || suffix[17] != '_' {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// maybeRotate rotates the current file when it has reached maxBytes.
// Committer goroutine only.
func (l *Log) maybeRotate() {
	if l.maxBytes <= 0 || l.size < l.maxBytes || l.fileFirst == 0 {
		return
	}
	if err := l.rotate(); err != nil {
		l.rotateFailures.Add(1)
		return
	}
	l.rotations.Add(1)
}

func (l *Log) rotate() error {
	old := RotatedName(l.path, l.fileFirst)
	if _, err := os.Lstat(old); err == nil {
		return fmt.Errorf("audit: rotate: %s exists", old)
	}
	if err := os.Rename(l.path, old); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	f, err := createLogFile(l.path)
	if err != nil {
		// Keep writing where we were: the renamed file is still open.
		// Moving it back keeps PATH the file being written.
		if rerr := os.Rename(old, l.path); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("audit: rotate: %w", err)
	}
	prev := l.f
	l.f = osFile{f}
	l.size, l.fileFirst = 0, 0
	l.mu.Lock()
	l.chain, l.chainSet = [32]byte{}, false
	l.mu.Unlock()
	_ = prev.Close() // synced before the rename; closing releases its lock
	return nil
}

// createLogFile creates a new, empty log file at path (mode 0600, locked)
// and makes its directory entry durable.
func createLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// RotatedFiles returns the rotated files of the log at path, oldest first.
func RotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)+"."
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var out []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base)
		if !ok || e.IsDir() {
			continue
		}
		if _, ok := rotatedSeq(rest); !ok {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}
