package audit

import (
	"io"
	"os"
)

// logFile is what the committer needs from the log file. The production
// implementation is osFile; tests wrap it only to force a failure or to hold
// a sync until they have arranged a race.
type logFile interface {
	io.Writer
	// Sync makes every written byte durable (fdatasync on Linux).
	Sync() error
	Close() error
}

// osFile is the log file on disk, opened with O_APPEND.
type osFile struct{ f *os.File }

func (o osFile) Write(p []byte) (int, error) { return o.f.Write(p) }
func (o osFile) Sync() error                 { return datasync(o.f) }
func (o osFile) Close() error                { return o.f.Close() }
