package devcluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/devcluster"
	"github.com/panvault/panvault/vault/devcluster/devclustertest"
)

const (
	e2ePANs      = 2000
	e2eExtraPANs = 60
	e2eWorkers   = 8
	e2eBatch     = 25
	e2eAttempt   = 10 * time.Second
)

// TestClusterEndToEnd runs three real node processes, tokenizes 2,000 PANs
// with concurrent clients spread over the nodes while the leader is killed
// with SIGKILL and restarted, then checks every acknowledged token on every
// node, deletes, joins a fourth node that must catch up through a snapshot,
// removes a node, and finally scans every file the cluster wrote for PANs in
// clear.
func TestClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds the binary and runs a cluster of processes")
	}
	devclustertest.RequireSoftHSM(t)
	bin := devclustertest.BuildBinary(t)
	root := t.TempDir()
	orchLog, err := os.Create(filepath.Join(root, "orchestrator.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer orchLog.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	start := time.Now()
	c, err := devcluster.Start(ctx, devcluster.Options{
		Dir:    filepath.Join(root, "cluster"),
		Nodes:  3,
		Binary: bin,
		// Small snapshots so that a joining node has to install one.
		SnapshotThreshold: 32,
		SnapshotInterval:  500 * time.Millisecond,
		TrailingLogs:      8,
		StopTimeout:       15 * time.Second,
		Log:               devclustertest.Logger(t, orchLog),
	})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	t.Logf("cluster of 3 ready in %v", time.Since(start).Round(time.Millisecond))

	all := devclustertest.PANs(e2ePANs+e2eExtraPANs, 20240601)
	pans, extra := all[:e2ePANs], all[e2ePANs:]
	if n := len(devclustertest.Brands(pans)); n < 9 {
		t.Fatalf("test PANs cover %d brands, want 9", n)
	}

	clients := newClients(t, c, 3)

	// Phase 1: tokenize under a leader crash.
	load := startLoad(ctx, clients, pans, "e2e")
	waitAcked(t, load, e2ePANs/2)
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatalf("find leader: %v", err)
	}
	killedAt := load.acked.Load()
	if err := c.Kill(leader); err != nil {
		t.Fatalf("kill leader: %v", err)
	}
	t.Logf("killed leader %s (SIGKILL) after %d acknowledged tokens", c.Nodes()[leader].ID, killedAt)
	// Keep going against the survivors for a quarter of the PANs.
	waitAcked(t, load, killedAt+e2ePANs/4)
	survivorsAcked := load.acked.Load() - killedAt
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatalf("restart killed leader: %v", err)
	}
	t.Logf("restarted %s", c.Nodes()[leader].ID)
	load.wait()
	if err := load.err(); err != nil {
		t.Fatalf("tokenize load: %v", err)
	}
	t.Logf("tokenized %d PANs in %v (%d workers, batches of %d, leader killed mid-way; %d retried calls, %d acknowledged by the survivors before the restart)",
		e2ePANs, load.elapsed.Round(time.Millisecond), e2eWorkers, e2eBatch, load.retries.Load(), survivorsAcked)
	if survivorsAcked < e2ePANs/4 {
		t.Fatalf("only %d tokens acknowledged between the kill and the restart", survivorsAcked)
	}
	tokens := load.tokens
	checkTokens(t, pans, tokens)

	// Retrying a request id returns the first answer, also across the leader change.
	checkIdempotent(t, ctx, clients[0], pans, tokens, "e2e")

	// Every acknowledged token on every node, the restarted one included.
	for i := range 3 {
		detokenizeAll(t, ctx, clients[i], c.Nodes()[i].ID, pans, tokens, nil)
	}

	// Deletes are visible on every node as soon as they are acknowledged.
	deleted := map[int]bool{}
	for k := range 6 {
		idx := k * 97
		via := k % 3
		// A client retries UNAVAILABLE with the same request id (the outcome may be
		// unknown right after the leader change); the retry returns the first answer.
		resp, err := deleteRetrying(ctx, clients[via].tok, &pb.DeleteTokenRequest{Scheme: devcluster.SchemePAN, Token: tokens[idx], RequestId: fmt.Sprintf("e2e-del-%d", k)})
		if err != nil || !resp.GetDeleted() {
			t.Fatalf("delete token of PAN %s via %s: deleted=%v err=%v", devclustertest.Mask(pans[idx]), c.Nodes()[via].ID, resp.GetDeleted(), err)
		}
		deleted[idx] = true
		for i := range 3 {
			_, err := clients[i].tok.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: devcluster.SchemePAN, Token: tokens[idx]}, grpc.WaitForReady(true))
			if status.Code(err) != codes.NotFound {
				t.Fatalf("detokenize on %s right after delete via %s: %v, want NOT_FOUND", c.Nodes()[i].ID, c.Nodes()[via].ID, err)
			}
		}
		again, err := deleteRetrying(ctx, clients[(via+1)%3].tok, &pb.DeleteTokenRequest{Scheme: devcluster.SchemePAN, Token: tokens[idx], RequestId: fmt.Sprintf("e2e-del-again-%d", k)})
		if err != nil || again.GetDeleted() {
			t.Fatalf("second delete: deleted=%v err=%v, want false, nil", again.GetDeleted(), err)
		}
	}

	// A fourth node joins after the log was compacted: it must install a snapshot.
	waitForSnapshot(t, ctx, c)
	n4, err := c.AddNode(ctx)
	if err != nil {
		t.Fatalf("add node: %v", err)
	}
	info4 := c.Nodes()[n4]
	c4 := newClient(t, c, n4)
	detokenizeAll(t, ctx, c4, info4.ID, pans, tokens, deleted)
	log4, err := os.ReadFile(info4.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log4), "Installed remote snapshot") {
		t.Fatalf("%s did not install a snapshot to catch up (see %s)", info4.ID, info4.LogPath)
	}
	t.Logf("%s joined and caught up through a snapshot", info4.ID)

	// Remove a follower; the remaining three keep serving.
	leader, err = c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for i := range 3 {
		if i != leader {
			victim = i
			break
		}
	}
	if err := c.RemoveNode(ctx, victim); err != nil {
		t.Fatalf("remove %s: %v", c.Nodes()[victim].ID, err)
	}
	var rest []*client
	for i := range 3 {
		if i != victim {
			rest = append(rest, clients[i])
		}
	}
	rest = append(rest, c4)
	st, err := rest[0].cluster.Status(ctx, &pb.StatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetNodes()) != 3 {
		t.Fatalf("after removal the configuration has %d members, want 3", len(st.GetNodes()))
	}
	for _, n := range st.GetNodes() {
		if n.GetId() == c.Nodes()[victim].ID {
			t.Fatalf("%s is still a member after removal", n.GetId())
		}
	}
	more := startLoad(ctx, rest, extra, "e2e-extra")
	more.wait()
	if err := more.err(); err != nil {
		t.Fatalf("tokenize after removal: %v", err)
	}
	for _, cl := range rest {
		detokenizeAll(t, ctx, cl, cl.id, extra, more.tokens, nil)
	}

	scrapeMetrics(t, c, root)

	// Stop everything cleanly, then look for PANs in every file written,
	// snapshots included.
	for _, n := range c.Nodes() {
		if n.Running {
			waitNodeSnapshot(t, n)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stopped = true
	found, files, err := devclustertest.FindPANs(root, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("PAN %s in clear in %s at offset %d", f.Masked, f.Path, f.Offset)
	}
	checkScanned(t, files, c.Nodes())
	t.Logf("scanned %d files for %d PANs: none found", len(files), len(all))
}

// client is one gRPC connection (client identity) to one node.
type client struct {
	id      string
	cc      *grpc.ClientConn
	tok     pb.TokenServiceClient
	cluster pb.ClusterServiceClient
}

func newClient(t *testing.T, c *devcluster.Cluster, i int) *client {
	t.Helper()
	cc, err := c.Dial(i, devcluster.Client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	admin, err := c.Dial(i, devcluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return &client{id: c.Nodes()[i].ID, cc: cc, tok: pb.NewTokenServiceClient(cc), cluster: pb.NewClusterServiceClient(admin)}
}

func newClients(t *testing.T, c *devcluster.Cluster, n int) []*client {
	out := make([]*client, n)
	for i := range out {
		out[i] = newClient(t, c, i)
	}
	return out
}

// load is a set of workers tokenizing PANs in batches, each worker starting on
// its own node and moving to the next one on UNAVAILABLE or a timeout, always
// resending the same request ids.
type load struct {
	tokens   []string // by PAN index; each index is written by one worker only
	acked    atomic.Int64
	retries  atomic.Int64
	wg       sync.WaitGroup
	errc     chan error
	finished chan struct{} // closed when every worker has returned
	elapsed  time.Duration // valid after finished
}

func startLoad(ctx context.Context, clients []*client, pans []string, idPrefix string) *load {
	l := &load{tokens: make([]string, len(pans)), errc: make(chan error, e2eWorkers), finished: make(chan struct{})}
	start := time.Now()
	work := make(chan []int, len(pans)/e2eBatch+1)
	for s := 0; s < len(pans); s += e2eBatch {
		b := make([]int, 0, e2eBatch)
		for i := s; i < min(s+e2eBatch, len(pans)); i++ {
			b = append(b, i)
		}
		work <- b
	}
	close(work)
	for w := range e2eWorkers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			node := w % len(clients)
			for batch := range work {
				if err := l.tokenize(ctx, clients, &node, pans, batch, idPrefix); err != nil {
					l.errc <- err
					return
				}
			}
		}()
	}
	go func() {
		l.wg.Wait()
		l.elapsed = time.Since(start)
		close(l.finished)
	}()
	return l
}

func (l *load) tokenize(ctx context.Context, clients []*client, node *int, pans []string, pending []int, idPrefix string) error {
	backoff := 50 * time.Millisecond
	next := func() error {
		l.retries.Add(1)
		*node = (*node + 1) % len(clients)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
		return nil
	}
	for len(pending) > 0 {
		req := &pb.TokenizeBatchRequest{Scheme: devcluster.SchemePAN}
		for _, i := range pending {
			req.Items = append(req.Items, &pb.TokenizeBatchItem{Pan: pans[i], RequestId: fmt.Sprintf("%s-%d", idPrefix, i)})
		}
		actx, cancel := context.WithTimeout(ctx, e2eAttempt)
		resp, err := clients[*node].tok.TokenizeBatch(actx, req)
		cancel()
		if err != nil {
			if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded {
				if err := next(); err != nil {
					return fmt.Errorf("gave up retrying: last error %v", status.Convert(err).Message())
				}
				continue
			}
			return fmt.Errorf("TokenizeBatch on %s: %s: %s", clients[*node].id, status.Code(err), status.Convert(err).Message())
		}
		if len(resp.GetResults()) != len(pending) {
			return fmt.Errorf("TokenizeBatch on %s: %d results for %d items", clients[*node].id, len(resp.GetResults()), len(pending))
		}
		var again []int
		for j, r := range resp.GetResults() {
			i := pending[j]
			if s := r.GetSuccess(); s != nil {
				l.tokens[i] = s.GetToken()
				l.acked.Add(1)
				continue
			}
			e := r.GetError()
			if c := codes.Code(e.GetCode()); c == codes.Unavailable || c == codes.DeadlineExceeded {
				again = append(again, i)
				continue
			}
			return fmt.Errorf("PAN %s on %s: %s: %s", devclustertest.Mask(pans[i]), clients[*node].id, codes.Code(e.GetCode()), e.GetMessage())
		}
		if len(again) > 0 {
			if err := next(); err != nil {
				return err
			}
		}
		pending = again
	}
	return nil
}

func (l *load) wait() { <-l.finished }

func (l *load) done() bool {
	select {
	case <-l.finished:
		return true
	default:
		return false
	}
}

func (l *load) err() error {
	close(l.errc)
	var errs []error
	for err := range l.errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitAcked waits until n tokens are acknowledged (or the load ends).
func waitAcked(t *testing.T, l *load, n int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for l.acked.Load() < n && !l.done() {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d tokens acknowledged after 2 minutes", l.acked.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkTokens checks every token's format and that no token maps to two PANs.
func checkTokens(t *testing.T, pans, tokens []string) {
	t.Helper()
	byToken := make(map[string]int, len(tokens))
	for i, tok := range tokens {
		pan := pans[i]
		switch {
		case tok == "":
			t.Fatalf("PAN %s has no token", devclustertest.Mask(pan))
		case len(tok) != len(pan) || tok[:6] != pan[:6] || tok[len(tok)-4:] != pan[len(pan)-4:]:
			t.Fatalf("token %s of PAN %s does not keep 6+4 digits", devclustertest.Mask(tok), devclustertest.Mask(pan))
		case tok == pan || card.Luhn(tok):
			t.Fatalf("token %s of PAN %s passes the Luhn check (scheme rule: fail)", devclustertest.Mask(tok), devclustertest.Mask(pan))
		}
		if j, dup := byToken[tok]; dup {
			t.Fatalf("token %s maps to two PANs: %s and %s", devclustertest.Mask(tok), devclustertest.Mask(pans[j]), devclustertest.Mask(pan))
		}
		byToken[tok] = i
	}
}

// checkIdempotent resends every 10th request id and expects the first token.
func checkIdempotent(t *testing.T, ctx context.Context, cl *client, pans, tokens []string, idPrefix string) {
	t.Helper()
	req := &pb.TokenizeBatchRequest{Scheme: devcluster.SchemePAN}
	var idx []int
	for i := 0; i < len(pans); i += 10 {
		idx = append(idx, i)
		req.Items = append(req.Items, &pb.TokenizeBatchItem{Pan: pans[i], RequestId: fmt.Sprintf("%s-%d", idPrefix, i)})
	}
	resp, err := cl.tok.TokenizeBatch(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("retry batch: %v", err)
	}
	if len(resp.GetResults()) != len(req.Items) {
		t.Fatalf("retry batch: %d results for %d items", len(resp.GetResults()), len(req.Items))
	}
	for j, r := range resp.GetResults() {
		i := idx[j]
		if got := r.GetSuccess().GetToken(); got != tokens[i] {
			t.Fatalf("retry of request %s-%d (PAN %s) returned token %s, first answer was %s (error %v)",
				idPrefix, i, devclustertest.Mask(pans[i]), devclustertest.Mask(got), devclustertest.Mask(tokens[i]), r.GetError())
		}
	}
}

// detokenizeAll detokenizes every token (linearizable) on one node and checks
// the PAN; tokens in gone must be NOT_FOUND instead.
func detokenizeAll(t *testing.T, ctx context.Context, cl *client, node string, pans, tokens []string, gone map[int]bool) {
	t.Helper()
	const chunk = 250
	for s := 0; s < len(tokens); s += chunk {
		req := &pb.DetokenizeBatchRequest{Scheme: devcluster.SchemePAN}
		for i := s; i < min(s+chunk, len(tokens)); i++ {
			req.Items = append(req.Items, &pb.DetokenizeBatchItem{Token: tokens[i]})
		}
		var resp *pb.DetokenizeBatchResponse
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			actx, cancel := context.WithTimeout(ctx, e2eAttempt)
			resp, err = cl.tok.DetokenizeBatch(actx, req, grpc.WaitForReady(true))
			cancel()
			if status.Code(err) != codes.Unavailable {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("DetokenizeBatch on %s: %v", node, err)
		}
		if len(resp.GetResults()) != len(req.Items) {
			t.Fatalf("DetokenizeBatch on %s: %d results for %d items", node, len(resp.GetResults()), len(req.Items))
		}
		for j, r := range resp.GetResults() {
			i := s + j
			if gone[i] {
				if codes.Code(r.GetError().GetCode()) != codes.NotFound {
					t.Fatalf("deleted token %s on %s: got %v, want NOT_FOUND", devclustertest.Mask(tokens[i]), node, r.GetError())
				}
				continue
			}
			if got := r.GetSuccess().GetPan(); got != pans[i] {
				t.Fatalf("token %s on %s: got PAN %s (error %v), want %s", devclustertest.Mask(tokens[i]), node,
					devclustertest.Mask(got), r.GetError(), devclustertest.Mask(pans[i]))
			}
		}
	}
}

// hasSnapshot reports whether a node has a complete snapshot on disk.
func hasSnapshot(n devcluster.NodeInfo) bool {
	entries, _ := os.ReadDir(filepath.Join(n.DataDir, "snapshots"))
	for _, e := range entries {
		if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
			return true
		}
	}
	return false
}

// waitForSnapshot waits until the leader has written a snapshot, so that its
// log is compacted and a new node cannot catch up from the log alone.
func waitForSnapshot(t *testing.T, ctx context.Context, c *devcluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if leader, err := c.Leader(ctx); err == nil && hasSnapshot(c.Nodes()[leader]) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the leader wrote no snapshot within 30s")
}

// waitNodeSnapshot waits until a node has a snapshot on disk.
func waitNodeSnapshot(t *testing.T, n devcluster.NodeInfo) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !hasSnapshot(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no snapshot within 30s", n.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkScanned makes sure the PAN scan covered each node's Raft log, state DB,
// a snapshot and its log.
func checkScanned(t *testing.T, files []string, nodes []devcluster.NodeInfo) {
	t.Helper()
	for _, n := range nodes {
		var raftDB, stateDB, snap, logf bool
		for _, f := range files {
			if !strings.HasPrefix(f, n.Dir+string(filepath.Separator)) {
				continue
			}
			switch {
			case f == filepath.Join(n.DataDir, "raft.db"):
				raftDB = true
			case f == filepath.Join(n.DataDir, "state.db"):
				stateDB = true
			case strings.HasPrefix(f, filepath.Join(n.DataDir, "snapshots")+string(filepath.Separator)):
				snap = true
			case f == n.LogPath:
				logf = true
			}
		}
		if n.Removed {
			snap = true // stopped when removed; it may not have snapshotted yet
		}
		if !raftDB || !stateDB || !snap || !logf {
			t.Errorf("%s: scan missed files (raft.db %v, state.db %v, snapshot %v, node.log %v)", n.ID, raftDB, stateDB, snap, logf)
		}
	}
}

// deleteRetrying sends req until it gets an answer other than UNAVAILABLE or
// DEADLINE_EXCEEDED, at most ten times, as a client holding a request id does.
func deleteRetrying(ctx context.Context, c pb.TokenServiceClient, req *pb.DeleteTokenRequest) (*pb.DeleteTokenResponse, error) {
	var err error
	for attempt := range 10 {
		actx, cancel := context.WithTimeout(ctx, e2eAttempt)
		var resp *pb.DeleteTokenResponse
		resp, err = c.DeleteToken(actx, req, grpc.WaitForReady(true))
		cancel()
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			return resp, err
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	return nil, err
}
