package raftstore

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// State DB commits are grouped (see DESIGN.md, "Grouped state commits").
// The state machine applies each batch of log entries to an in-memory
// overlay of recent writes; a committer goroutine writes the overlay to
// bbolt in one transaction (fsynced, with the applied index it covers)
// every StateCommitInterval, or sooner once it holds StateCommitKeys keys.
// Readers see the overlays over a bbolt read transaction, so a write is
// visible as soon as it is applied. The Raft log (fsynced on a majority
// before anything is applied) is the write-ahead log of the overlay: after a
// crash the node replays the entries after the state DB's applied index.
//
// Locking: ovMu guards the mem and frozen pointers and mem's map (the
// state machine mutates mem only under ovMu held exclusively, readers hold
// it shared for the whole read); a frozen overlay is immutable. commitMu
// serialises commits (background, snapshot, close, restore).

// ovEntry is one pending write: a value, or a deletion.
type ovEntry struct {
	value   []byte
	deleted bool
}

// overlay holds writes applied but not yet committed to bbolt, keyed by
// bucket + "\x00" + key (bucket names never contain \x00). index is the
// highest log index whose writes it (with older layers) reflects.
type overlay struct {
	m     map[string]ovEntry
	bytes int
	index uint64
}

func newOverlay(index uint64) *overlay {
	return &overlay{m: make(map[string]ovEntry), index: index}
}

func ovKey(bucket string, key []byte) string {
	var b strings.Builder
	b.Grow(len(bucket) + 1 + len(key))
	b.WriteString(bucket)
	b.WriteByte(0)
	b.Write(key)
	return b.String()
}

func splitOvKey(k string) (bucket string, key []byte) {
	i := strings.IndexByte(k, 0)
	return k[:i], []byte(k[i+1:])
}

func (o *overlay) put(k string, e ovEntry) {
	if old, ok := o.m[k]; ok {
		o.bytes -= len(k) + len(old.value)
	}
	o.m[k] = e
	o.bytes += len(k) + len(e.value)
}

// stateView is a consistent read of the applied state: overlays, newest
// first, over one bbolt read transaction. Valid only inside fsm.read.
type stateView struct {
	layers []*overlay
	tx     *bolt.Tx
	bolts  map[string]*bolt.Bucket
}

func (v *stateView) bucket(name string) *bolt.Bucket {
	if b, ok := v.bolts[name]; ok {
		return b
	}
	b := v.tx.Bucket(userBucketName(name))
	if v.bolts == nil {
		v.bolts = make(map[string]*bolt.Bucket)
	}
	v.bolts[name] = b
	return b
}

// get returns the value of key (aliasing overlay or bbolt memory: copy it
// before the view ends).
func (v *stateView) get(bucket string, key []byte) ([]byte, bool) {
	if len(v.layers) > 0 {
		k := ovKey(bucket, key)
		for _, l := range v.layers {
			if e, ok := l.m[k]; ok {
				return e.value, !e.deleted
			}
		}
	}
	b := v.bucket(bucket)
	if b == nil {
		return nil, false
	}
	val := b.Get(key)
	return val, val != nil
}

// scan lists up to limit pairs of bucket with prefix, after after (if
// set), in key order, merging the overlays with bbolt. Values are copies.
func (v *stateView) scan(bucket string, prefix, after []byte, limit int) (kvs []KV, more bool) {
	start := prefix
	if after != nil && bytes.Compare(after, start) >= 0 {
		start = after
	}
	inRange := func(k []byte) bool {
		return bytes.HasPrefix(k, prefix) && bytes.Compare(k, start) >= 0 && (after == nil || !bytes.Equal(k, after))
	}
	// Overlay keys of the range, newest layer winning.
	pend := map[string]ovEntry{}
	for i := len(v.layers) - 1; i >= 0; i-- {
		for k, e := range v.layers[i].m {
			if b, key := splitOvKey(k); b == bucket && inRange(key) {
				pend[string(key)] = e
			}
		}
	}
	okeys := make([]string, 0, len(pend))
	for k := range pend {
		okeys = append(okeys, k)
	}
	slices.Sort(okeys)

	var c *bolt.Cursor
	var bk, bv []byte
	if b := v.bucket(bucket); b != nil {
		c = b.Cursor()
		bk, bv = c.Seek(start)
		if after != nil && bk != nil && bytes.Equal(bk, after) {
			bk, bv = c.Next()
		}
		if bk != nil && !bytes.HasPrefix(bk, prefix) {
			bk = nil
		}
	}
	nextBolt := func() {
		bk, bv = c.Next()
		if bk != nil && !bytes.HasPrefix(bk, prefix) {
			bk = nil
		}
	}
	oi := 0
	for bk != nil || oi < len(okeys) {
		var k, val []byte
		switch {
		case oi < len(okeys) && (bk == nil || okeys[oi] <= string(bk)):
			if bk != nil && okeys[oi] == string(bk) {
				nextBolt() // the overlay overrides this bbolt key
			}
			e := pend[okeys[oi]]
			k = []byte(okeys[oi])
			oi++
			if e.deleted {
				continue
			}
			val = e.value
		default:
			k, val = bk, bv
			nextBolt()
		}
		if len(kvs) == limit {
			return kvs, true
		}
		kvs = append(kvs, KV{Key: bytes.Clone(k), Value: bytes.Clone(val)})
	}
	return kvs, false
}

// read runs fn on a consistent view of the applied state.
func (f *fsm) read(fn func(v *stateView) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return ErrClosed
	}
	f.ovMu.RLock()
	defer f.ovMu.RUnlock()
	v := &stateView{layers: f.layersLocked()}
	return f.db.View(func(tx *bolt.Tx) error {
		v.tx = tx
		return fn(v)
	})
}

// layersLocked returns the overlays newest first; ovMu held.
func (f *fsm) layersLocked() []*overlay {
	if f.frozen != nil {
		return []*overlay{f.mem, f.frozen}
	}
	return []*overlay{f.mem}
}

// startCommitter starts the goroutine that commits the overlay to bbolt.
func (f *fsm) startCommitter() {
	f.commitReq = make(chan struct{}, 1)
	f.commitStop = make(chan struct{})
	f.commitDone = make(chan struct{})
	go func() {
		defer close(f.commitDone)
		t := time.NewTicker(f.opts.commitInterval)
		defer t.Stop()
		for {
			select {
			case <-f.commitStop:
				return
			case <-t.C:
			case <-f.commitReq:
			}
			if err := f.commitState(); err != nil {
				f.stop(err)
				return
			}
		}
	}()
}

// requestCommit asks the committer for a commit soon (non-blocking).
func (f *fsm) requestCommit() {
	select {
	case f.commitReq <- struct{}{}:
	default:
	}
}

// commitState writes everything applied so far (mem, once any earlier
// commit has finished) to bbolt in one fsynced transaction together with
// the applied index it covers, then drops it from memory. Nothing to
// write is not an error. A failure is fatal for the caller to report: the
// state machine cannot go on without its state DB.
func (f *fsm) commitState() error {
	f.commitMu.Lock()
	defer f.commitMu.Unlock()
	if f.stopped.Load() {
		return nil
	}
	f.ovMu.Lock()
	fr := f.mem
	if len(fr.m) == 0 && fr.index == f.diskApplied {
		f.ovMu.Unlock()
		return nil
	}
	f.frozen, f.mem = fr, newOverlay(fr.index)
	f.ovMu.Unlock()

	keys := make([]string, 0, len(fr.m))
	for k := range fr.m {
		keys = append(keys, k)
	}
	// Sorted: bbolt then walks each leaf once, left to right.
	slices.Sort(keys)
	f.mu.RLock()
	err := errStateClosed
	if f.db != nil {
		err = f.db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(metaBucket)
			if meta == nil {
				return fmt.Errorf("%w: meta bucket missing", ErrStateCorrupt)
			}
			var cur string
			var b *bolt.Bucket
			for _, k := range keys {
				name, key := splitOvKey(k)
				if b == nil || name != cur {
					cur = name
					b = tx.Bucket(userBucketName(name))
				}
				e := fr.m[k]
				if e.deleted {
					if b != nil {
						if err := b.Delete(key); err != nil {
							return err
						}
					}
					continue
				}
				if b == nil {
					var err error
					if b, err = tx.CreateBucket(userBucketName(name)); err != nil {
						return err
					}
				}
				if err := b.Put(key, e.value); err != nil {
					return err
				}
			}
			return writeApplied(meta, fr.index)
		})
	}
	f.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("raftstore: commit state db at index %d: %w", fr.index, err)
	}
	f.ovMu.Lock()
	f.frozen = nil
	f.diskApplied = fr.index
	f.ovMu.Unlock()
	f.stateCommits.Add(1)
	return nil
}

// errStateClosed: the state DB was closed under a pending commit.
var errStateClosed = fmt.Errorf("%w: state db closed", ErrClosed)

// stopCommitter stops the background committer and waits for it.
func (f *fsm) stopCommitter() {
	if f.commitStop == nil {
		return
	}
	select {
	case <-f.commitStop:
	default:
		close(f.commitStop)
	}
	<-f.commitDone
}
