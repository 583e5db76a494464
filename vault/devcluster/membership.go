package devcluster

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// Kill sends SIGKILL to node i and waits for it to die (a crash: no graceful
// shutdown). Killing a node that is not running does nothing.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	_, p, err := c.node(i)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if p != nil {
		p.kill()
	}
	return nil
}

// StopNode stops node i gracefully (SIGTERM, then SIGKILL after
// Options.StopTimeout). It returns an error if the node did not exit cleanly.
func (c *Cluster) StopNode(i int) error {
	c.mu.Lock()
	_, p, err := c.node(i)
	c.mu.Unlock()
	if err != nil || p == nil {
		return err
	}
	return p.stop(c.opts.StopTimeout)
}

// Restart starts node i again (after Kill or StopNode) with the same
// configuration, data and token, and waits until it serves.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	n, p, err := c.node(i)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if p != nil && !p.exited() {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrRunning, n.ID)
	}
	id, addr := n.ID, n.APIAddr
	paths := pathsFor(c.opts.Dir, id)
	np, err := c.spawnNode(id, paths)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.procs[id] = np
	c.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	return c.waitReady(wctx, id, addr, np, paths.Log)
}

// AddNode creates a node (token, master key, certificate, config joining the
// active members), starts it and waits until it serves. It returns the new
// node's index.
func (c *Cluster) AddNode(ctx context.Context) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	var joins []string
	for _, n := range c.st.Nodes {
		if !n.Removed {
			joins = append(joins, n.RaftAddr)
		}
	}
	ns, err := c.st.newNode(c.addrsInUse())
	if err != nil {
		c.mu.Unlock()
		return 0, err
	}
	ns.Join = joins
	idx := len(c.st.Nodes) - 1
	id, addr := ns.ID, ns.APIAddr
	err = c.st.write(c.opts.Dir)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	c.opts.Log.Info("adding node", "node", id)
	if err := c.prepareNode(ctx, id); err != nil {
		return 0, err
	}
	c.mu.Lock()
	err = c.writeConfigs()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	want, err := c.masterKCV()
	if err != nil {
		return 0, err
	}
	if err := c.ensureMasterKey(ctx, id, want); err != nil {
		return 0, err
	}
	paths := pathsFor(c.opts.Dir, id)
	c.mu.Lock()
	p, err := c.spawnNode(id, paths)
	if err == nil {
		c.procs[id] = p
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	if err := c.waitReady(wctx, id, addr, p, paths.Log); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.st.Nodes[idx].Started = true
	err = c.st.write(c.opts.Dir)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return idx, c.writeEnvFiles()
}

// RemoveNode takes node i out of the Raft configuration through another
// running node's ClusterService, then stops it. Its directory is kept.
func (c *Cluster) RemoveNode(ctx context.Context, i int) error {
	c.mu.Lock()
	n, p, err := c.node(i)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	id := n.ID
	via := -1
	for j, o := range c.st.Nodes {
		if pr := c.procs[o.ID]; j != i && !o.Removed && pr != nil && !pr.exited() {
			via = j
			break
		}
	}
	c.mu.Unlock()
	if via < 0 {
		return fmt.Errorf("%w: no other running node to remove %s through", ErrNoNode, id)
	}
	cc, err := c.Dial(via, Admin)
	if err != nil {
		return err
	}
	defer cc.Close()
	err = retryUnavailable(ctx, func(ctx context.Context) error {
		_, err := pb.NewClusterServiceClient(cc).Remove(ctx, &pb.RemoveRequest{NodeId: id})
		return err
	})
	if err != nil {
		return fmt.Errorf("devcluster: remove %s: %w", id, err)
	}
	c.opts.Log.Info("node removed from the cluster", "node", id)
	if p != nil {
		if err := p.stop(c.opts.StopTimeout); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.st.Nodes[i].Removed = true
	err = c.st.write(c.opts.Dir)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.writeEnvFiles()
}

// Leader returns the index of the node that the running nodes report as
// leader. It fails with ErrNoNode when no running node knows a leader.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	var last error = ErrNoNode
	for _, n := range c.Nodes() {
		if !n.Running {
			continue
		}
		cc, err := c.Dial(n.Index, Admin)
		if err != nil {
			return -1, err
		}
		st, err := pb.NewClusterServiceClient(cc).Status(ctx, &pb.StatusRequest{})
		cc.Close()
		if err != nil {
			last = err
			continue
		}
		if st.GetLeaderId() == "" {
			continue
		}
		for _, m := range c.Nodes() {
			if m.ID == st.GetLeaderId() {
				return m.Index, nil
			}
		}
	}
	return -1, fmt.Errorf("%w: no leader known: %w", ErrNoNode, last)
}

// retryUnavailable runs fn until it succeeds, fails with a code other than
// UNAVAILABLE, or ctx ends.
func retryUnavailable(ctx context.Context, fn func(ctx context.Context) error) error {
	backoff := newBackoff()
	for {
		err := fn(ctx)
		if err == nil || status.Code(err) != codes.Unavailable || errors.Is(err, context.Canceled) {
			return err
		}
		if werr := backoff.wait(ctx); werr != nil {
			return err
		}
	}
}
