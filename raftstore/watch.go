package raftstore

import (
	"bytes"
	"sync"
)

// maxPendingKeys bounds the keys one subscription may hold undelivered;
// beyond it the subscription collapses to a single Rescan event.
const maxPendingKeys = 4096

// Event reports that keys of a bucket changed (were written or deleted) at
// log index Index. When Rescan is true, Keys is empty and the subscriber
// must reload the whole bucket: events were coalesced because it fell
// behind, or the state was replaced by a snapshot. Keys may be shared
// between subscribers of the same bucket: treat them as read-only.
type Event struct {
	Bucket string
	Index  uint64
	Keys   [][]byte
	Rescan bool
}

// Subscription delivers Events for one bucket on C. Events are produced
// after the state DB committed the change, so a Get issued on receipt sees
// it. Delivery never blocks the state machine: undelivered keys are kept up
// to maxPendingKeys, after which they are dropped in favour of one Rescan
// event. Close stops delivery and closes C. Safe for concurrent use.
type Subscription struct {
	C <-chan Event

	bucket string
	hub    *watchHub
	out    chan Event
	signal chan struct{}
	done   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	pending []Event
	nkeys   int
	rescan  bool
	rescanI uint64
}

// Close stops the subscription. Safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.hub.remove(s)
		close(s.done)
	})
}

func (s *Subscription) enqueue(ev Event) {
	s.mu.Lock()
	if ev.Rescan || s.rescan || s.nkeys+len(ev.Keys) > maxPendingKeys {
		s.rescan = true
		s.rescanI = ev.Index
		s.pending = nil
		s.nkeys = 0
	} else {
		s.pending = append(s.pending, ev)
		s.nkeys += len(ev.Keys)
	}
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *Subscription) run() {
	defer close(s.out)
	for {
		select {
		case <-s.signal:
		case <-s.done:
			return
		}
		s.mu.Lock()
		batch := s.pending
		if s.rescan {
			batch = []Event{{Bucket: s.bucket, Index: s.rescanI, Rescan: true}}
		}
		s.pending, s.nkeys, s.rescan = nil, 0, false
		s.mu.Unlock()
		for _, ev := range batch {
			select {
			case s.out <- ev:
			case <-s.done:
				return
			}
		}
	}
}

// watchHub fans out changes to subscriptions. Safe for concurrent use.
type watchHub struct {
	mu   sync.RWMutex
	subs map[string]map[*Subscription]struct{}
}

func newWatchHub() *watchHub {
	return &watchHub{subs: make(map[string]map[*Subscription]struct{})}
}

func (h *watchHub) subscribe(bucket string) *Subscription {
	out := make(chan Event, 16)
	s := &Subscription{C: out, bucket: bucket, hub: h, out: out, signal: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	m := h.subs[bucket]
	if m == nil {
		m = make(map[*Subscription]struct{})
		h.subs[bucket] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	go s.run()
	return s
}

func (h *watchHub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[s.bucket]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.bucket)
		}
	}
}

func (h *watchHub) watched(bucket string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[bucket]) > 0
}

func (h *watchHub) closeAll() {
	h.mu.RLock()
	var all []*Subscription
	for _, m := range h.subs {
		for s := range m {
			all = append(all, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range all {
		s.Close()
	}
}

func (h *watchHub) rescanAll(index uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for b, m := range h.subs {
		for s := range m {
			s.enqueue(Event{Bucket: b, Index: index, Rescan: true})
		}
	}
}

// changeSet collects the keys changed by one applied batch, only for
// buckets somebody watches (token buckets are not copied for nothing).
type changeSet struct {
	hub     *watchHub
	watched map[string]bool
	keys    map[string][][]byte
}

func newChangeSet(h *watchHub) *changeSet {
	return &changeSet{hub: h, watched: make(map[string]bool)}
}

func (c *changeSet) add(bucket string, key []byte) {
	w, ok := c.watched[bucket]
	if !ok {
		w = c.hub.watched(bucket)
		c.watched[bucket] = w
	}
	if !w {
		return
	}
	if c.keys == nil {
		c.keys = make(map[string][][]byte)
	}
	c.keys[bucket] = append(c.keys[bucket], bytes.Clone(key))
}

func (c *changeSet) publish(index uint64) {
	if len(c.keys) == 0 {
		return
	}
	c.hub.mu.RLock()
	defer c.hub.mu.RUnlock()
	for b, keys := range c.keys {
		for s := range c.hub.subs[b] {
			s.enqueue(Event{Bucket: b, Index: index, Keys: keys})
		}
	}
}
