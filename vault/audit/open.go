package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Open opens the log at path for appending, creating it (mode 0600, parent
// directories 0700) when missing. It refuses a file that is not a regular
// file, not owned by this user, or whose mode is not exactly 0600
// (ErrPermissions), and a file another Log holds (ErrLocked).
//
// Open continues the chain from the file's last complete line after checking
// that line's own hash (ErrCorrupt when it does not verify; Open does not
// read the whole file: Verify does). An incomplete last line, left by a crash
// during a write that was never acknowledged, is truncated away and reported
// by Recovered.
func Open(path string, opts Options) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory: %w", err)
	}
	created := false
	if fi, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		created = true
	} else if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	} else if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l, err := open(path, f, created, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func open(path string, f *os.File, created bool, opts Options) (*Log, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		return nil, err
	}
	if created {
		// Make the new directory entry durable before the first record
		// claims to be.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	rec, err := recoverTail(f, fi.Size())
	if err != nil {
		return nil, err
	}
	size := fi.Size() - rec.TornBytes
	var first uint64
	var chain [sha256.Size]byte
	if size > 0 {
		if first, chain, err = readFirst(f); err != nil {
			return nil, err
		}
	} else {
		torn := rec.TornBytes
		if rec, err = continueRotated(path); err != nil {
			return nil, err
		}
		rec.TornBytes = torn
	}
	var prev [sha256.Size]byte
	if _, err := hex.Decode(prev[:], []byte(rec.LastHash)); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := newLog(path, osFile{f}, rec.Seq, prev, opts)
	l.recovered = rec
	l.size, l.fileFirst = size, first
	l.chain, l.chainSet = chain, first != 0
	return l, nil
}

// continueRotated is where an empty log file at path starts: after the last
// record of the newest rotated file beside it (a crash or stop right after a
// rotation), or at seq 1 when there is none.
func continueRotated(path string) (Recovery, error) {
	rotated, err := RotatedFiles(path)
	if err != nil || len(rotated) == 0 {
		return Recovery{LastHash: hex.EncodeToString(zeroHash[:])}, err
	}
	last := rotated[len(rotated)-1]
	rf, err := os.Open(last)
	if err != nil {
		return Recovery{}, fmt.Errorf("audit: %w", err)
	}
	defer rf.Close()
	fi, err := rf.Stat()
	if err != nil {
		return Recovery{}, fmt.Errorf("audit: %w", err)
	}
	rec, keep, err := lastRecord(rf, fi.Size())
	switch {
	case err != nil:
		return rec, fmt.Errorf("audit: rotated file %s: %w", last, err)
	case keep != fi.Size() || rec.Seq == 0:
		return rec, fmt.Errorf("%w: rotated file %s does not end with a complete record", ErrCorrupt, last)
	}
	rec.ContinuedFrom = last
	return rec, nil
}

// checkMode refuses anything but a regular file of mode 0600 owned by us.
func checkMode(path string, fi os.FileInfo) error {
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (%s)", ErrPermissions, path, fi.Mode().Type())
	case fi.Mode().Perm() != 0o600:
		return fmt.Errorf("%w: %s has mode %04o, want 0600", ErrPermissions, path, fi.Mode().Perm())
	case ownedByOther(fi):
		return fmt.Errorf("%w: %s is owned by another user", ErrPermissions, path)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync directory: %w", err)
	}
	return nil
}

// recoverTail reads at most two lines' worth from the end of f: the last
// complete line gives seq and hash; bytes after it are a torn write and are
// truncated (and synced) away.
func recoverTail(f *os.File, size int64) (Recovery, error) {
	rec, keep, err := lastRecord(f, size)
	if err != nil {
		return rec, err
	}
	if keep < size {
		rec.TornBytes = size - keep
		if err := f.Truncate(keep); err != nil {
			return rec, fmt.Errorf("audit: truncate torn line: %w", err)
		}
		if err := datasync(f); err != nil {
			return rec, fmt.Errorf("audit: %w", err)
		}
	}
	return rec, nil
}

// lastRecord finds the last complete line of f (size bytes) and returns its
// seq and hash, and where that line ends (keep; bytes after it are torn).
// It only reads.
func lastRecord(f *os.File, size int64) (rec Recovery, keep int64, err error) {
	rec = Recovery{LastHash: hex.EncodeToString(zeroHash[:])}
	if size == 0 {
		return rec, 0, nil
	}
	window := int64(2 * maxLineBytes)
	start := max(size-window, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return rec, 0, fmt.Errorf("audit: read tail: %w", err)
	}
	end := bytes.LastIndexByte(buf, '\n') // end of the last complete line
	if tail := int64(len(buf) - end - 1); tail >= int64(maxLineBytes) || (end < 0 && start > 0) {
		return rec, 0, &CorruptError{Line: countLines(f, start+int64(end)+1) + 1, Reason: "last line longer than any record (not a torn write)"}
	}
	if end >= 0 {
		lineStart := bytes.LastIndexByte(buf[:end], '\n') + 1
		if lineStart == 0 && start > 0 {
			return rec, 0, &CorruptError{Line: countLines(f, start+int64(end)) + 1, Reason: "last complete line longer than any record"}
		}
		l, sum, err := parseLine(0, buf[lineStart:end])
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				ce.Line = countLines(f, start+int64(lineStart)) + 1
			}
			return rec, 0, err
		}
		rec.Seq, rec.LastHash = l.Seq, hex.EncodeToString(sum[:])
	}
	return rec, start + int64(end) + 1, nil
}

// FileChain returns the chain of the log file at path (the hash of its first
// record, as Log.Chain), reading only its first line; "" for an empty file.
// It does not check the rest of the file: Verify does.
func FileChain(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	if fi.Size() == 0 {
		return "", nil
	}
	_, c, err := readFirst(f)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(c[:]), nil
}

// FileSeqs returns the seqs of the first and last complete records of the
// log file at path (0, 0 for an empty file), reading only its first and
// last lines. It does not check the file: Verify does.
func FileSeqs(path string) (first, last uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("audit: %w", err)
	}
	if fi.Size() == 0 {
		return 0, 0, nil
	}
	if first, _, err = readFirst(f); err != nil {
		return 0, 0, err
	}
	rec, _, err := lastRecord(f, fi.Size())
	return first, rec.Seq, err
}

// readFirst returns the seq and hash of the first record of a non-empty
// log file.
func readFirst(f io.ReaderAt) (uint64, [sha256.Size]byte, error) {
	buf := make([]byte, maxLineBytes+1)
	k, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return 0, [sha256.Size]byte{}, fmt.Errorf("audit: read first line: %w", err)
	}
	end := bytes.IndexByte(buf[:k], '\n')
	if end < 0 {
		return 0, [sha256.Size]byte{}, corrupt(1, "longer than any record")
	}
	l, sum, err := parseLine(1, buf[:end])
	if err != nil {
		return 0, [sha256.Size]byte{}, err
	}
	if l.Seq == 0 {
		return 0, [sha256.Size]byte{}, corrupt(1, "seq 0")
	}
	return l.Seq, sum, nil
}

// countLines counts the newlines in f before offset, to name a corrupt line.
// It reads the whole prefix: only done on the way to refusing the file.
func countLines(f *os.File, offset int64) uint64 {
	var n uint64
	r := io.NewSectionReader(f, 0, offset)
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		n += uint64(bytes.Count(buf[:k], []byte{'\n'}))
		if err != nil {
			return n
		}
	}
}
