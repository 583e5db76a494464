package vault_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

// TestFailoverIdempotent tokenizes with request ids through the followers
// while the leader is stopped. Clients retry failed calls with the same
// request id. Afterwards: every request id maps to exactly one token, a
// retry returns it, and it detokenizes to its PAN on every node (the old
// leader too, once restarted).
func TestFailoverIdempotent(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	leader := c.LeaderIndex(t)
	var via []int
	for i := range c.Nodes {
		if i != leader {
			via = append(via, i)
		}
	}
	const workers, each = 4, 30
	tokens := make([][]string, workers)
	retries := make([]int, workers)
	var done atomic.Int64
	var g errgroup.Group
	// Clients and PANs are built here: helpers that may call t.Fatal run
	// only on the test goroutine.
	clients := make([]pb.TokenServiceClient, workers)
	pans := make([][]string, workers)
	for w := range workers {
		clients[w] = c.Tokens(t, via[w%len(via)])
		pans[w] = make([]string, each)
		for k := range each {
			pans[w][k] = testPAN(t, "222100", 16, w*1000+k)
		}
	}
	for w := range workers {
		tokens[w] = make([]string, each)
		g.Go(func() error {
			cl := clients[w]
			for k := range each {
				req := &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pans[w][k],
					RequestId: fmt.Sprintf("w%d-%d", w, k)}
				for attempt := 0; ; attempt++ {
					cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
					r, err := cl.Tokenize(cctx, req)
					cancel()
					if err == nil {
						tokens[w][k] = r.GetToken()
						done.Add(1)
						break
					}
					if c := status.Code(err); (c != codes.Unavailable && c != codes.DeadlineExceeded) || attempt == 50 {
						return fmt.Errorf("worker %d item %d attempt %d: %w", w, k, attempt, err)
					}
					retries[w]++
					time.Sleep(50 * time.Millisecond)
				}
			}
			return nil
		})
	}
	// Stop the leader once a quarter of the work is acknowledged (or give
	// up if the workers stop short of that: their error says why).
	workersDone := make(chan error, 1)
	go func() { workersDone <- g.Wait() }()
	deadline := time.After(time.Minute)
	for done.Load() < workers*each/4 {
		select {
		case err := <-workersDone:
			t.Fatalf("workers finished before a quarter of the work was acknowledged (%d): %v", done.Load(), err)
		case <-deadline:
			t.Fatalf("only %d tokens acknowledged after a minute", done.Load())
		case <-time.After(time.Millisecond):
		}
	}
	stopAt := time.Now()
	c.StopNode(t, leader)
	t.Logf("leader stopped after %d tokens in %v", done.Load(), time.Since(stopAt))
	if err := <-workersDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("workers done %v after the stop", time.Since(stopAt))
	total := 0
	for _, r := range retries {
		total += r
	}
	t.Logf("%d retries across the leader loss", total)

	c.RestartNode(t, leader)
	seen := make(map[string]bool)
	for w := range workers {
		for k := range each {
			tok := tokens[w][k]
			if seen[tok] {
				t.Fatalf("token of w%d-%d issued twice", w, k)
			}
			seen[tok] = true
			pan := testPAN(t, "222100", 16, w*1000+k)
			again, err := c.Tokens(t, leader).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan, RequestId: fmt.Sprintf("w%d-%d", w, k)})
			if err != nil || again.GetToken() != tok {
				t.Fatalf("retry of w%d-%d after failover: another answer (%v)", w, k, err)
			}
			for i := range c.Nodes {
				d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: tok})
				if err != nil || d.GetPan() != pan {
					t.Fatalf("w%d-%d on node %d: %v", w, k, i, err)
				}
			}
		}
	}
}
