package audit

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers compare with errors.Is; every error this package
// returns wraps one of them (or a context error from Append).
var (
	// ErrClosed: Append or Close was called after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrFailed: a write or fdatasync of the log failed. The failure latches:
	// every later Append fails with it too, until the log is closed and
	// reopened (which recovers the file's last complete line).
	ErrFailed = errors.New("audit: log failed")
	// ErrCorrupt: a line does not verify (Verify, or Open on the last
	// complete line). The error is a *CorruptError naming the line.
	ErrCorrupt = errors.New("audit: corrupt log")
	// ErrCutOff: Verify was given an anchor (a record's seq and hash kept
	// elsewhere) past the log's last record: records were cut off the end.
	ErrCutOff = errors.New("audit: records cut off the end of the log")
	// ErrPermissions: Open refused a log file whose mode is not 0600, that is
	// not a regular file, or that is a symbolic link.
	ErrPermissions = errors.New("audit: unsafe log file permissions")
	// ErrLocked: another Log (in this or another process) holds the file.
	ErrLocked = errors.New("audit: log file in use")
	// ErrUnmasked: the Masked or Reason field of an Entry holds something that
	// looks like a PAN or a token in clear (12 or more digits in a row, possibly grouped by single
	// spaces or dashes). The entry is not written; the log does not latch.
	ErrUnmasked = errors.New("audit: entry holds an unmasked card number or token")
	// ErrTooLarge: an Entry encodes to more than MaxRecordBytes. The entry is
	// not written; the log does not latch.
	ErrTooLarge = errors.New("audit: entry too large")
)

// CorruptError names the line (counted from 1) of a log that does not
// verify. errors.Is(err, ErrCorrupt) holds for it. The reason never quotes
// the line's content.
type CorruptError struct {
	Line   uint64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s: line %d: %s", ErrCorrupt, e.Line, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(line uint64, format string, args ...any) error {
	return &CorruptError{Line: line, Reason: fmt.Sprintf(format, args...)}
}

// ErrInvalidEntry: an Entry cannot be encoded (for example a time outside
// years 1 to 9999, which RFC 3339 cannot express). The entry is not written;
// the log does not latch.
var ErrInvalidEntry = errors.New("audit: invalid entry")
