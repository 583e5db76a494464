package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outcomeClass sorts a Propose error into exactly one class.
func outcomeClass(err error) string {
	switch {
	case errors.Is(err, ErrUnknownOutcome):
		return "unknown"
	case errors.Is(err, ErrNotApplied), errors.Is(err, ErrNoLeader),
		errors.Is(err, ErrClosed), errors.Is(err, ErrNotLeader):
		return "not-applied"
	}
	return "unexpected"
}

type workerReport struct {
	acked    [][]byte
	unknown  [][]byte
	notDone  int
	unexpect []error
	late     int // acks of writes proposed after the leader was shut down
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func TestLeaderKilledUnderLoad(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	ctx := ctxT(t, 60*time.Second)
	leader := c.leader(t)

	// Acknowledgements wanted before the kill, and after it through the
	// new leader, before the workers stop.
	const ackedBefore, ackedAfter = 100, 100
	var killed atomic.Bool
	var acks, lateAcks atomic.Int64
	stop := make(chan struct{})
	stopWorkers := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(stopWorkers)
	const workers = 12
	reports := make(chan workerReport, workers)
	for w := range workers {
		n := c.nodes[w%3]
		go func() {
			var r workerReport
			for i := 0; ; i++ {
				select {
				case <-stop:
					reports <- r
					return
				default:
				}
				afterKill := killed.Load()
				k := []byte(fmt.Sprintf("w%02d-%05d", w, i))
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				res, err := n.s.Propose(pctx, PutIfAbsent("acked", k, k))
				cancel()
				switch {
				case err == nil && res.Applied:
					r.acked = append(r.acked, k)
					acks.Add(1)
					if afterKill {
						r.late++
						lateAcks.Add(1)
					}
				case err == nil:
					r.unexpect = append(r.unexpect, errors.New("fresh key collided"))
				case outcomeClass(err) == "unknown":
					r.unknown = append(r.unknown, k)
					time.Sleep(5 * time.Millisecond)
				case outcomeClass(err) == "not-applied":
					r.notDone++
					time.Sleep(5 * time.Millisecond)
				default:
					r.unexpect = append(r.unexpect, err)
				}
			}
		}()
	}
	if err := waitUntil(ctx, func() bool { return acks.Load() >= ackedBefore }); err != nil {
		t.Fatalf("%d of %d writes acknowledged before the kill: %v", acks.Load(), ackedBefore, err)
	}
	if err := leader.s.Shutdown(); err != nil {
		t.Fatalf("shutdown leader: %v", err)
	}
	killed.Store(true)
	// Wait for a new leader and progress through it: writes proposed after
	// the old leader was shut down can only commit through a new one.
	var survivors []*testNode
	for _, n := range c.nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	if _, _, err := survivors[0].s.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, func() bool { return lateAcks.Load() >= ackedAfter }); err != nil {
		t.Fatalf("%d of %d writes acknowledged after the kill: the cluster made no progress: %v", lateAcks.Load(), ackedAfter, err)
	}
	stopWorkers()

	var all workerReport
	for range workers {
		r := <-reports
		all.acked = append(all.acked, r.acked...)
		all.unknown = append(all.unknown, r.unknown...)
		all.notDone += r.notDone
		all.unexpect = append(all.unexpect, r.unexpect...)
		all.late += r.late
	}
	if len(all.unexpect) > 0 {
		t.Fatalf("%d unexpected outcomes, first: %v", len(all.unexpect), all.unexpect[0])
	}
	newLeader := c.leader(t)
	if newLeader == leader {
		t.Fatal("the killed node is still leader")
	}
	// Every acknowledged write is on every survivor.
	for _, n := range survivors {
		items, err := n.s.GetMany(ctx, "acked", all.acked, Linearizable)
		if err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
		for i, it := range items {
			if !it.Found || !bytes.Equal(it.Value, all.acked[i]) {
				t.Fatalf("%s lost acknowledged write %d of %d", n.id, i, len(all.acked))
			}
		}
	}
	// Unknown outcomes are resolved by retrying idempotently: the retry
	// either applies or finds the identical value already there.
	retries := make([][]Op, len(all.unknown))
	for i, k := range all.unknown {
		retries[i] = []Op{PutIfAbsent("acked", k, k)}
	}
	results, errs := survivors[0].s.ProposeBatch(ctx, retries)
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("retry of unknown outcome: %v", errs[i])
		}
		if ex, found := res.Existing(); !res.Applied && (!found || !bytes.Equal(ex, all.unknown[i])) {
			t.Fatal("retry found a different value")
		}
	}
	t.Logf("acked %d (%d after the kill), unknown outcome %d, not applied %d",
		len(all.acked), all.late, len(all.unknown), all.notDone)
}
