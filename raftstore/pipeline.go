package raftstore

import (
	"sync"

	"github.com/hashicorp/raft"
)

// pipelineTransport is raft's NetworkTransport with one change: the
// AppendEntries pipelines it hands out always drain their responses.
//
// Why: hashicorp/raft v1.7.3 can deadlock a follower's replication
// goroutine. With MaxRPCsInFlight at its default of 2 the netPipeline's
// two channels are unbuffered. When a follower answers Success=false (a log
// mismatch after a restart, a stale term) raft's pipelineDecode returns and
// stops reading the pipeline's responses; the send loop may still pick a
// ready trigger before it notices, issue one more send, and park on the
// hand-off to the response decoder, which is itself parked delivering the
// previous response nobody reads. pipeline.Close is deferred in that same
// send loop, so nothing ever unblocks it: the follower gets heartbeats but
// no more entries, and Raft.Shutdown waits forever for the goroutine (seen
// here as a hung test cleanup; reported upstream in the same shape by
// grafana/pyroscope#5518). Draining the responses into a FIFO queue in our
// own goroutine means a send never waits on an absent reader, so the loop
// always reaches its finish check and closes the pipeline. Pipelining (and
// its throughput) is kept; the order of responses is unchanged.
type pipelineTransport struct {
	*raft.NetworkTransport
}

// AppendEntriesPipeline wraps the transport's pipeline (see pipelineTransport).
func (t pipelineTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return newDrainingPipeline(p), nil
}

// drainingPipeline reads every response of the pipeline it wraps as soon as
// it is decoded and queues it for Consumer, so the wrapped pipeline never
// blocks on a slow or departed reader. The queue only grows while raft's
// send loop runs on after its reader left, which ends at the loop's next
// finish check. Safe for concurrent use as raft uses it (one sender, one
// reader).
type drainingPipeline struct {
	raft.AppendPipeline
	out       chan raft.AppendFuture
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newDrainingPipeline(p raft.AppendPipeline) *drainingPipeline {
	d := &drainingPipeline{
		AppendPipeline: p,
		out:            make(chan raft.AppendFuture),
		stop:           make(chan struct{}),
		done:           make(chan struct{}),
	}
	go d.run()
	return d
}

func (d *drainingPipeline) run() {
	defer close(d.done)
	in := d.AppendPipeline.Consumer()
	var queue []raft.AppendFuture
	for {
		var out chan raft.AppendFuture // nil (never ready) while the queue is empty
		var head raft.AppendFuture
		if len(queue) > 0 {
			out, head = d.out, queue[0]
		}
		select {
		case f := <-in:
			queue = append(queue, f)
		case out <- head:
			queue[0] = nil
			queue = queue[1:]
		case <-d.stop:
			return
		}
	}
}

// Consumer returns the responses in the order the requests were sent.
func (d *drainingPipeline) Consumer() <-chan raft.AppendFuture { return d.out }

// Close closes the wrapped pipeline and stops draining it. Idempotent.
func (d *drainingPipeline) Close() error {
	d.closeOnce.Do(func() { close(d.stop) })
	err := d.AppendPipeline.Close()
	<-d.done
	return err
}
