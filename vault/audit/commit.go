package audit

import (
	"crypto/sha256"
	"fmt"
	"time"
)

// run is the committer goroutine: it turns whatever is queued into one
// write and one fdatasync, then answers every request of the batch.
// Requests queued meanwhile form the next batch.
func (l *Log) run() {
	defer close(l.exited)
	for {
		select {
		case <-l.wake:
			l.gather()
			l.commit()
		case <-l.stop:
			// Close set closed first: nothing more can be queued.
			l.commit()
			return
		}
	}
}

// gather waits, up to MaxDelay after the oldest queued request arrived, for
// as many requests as the previous batch held. Every wake it consumes is
// followed by commit taking the whole queue, so no wake-up is lost.
func (l *Log) gather() {
	if l.maxDelay <= 0 || l.lastBatch <= 1 {
		return
	}
	l.mu.Lock()
	n := len(l.queue)
	var oldest time.Time
	if n > 0 {
		oldest = l.queue[0].at
	}
	l.mu.Unlock()
	if n == 0 || n >= l.lastBatch {
		return
	}
	wait := l.maxDelay - time.Since(oldest)
	if wait <= 0 {
		return
	}
	l.timer.Reset(wait)
	defer l.timer.Stop()
	for {
		select {
		case <-l.timer.C:
			return
		case <-l.stop:
			return
		case <-l.wake:
			l.mu.Lock()
			n = len(l.queue)
			l.mu.Unlock()
			if n >= l.lastBatch {
				return
			}
		}
	}
}

// commit writes and syncs the whole queue as one batch. A write or sync
// failure latches: after a failed fdatasync the kernel may have dropped the
// dirty pages and marked them clean, so a retry could report success for
// data that is not on disk. Only reopening (which re-reads the file) is safe.
func (l *Log) commit() {
	l.mu.Lock()
	batch := l.queue
	if len(batch) == 0 {
		l.mu.Unlock()
		return
	}
	// Swap in the spare slice; spare and queue never share an array, or
	// an Append could overwrite the batch being written.
	l.queue, l.spare = l.spare, nil
	failed := l.failed
	l.mu.Unlock()
	if failed == nil {
		failed = l.writeBatch(batch)
	}
	if failed != nil {
		l.mu.Lock()
		if l.failed == nil {
			l.failed = failed
		}
		rest := l.queue
		l.queue = nil
		l.mu.Unlock()
		for _, r := range batch {
			r.done <- failed
		}
		for _, r := range rest {
			r.done <- failed
		}
	} else {
		for _, r := range batch {
			r.done <- nil
		}
		l.maybeRotate() // after the answers: they do not wait for it
	}
	clear(batch)
	l.spare = batch[:0]
}

// writeBatch chains, writes and syncs batch; it returns the latched error.
func (l *Log) writeBatch(batch []*request) error {
	buf := l.buf[:0]
	seq, prev := l.seq, l.prev
	var first [sha256.Size]byte
	for i, r := range batch {
		seq++
		buf, prev = appendLine(buf, seq, prev, r.body)
		if i == 0 {
			first = prev
		}
	}
	l.buf = buf
	if _, err := l.f.Write(buf); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrFailed, l.path, err)
	}
	l.syncs.Add(1)
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	l.seq, l.prev = seq, prev
	l.lastBatch = len(batch)
	l.entries.Add(uint64(len(batch)))
	l.size += int64(len(buf))
	newFile := l.fileFirst == 0
	if newFile {
		l.fileFirst = seq - uint64(len(batch)) + 1
	}
	l.mu.Lock()
	if newFile {
		l.chain, l.chainSet = first, true
	}
	l.headSeq, l.headHash = seq, prev
	l.mu.Unlock()
	return nil
}
