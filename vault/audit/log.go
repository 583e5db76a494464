package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxDelay is Options.MaxDelay when it is zero.
const DefaultMaxDelay = 500 * time.Microsecond

// Entry is one audited call. Masked forms only: never a PAN, token in clear,
// PIN or key byte. Append refuses (ErrUnmasked) a Masked or Reason field
// holding 12 or more digits in a row (card.HasPANLikeRun); names (scheme,
// key, identity) are the caller's to mask.
type Entry struct {
	Time     time.Time // set by Append when zero
	Node     string
	Identity string // caller identity (certificate URI SAN or CN)
	Method   string // full gRPC method
	Code     string // gRPC code name, e.g. "OK", "NOT_FOUND"
	Reason   string // panvault reason when any
	Scheme   string
	Key      string
	Masked   string // masked PAN or token, when one
	Items    int    // batch size when a batch
}

// Options tune a Log.
type Options struct {
	// MaxDelay is how long an append may wait for others to share its
	// fsync (default 500µs; negative: never wait). The committer waits only
	// when the previous batch held more than one entry, and stops waiting as
	// soon as as many entries are queued as the previous batch held, so a
	// lone appender never waits.
	MaxDelay time.Duration
	// MaxFileBytes, when positive, rotates the file once it holds at least
	// this many bytes: it is renamed PATH.<seq of its first record, 20
	// digits> and a new PATH continues the chain (next seq, prev = the last
	// record's hash). See rotate.go.
	MaxFileBytes int64
}

// Recovery says what Open found at the end of an existing file.
type Recovery struct {
	Seq       uint64 // seq of the last complete record (0: empty log)
	LastHash  string // its hash (64 zeros for an empty log)
	TornBytes int64  // bytes of an incomplete last line truncated away (0: none)
	// ContinuedFrom names the rotated file whose last record an empty log
	// file continues (a crash or stop right after a rotation); "" otherwise.
	ContinuedFrom string
}

// Stats counts a Log's work since Open.
type Stats struct {
	Entries        uint64 // entries written and synced
	Syncs          uint64 // fdatasync calls (one per group commit), failed ones included
	Rotations      uint64 // files rotated away (Options.MaxFileBytes)
	RotateFailures uint64 // rotations that failed (the log kept writing to the old file)
}

// Log is an append-only, hash-chained audit log file with group commit.
// It is safe for concurrent use.
type Log struct {
	path     string
	maxDelay time.Duration
	maxBytes int64 // Options.MaxFileBytes
	now      func() time.Time

	mu       sync.Mutex
	queue    []*request
	closed   bool
	failed   error // latched write or sync failure, wraps ErrFailed
	headSeq  uint64
	headHash [sha256.Size]byte
	chain    [sha256.Size]byte // hash of the current file's first record
	chainSet bool              // the current file has a record

	wake   chan struct{} // cap 1: something was queued
	stop   chan struct{} // closed by Close
	exited chan struct{} // closed when the committer returns

	// Owned by the committer goroutine.
	f         logFile
	seq       uint64
	prev      [sha256.Size]byte
	buf       []byte
	spare     []*request
	lastBatch int
	timer     *time.Timer
	size      int64  // bytes in the current file
	fileFirst uint64 // seq of the current file's first record; 0 while it has none

	recovered      Recovery
	entries        atomic.Uint64
	syncs          atomic.Uint64
	rotations      atomic.Uint64
	rotateFailures atomic.Uint64
}

// request is one Append waiting for its group commit.
type request struct {
	body []byte // encodeBody output
	at   time.Time
	done chan error // cap 1
}

func newLog(path string, f logFile, seq uint64, prev [sha256.Size]byte, opts Options) *Log {
	d := opts.MaxDelay
	if d == 0 {
		d = DefaultMaxDelay
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	l := &Log{
		path: path, maxDelay: d, maxBytes: opts.MaxFileBytes, now: time.Now,
		headSeq: seq, headHash: prev,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), exited: make(chan struct{}),
		f: f, seq: seq, prev: prev, timer: t,
	}
	go l.run()
	return l
}

// Append writes e and returns once it is durable (written and fdatasynced).
// Concurrent appends share one write and one fdatasync.
//
// Errors: ErrUnmasked, ErrTooLarge, ErrInvalidEntry (e refused, nothing
// written, the log stays usable); ErrFailed wrapping the cause (a write or
// sync failed, now or earlier: the failure latches); ErrClosed; or the
// context's error when ctx ends first, in which case the entry may still be
// written. Whenever Append returns an error the caller must not answer as
// if the call was audited.
func (l *Log) Append(ctx context.Context, e Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := encodeBody(e, l.now)
	if err != nil {
		return err
	}
	r := &request{body: b, done: make(chan error, 1)}
	if l.maxDelay > 0 {
		r.at = time.Now()
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case l.failed != nil:
		err := l.failed
		l.mu.Unlock()
		return err
	}
	l.queue = append(l.queue, r)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: waiting for the entry to be written (it may still be): %w", ctx.Err())
	}
}

// Close writes what is queued, waits for it, and closes the file. Appends
// after Close fail with ErrClosed; a second Close returns ErrClosed. Close
// returns the latched failure if the log had failed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.exited
	cerr := l.f.Close()
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed != nil {
		return failed
	}
	if cerr != nil {
		return fmt.Errorf("%w: close %s: %w", ErrFailed, l.path, cerr)
	}
	return nil
}

// Recovered says what Open found at the end of the file, in particular
// whether it truncated a torn last line (the server should log it).
func (l *Log) Recovered() Recovery { return l.recovered }

// Head returns the seq and hash of the last durable record (0 and 64 zeros
// for an empty log). Recording it elsewhere from time to time anchors the
// chain: Verify cannot tell a log whose tail was cut off from a shorter one.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.headSeq, hex.EncodeToString(l.headHash[:])
}

// Chain returns the hash of the current file's first record, which names
// the file's chain: anchors (see Anchor, Verify) are kept per chain, so a
// new file (a rotation, or a node that starts afresh) starts a new series
// of anchors and the old file's stay as they were. A rotated file's last
// record is bound into the next file by that file's first prev. Empty while
// the current file has no record.
func (l *Log) Chain() string {
	chain, _ := l.HeadAnchor()
	return chain
}

// HeadAnchor returns the current file's chain and its last durable record
// as an Anchor, read together (Chain and Head called one after the other
// could straddle a first record or a rotation). Empty chain and zero anchor
// while the current file has no record.
func (l *Log) HeadAnchor() (chain string, head Anchor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.chainSet {
		return "", Anchor{}
	}
	return hex.EncodeToString(l.chain[:]), Anchor{Seq: l.headSeq, Hash: hex.EncodeToString(l.headHash[:])}
}

// Stats returns counters since Open.
func (l *Log) Stats() Stats {
	return Stats{Entries: l.entries.Load(), Syncs: l.syncs.Load(),
		Rotations: l.rotations.Load(), RotateFailures: l.rotateFailures.Load()}
}
