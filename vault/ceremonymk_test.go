package vault_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestMasterKeyRotation replaces the master key by ceremony while clients
// tokenize and detokenize on every node: a component with a wrong KCV is
// refused, the ceremony waits until every node has staged the new master
// key, then every working key version is rewrapped under it, every node
// switches, no request fails, and a restarted node loads the rewrapped keys
// with the new master key.
func TestMasterKeyRotation(t *testing.T) {
	sweeps := newSweepRecorder()
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{Tune: fastJobs, Logger: slog.New(sweeps)})
	c.Setup(t)
	cs := c.InitCustodians(t)
	ctx := ctxT(t)
	set, err := c.Nodes[0].HSM.GenerateComponents(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Zero)
	stageReq := func() *pb.StageMasterKeyRequest {
		r := &pb.StageMasterKeyRequest{MasterKcv: set.MasterKCV.String()}
		for _, comp := range set.Components {
			r.Components = append(r.Components, &pb.MasterKeyComponent{Value: append([]byte(nil), comp.Bytes()...), Kcv: comp.KCV().String()})
		}
		return r
	}
	oldKCV, _ := c.Nodes[0].HSM.MasterKeyKCV()

	// A component with the wrong KCV is refused and names the component.
	bad := stageReq()
	bad.Components[2].Kcv = set.Components[0].KCV().String()
	if _, err := c.Ceremonies(t, 0).StageMasterKey(ctx, bad); codeOf(err) != codes.FailedPrecondition || reason(err) != "COMPONENT_KCV_MISMATCH" {
		t.Fatalf("stage with a wrong component kcv: %v", err)
	}
	for i := range 2 {
		r, err := c.Ceremonies(t, i).StageMasterKey(ctx, stageReq())
		if err != nil || !r.GetStaged() || r.GetNodeId() != c.Nodes[i].ID {
			t.Fatalf("stage on n%d: %v %v", i, r, err)
		}
	}

	// Traffic on every node for the whole rotation.
	pans := map[string]string{}
	for k := range 20 {
		pan := testPAN(t, "510510", 16, k)
		r, err := c.Tokens(t, k%3).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
		if err != nil {
			t.Fatal(err)
		}
		pans[r.GetToken()] = pan
	}
	stop := make(chan struct{})
	failed := make(chan error, 3)
	var (
		wg       sync.WaitGroup
		calls    atomic.Int64
		switched atomic.Bool     // set once every node uses the new master key
		rounds   [3]atomic.Int64 // rounds per node
		after    [3]atomic.Int64 // rounds per node begun after the switch
	)
	for w := range 3 {
		wg.Go(func() {
			cl := c.Tokens(t, w)
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				post := switched.Load()
				if err := trafficRound(ctx, cl, c.Signing(t, w), testPAN(t, "520000", 16, w*100000+k)); err != nil {
					failed <- fmt.Errorf("n%d: %w", w, err)
					return
				}
				calls.Add(5)
				rounds[w].Add(1)
				if post {
					after[w].Add(1)
				}
			}
		})
	}
	stopTraffic := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopTraffic()
	// await polls cond until it holds; it fails the test when a traffic
	// worker fails meanwhile or the test's context ends.
	await := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case err := <-failed:
				t.Fatalf("traffic failed while waiting until %s: %v", what, err)
			case <-ctx.Done():
				t.Fatalf("timed out waiting until %s", what)
			case <-tick.C:
			}
		}
	}
	await("every node serves traffic", func() bool {
		return rounds[0].Load() > 0 && rounds[1].Load() > 0 && rounds[2].Load() > 0
	})

	params := &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateMasterKey{RotateMasterKey: &pb.RotateMasterKeyParams{MasterKcv: set.MasterKCV.String()}}}
	for _, comp := range set.Components {
		params.GetRotateMasterKey().ComponentKcvs = append(params.GetRotateMasterKey().ComponentKcvs, comp.KCV().String())
	}
	p, err := c.Ceremonies(t, 1).Propose(ctx, &pb.ProposeRequest{Params: params})
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	id := p.GetCeremony().GetId()
	if _, err := cs[0].Approve(ctx, t, c.ClientCeremonies(t, 0), id); err != nil {
		t.Fatal(err)
	}
	r, err := cs[2].Approve(ctx, t, c.ClientCeremonies(t, 2), id)
	if err != nil || r.GetExecuted() || r.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_PENDING {
		t.Fatalf("approved before n2 staged: %v %v", r, err)
	}
	st, err := c.Ceremonies(t, 2).GetMasterKeyStatus(ctx, &pb.GetMasterKeyStatusRequest{})
	if err != nil || st.GetCurrentKcv() != oldKCV.String() || len(st.GetNodes()) != 2 {
		t.Fatalf("master key status before: %v %v", st, err)
	}
	// The leader's sweep tries the ready ceremony and is refused because n2
	// has not staged the key: wait for two such attempts begun after the
	// quorum, then the ceremony must still be pending under the old key.
	refused := sweeps.refusals(id)
	await("the sweep tries the rotation twice", func() bool { return sweeps.refusals(id) >= refused+2 })
	if missing := sweeps.lastMissing(id); missing != "["+c.Nodes[2].ID+"]" {
		t.Fatalf("the sweep found the key missing on %s, want only %s", missing, c.Nodes[2].ID)
	}
	g, err := c.Ceremonies(t, 0).GetCeremony(ctx, &pb.GetCeremonyRequest{Id: id})
	if err != nil || g.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_PENDING {
		t.Fatalf("rotation carried out before every node staged: %v %v", g.GetCeremony(), err)
	}
	for _, nd := range c.Nodes {
		if k, _ := nd.HSM.MasterKeyKCV(); k != oldKCV {
			t.Fatalf("%s switched its master key before every node staged", nd.ID)
		}
	}
	if _, err := c.Ceremonies(t, 2).StageMasterKey(ctx, stageReq()); err != nil {
		t.Fatalf("stage on n2: %v", err)
	}
	waitFor(t, "the sweep carries the rotation out", func() bool {
		g, err := c.Ceremonies(t, 0).GetCeremony(ctx, &pb.GetCeremonyRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if s := g.GetCeremony().GetStatus(); s != pb.CeremonyStatus_CEREMONY_STATUS_PENDING && s != pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED {
			t.Fatalf("rotation ended %v: %s", s, g.GetCeremony().GetOutcome())
		}
		return g.GetCeremony().GetStatus() == pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED
	})
	for _, nd := range c.Nodes {
		waitFor(t, nd.ID+" switches its master key", func() bool {
			k, _ := nd.HSM.MasterKeyKCV()
			if k != set.MasterKCV {
				return false
			}
			for _, info := range nd.HSM.Keys() {
				if info.MasterKCV != set.MasterKCV {
					return false
				}
			}
			return true
		})
	}
	// Traffic after the switch too: every node serves rounds begun after
	// all nodes switched.
	switched.Store(true)
	const roundsAfter = 10
	await(fmt.Sprintf("every node serves %d rounds after the switch", roundsAfter), func() bool {
		return after[0].Load() >= roundsAfter && after[1].Load() >= roundsAfter && after[2].Load() >= roundsAfter
	})
	stopTraffic()
	close(failed)
	if err := <-failed; err != nil {
		t.Fatalf("traffic during the rotation: %v", err)
	}
	t.Logf("%d calls during the rotation, %d sweep refusals", calls.Load(), sweeps.refusals(id))

	list, err := c.Admin(t, 1).ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list.GetKeys() {
		for _, v := range k.GetVersions() {
			if v.GetMasterKeyKcv() != set.MasterKCV.String() {
				t.Fatalf("%s v%d wrapped under %s", k.GetName(), v.GetVersion(), v.GetMasterKeyKcv())
			}
		}
	}
	if st, err := c.Ceremonies(t, 0).GetMasterKeyStatus(ctx, &pb.GetMasterKeyStatusRequest{}); err != nil || st.GetCurrentKcv() != set.MasterKCV.String() {
		t.Fatalf("master key status after: %v %v", st, err)
	}

	// A key rotated now is wrapped under the new master key; a restarted
	// node loads everything with it.
	runCeremony(ctx, t, c, 0, rotate(vault.DevKeyPAN), cs[1], cs[2])
	c.StopNode(t, 1)
	c.RestartNode(t, 1)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for tk, pan := range pans {
		var d *pb.DetokenizeResponse
		for {
			d, err = c.Tokens(t, 1).Detokenize(rctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: tk})
			if codeOf(err) != codes.Unavailable {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || d.GetPan() != pan {
			t.Fatalf("restarted node: detokenize: %v", err)
		}
	}
	if k, _ := c.Nodes[1].HSM.MasterKeyKCV(); k != set.MasterKCV {
		t.Fatalf("restarted node uses master key %s", k)
	}
	pan := testPAN(t, "530000", 16, 1)
	tr, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil || tr.GetKeyVersion() != 2 {
		t.Fatalf("tokenize on the restarted node: %v %v", tr, err)
	}
	info, err := c.Nodes[1].HSM.KeyInfo(keys.KeyRef{ID: vault.DevKeyPAN, Version: 2})
	if err != nil || info.MasterKCV != set.MasterKCV {
		t.Fatalf("new version on the restarted node: %v %v", info, err)
	}
}

// trafficRound tokenizes and detokenizes pan with the vaulted and the FF1
// dev schemes and signs a message: five requests. Like a real client, it
// retries UNAVAILABLE (a leadership change on a starved machine), the
// tokenization with the same request id; any other failure, or UNAVAILABLE
// that persists, fails the round.
func trafficRound(ctx context.Context, cl pb.TokenServiceClient, sg pb.SigningServiceClient, pan string) error {
	for _, sch := range []string{vault.DevSchemeVaulted, vault.DevSchemeFF1} {
		var r *pb.TokenizeResponse
		err := retryUnavailable(ctx, func() (err error) {
			r, err = cl.Tokenize(ctx, &pb.TokenizeRequest{Scheme: sch, Pan: pan, RequestId: "mk-" + sch + "-" + pan[len(pan)-8:]})
			return err
		})
		if err != nil {
			return fmt.Errorf("tokenize %s: %w", sch, err)
		}
		var d *pb.DetokenizeResponse
		err = retryUnavailable(ctx, func() (err error) {
			d, err = cl.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: sch, Token: r.GetToken()})
			return err
		})
		if err != nil {
			return fmt.Errorf("detokenize %s: %w", sch, err)
		}
		if d.GetPan() != pan {
			return fmt.Errorf("detokenize %s: another pan than tokenized", sch)
		}
	}
	err := retryUnavailable(ctx, func() error {
		_, err := sg.Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")})
		return err
	})
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return nil
}

// retryUnavailable calls fn until it returns anything but UNAVAILABLE, at
// most 20 times.
func retryUnavailable(ctx context.Context, fn func() error) error {
	var err error
	for range 20 {
		if err = fn(); codeOf(err) != codes.Unavailable {
			return err
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
	return err
}

// sweepRecorder is a slog.Handler that counts, per ceremony, the leader
// sweep's attempts refused because a node has not staged the new master
// key (the sweep's "ceremony not carried out yet" record with an error
// wrapping vault.ErrMasterKeyNotStaged), and keeps which nodes the last
// one named. Other records go to stderr when vaulttest.LogEnv asks. Safe
// for concurrent use.
type sweepRecorder struct {
	mu      *sync.Mutex
	counts  map[string]int
	missing map[string]string
	next    slog.Handler
}

func newSweepRecorder() *sweepRecorder {
	var next slog.Handler = slog.DiscardHandler
	var level slog.Level
	if env := os.Getenv(vaulttest.LogEnv); env != "" && level.UnmarshalText([]byte(env)) == nil {
		next = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	}
	return &sweepRecorder{mu: &sync.Mutex{}, counts: map[string]int{}, missing: map[string]string{}, next: next}
}

func (h *sweepRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *sweepRecorder) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "ceremony not carried out yet" {
		var id string
		var err error
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "ceremony":
				id = a.Value.String()
			case "err":
				err, _ = a.Value.Any().(error)
			}
			return true
		})
		if errors.Is(err, vault.ErrMasterKeyNotStaged) {
			h.mu.Lock()
			h.counts[id]++
			if _, list, ok := strings.Cut(err.Error(), " missing on "); ok {
				h.missing[id] = list
			}
			h.mu.Unlock()
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *sweepRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	return &c
}

func (h *sweepRecorder) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

// refusals returns how many sweep attempts of ceremony id were refused so far.
func (h *sweepRecorder) refusals(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[id]
}

// lastMissing returns the node list the last refusal of id named.
func (h *sweepRecorder) lastMissing(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.missing[id]
}
