package vault_test

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestTokenize covers the token flows on one shared 3-node cluster.
func TestTokenize(t *testing.T) {
	c := devCluster(t)
	t.Run("VaultedEveryNode", func(t *testing.T) { testVaultedEveryNode(t, c) })
	t.Run("Deterministic", func(t *testing.T) { testDeterministic(t, c) })
	t.Run("DeterministicConcurrent", func(t *testing.T) { testDeterministicConcurrent(t, c) })
	t.Run("FF1EveryNode", func(t *testing.T) { testFF1EveryNode(t, c) })
	t.Run("FF1Coalesced", func(t *testing.T) { testFF1Coalesced(t, c) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, c) })
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, c) })
	t.Run("ConcurrentHistory", func(t *testing.T) { testConcurrentHistory(t, c) })
}

// checkVaultedToken checks the shape of a token of the dev "pan" schemes.
func checkVaultedToken(t *testing.T, pan, tok string) {
	t.Helper()
	if len(tok) != len(pan) || tok[:6] != pan[:6] || tok[len(tok)-4:] != pan[len(pan)-4:] {
		t.Fatalf("token %s does not keep 6+4 of %s", masked(tok), masked(pan))
	}
	if tok == pan {
		t.Fatalf("token equals its pan (%s)", masked(pan))
	}
	if card.Luhn(tok) {
		t.Fatalf("token %s passes luhn under luhn rule fail", masked(tok))
	}
}

func testVaultedEveryNode(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	leader, follower := c.LeaderIndex(t), c.FollowerIndex(t)
	for k, from := range []int{leader, follower} {
		pan := testPAN(t, "411111", 16, 1000+k)
		r, err := c.Tokens(t, from).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
		if err != nil {
			t.Fatalf("tokenize on node %d: %v", from, err)
		}
		checkVaultedToken(t, pan, r.GetToken())
		if !r.GetCreated() || r.GetKeyVersion() != 1 || r.GetBrand() != pb.CardBrand_CARD_BRAND_VISA ||
			r.GetMaskedPan() != masked(pan) || r.GetScheme() != vault.DevSchemeVaulted || r.GetExpireTime() != nil {
			t.Fatalf("tokenize reply: created=%v version=%d brand=%v masked=%s scheme=%s expire=%v",
				r.GetCreated(), r.GetKeyVersion(), r.GetBrand(), r.GetMaskedPan(), r.GetScheme(), r.GetExpireTime())
		}
		for i := range c.Nodes {
			for _, cons := range []pb.Consistency{pb.Consistency_CONSISTENCY_UNSPECIFIED, pb.Consistency_CONSISTENCY_STALE} {
				d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken(), Consistency: cons})
				if err != nil {
					t.Fatalf("detokenize on node %d (%v): %v", i, cons, err)
				}
				if d.GetPan() != pan || d.GetMaskedPan() != masked(pan) || d.GetKeyVersion() != 1 || d.GetBrand() != pb.CardBrand_CARD_BRAND_VISA {
					t.Fatalf("detokenize on node %d: wrong reply (masked %s)", i, d.GetMaskedPan())
				}
			}
			d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken(), Masked: true})
			if err != nil {
				t.Fatalf("masked detokenize on node %d: %v", i, err)
			}
			if d.GetPan() != "" || d.GetMaskedPan() != masked(pan) {
				t.Fatalf("masked detokenize returned a clear pan or a wrong mask")
			}
		}
	}
	// Two tokenizations of one PAN under a random scheme differ.
	pan := testPAN(t, "555555", 16, 7)
	a, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	if a.GetToken() == b.GetToken() {
		t.Fatalf("random scheme returned the same token twice")
	}
}

func testDeterministic(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	pan := testPAN(t, "520000", 16, 42)
	other := testPAN(t, "520000", 16, 43)
	var first string
	for i := range c.Nodes {
		r, err := c.Tokens(t, i).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan})
		if err != nil {
			t.Fatalf("tokenize on node %d: %v", i, err)
		}
		checkVaultedToken(t, pan, r.GetToken())
		if i == 0 {
			first = r.GetToken()
			if !r.GetCreated() {
				t.Fatalf("first tokenization not created")
			}
			continue
		}
		if r.GetToken() != first || r.GetCreated() {
			t.Fatalf("node %d: token %s created=%v, want %s created=false", i, masked(r.GetToken()), r.GetCreated(), masked(first))
		}
	}
	r, err := c.Tokens(t, 2).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: other})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetToken() == first {
		t.Fatalf("two pans share a deterministic token")
	}
	// The random scheme with the same key is a different scheme: new token.
	v, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	if v.GetToken() == first {
		t.Fatalf("deterministic token reused by another scheme")
	}
	// A deterministic token detokenizes like any other, on every node.
	for i := range c.Nodes {
		d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeDeterministic, Token: first})
		if err != nil || d.GetPan() != pan {
			t.Fatalf("detokenize on node %d: err %v, masked %s", i, err, d.GetMaskedPan())
		}
	}
}

// testDeterministicConcurrent tokenizes one new PAN from every node at once
// (also twice in one batch): all answers name one token, exactly one of
// them created it.
func testDeterministicConcurrent(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	pan := testPAN(t, "400000", 16, 77)
	const per = 4
	tokens := make([]string, len(c.Nodes)*per)
	created := make([]bool, len(tokens))
	var g errgroup.Group
	for i := range c.Nodes {
		for k := range per {
			g.Go(func() error {
				r, err := c.Tokens(t, i).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan})
				if err != nil {
					return fmt.Errorf("node %d: %w", i, err)
				}
				tokens[i*per+k], created[i*per+k] = r.GetToken(), r.GetCreated()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, tok := range tokens {
		if tok != tokens[0] {
			t.Fatalf("answer %d names another token", i)
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d answers say created, want 1", n)
	}
	// The same new PAN twice in one batch.
	pan2 := testPAN(t, "400000", 16, 78)
	br, err := c.Tokens(t, 1).TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeDeterministic,
		Items: []*pb.TokenizeBatchItem{{Pan: pan2}, {Pan: pan2}}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := br.GetResults()[0].GetSuccess(), br.GetResults()[1].GetSuccess()
	if a == nil || b == nil || a.GetToken() != b.GetToken() || a.GetCreated() == b.GetCreated() {
		t.Fatalf("same pan twice in a batch: %v / %v", br.GetResults()[0], br.GetResults()[1])
	}
}

func testFF1EveryNode(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	pans := []string{
		testPAN(t, "4", 13, 5), testPAN(t, "411111", 16, 11), testPAN(t, "378282", 15, 3),
		testPAN(t, "36", 14, 9), testPAN(t, "6011", 16, 1), testPAN(t, "3528", 19, 4), testPAN(t, "6200", 17, 2),
	}
	for k, pan := range pans {
		var first string
		for i := range c.Nodes {
			r, err := c.Tokens(t, i).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeFF1, Pan: pan})
			if err != nil {
				t.Fatalf("pan #%d tokenize on node %d: %v", k, i, err)
			}
			tok := r.GetToken()
			if len(tok) != len(pan) || tok[:6] != pan[:6] || card.Luhn(tok) || tok == pan || r.GetCreated() {
				t.Fatalf("pan #%d: bad ff1 token %s (created %v)", k, masked(tok), r.GetCreated())
			}
			if i == 0 {
				first = tok
			} else if tok != first {
				t.Fatalf("pan #%d: node %d made another ff1 token", k, i)
			}
		}
		for i := range c.Nodes {
			d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeFF1, Token: first})
			if err != nil || d.GetPan() != pan {
				t.Fatalf("pan #%d detokenize on node %d: %v", k, i, err)
			}
		}
	}
	// Deleting an FF1 token is meaningless.
	_, err := c.Tokens(t, 0).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeFF1, Token: "4111111111111112"})
	wantCode(t, err, codes.FailedPrecondition, "delete ff1 token")
}

// testFF1Coalesced sends many concurrent single FF1 calls to one node:
// every answer is right and every call went through the coalescers (how
// many share a batch depends on timing; coalescer_internal_test.go checks
// the gathering deterministically).
func testFF1Coalesced(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	node := c.Nodes[2]
	b0, i0 := vault.FF1Coalesced(node.Vault)
	const workers, each = 16, 25
	cl := c.Tokens(t, 2) // built here: it may call t.Fatal
	pans := make([][]string, workers)
	for w := range workers {
		for k := range each {
			pans[w] = append(pans[w], testPAN(t, "5", 16, w*1000+k))
		}
	}
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for k := range each {
				pan := pans[w][k]
				r, err := cl.Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeFF1, Pan: pan})
				if err != nil {
					return err
				}
				d, err := cl.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeFF1, Token: r.GetToken()})
				if err != nil {
					return err
				}
				if d.GetPan() != pan {
					return fmt.Errorf("worker %d item %d: round trip gave another pan", w, k)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	b1, i1 := vault.FF1Coalesced(node.Vault)
	batches, items := b1-b0, i1-i0
	if items != 2*workers*each {
		t.Fatalf("coalescers carried %d calls, want %d", items, 2*workers*each)
	}
	// Every batch carries at least one call, and one batch holds at most
	// the concurrent callers, so at least items/workers batches ran.
	if batches == 0 || batches < items/uint64(workers) {
		t.Fatalf("%d batches for %d calls from %d concurrent callers", batches, items, workers)
	}
	t.Logf("%d single ff1 calls in %d hsm batches", items, batches)
}

func testBatch(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	good := []string{testPAN(t, "411111", 16, 501), testPAN(t, "222100", 16, 502), testPAN(t, "340000", 15, 503)}
	bad := map[int]string{
		1: "4111111111111112", // luhn
		3: "41111111111a1111", // letters
		5: "",                 // empty
	}
	for _, sch := range []string{vault.DevSchemeVaulted, vault.DevSchemeDeterministic, vault.DevSchemeFF1} {
		var items []*pb.TokenizeBatchItem
		var pans []string
		g := 0
		for i := 0; i < len(good)+len(bad); i++ {
			p, isBad := bad[i]
			if !isBad {
				p = good[g]
				g++
			}
			pans = append(pans, p)
			items = append(items, &pb.TokenizeBatchItem{Pan: p})
		}
		r, err := c.Tokens(t, 1).TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: sch, Items: items})
		if err != nil {
			t.Fatalf("%s: batch: %v", sch, err)
		}
		if len(r.GetResults()) != len(items) {
			t.Fatalf("%s: %d results for %d items", sch, len(r.GetResults()), len(items))
		}
		var tokens []*pb.DetokenizeBatchItem
		var want []string
		for i, res := range r.GetResults() {
			if res.GetIndex() != uint32(i) {
				t.Fatalf("%s: result %d has index %d", sch, i, res.GetIndex())
			}
			if _, isBad := bad[i]; isBad {
				ie := res.GetError()
				if ie == nil {
					t.Fatalf("%s: bad item %d succeeded", sch, i)
				}
				if codes.Code(ie.GetCode()) != codes.InvalidArgument || len(ie.GetFieldViolations()) != 1 ||
					ie.GetFieldViolations()[0].GetField() != fmt.Sprintf("items[%d].pan", i) || ie.GetReason() == "" {
					t.Fatalf("%s: item %d error: code %d reason %q violations %v", sch, i, ie.GetCode(), ie.GetReason(), ie.GetFieldViolations())
				}
				noSecret(t, "item error", ie.String(), pans...)
				continue
			}
			s := res.GetSuccess()
			if s == nil {
				t.Fatalf("%s: good item %d failed: %v", sch, i, res.GetError())
			}
			tokens = append(tokens, &pb.DetokenizeBatchItem{Token: s.GetToken()})
			want = append(want, pans[i])
		}
		// Detokenize the tokens in a batch on another node, with one
		// unknown token and one malformed one.
		unknown := unknownToken(t, 77)
		if sch == vault.DevSchemeFF1 {
			unknown = nonCanonicalFF1(t, tokens[0].GetToken())
		}
		tokens = append(tokens, &pb.DetokenizeBatchItem{Token: unknown}, &pb.DetokenizeBatchItem{Token: "12ab"})
		d, err := c.Tokens(t, 2).DetokenizeBatch(ctx, &pb.DetokenizeBatchRequest{Scheme: sch, Items: tokens})
		if err != nil {
			t.Fatalf("%s: detokenize batch: %v", sch, err)
		}
		for i, w := range want {
			if d.GetResults()[i].GetSuccess().GetPan() != w {
				t.Fatalf("%s: detokenize item %d: %v", sch, i, d.GetResults()[i].GetError())
			}
		}
		if ie := d.GetResults()[len(want)].GetError(); codes.Code(ie.GetCode()) != codes.NotFound {
			t.Fatalf("%s: unknown token item: %v", sch, ie)
		}
		malformed := d.GetResults()[len(want)+1].GetError()
		if codes.Code(malformed.GetCode()) != codes.InvalidArgument || len(malformed.GetFieldViolations()) == 0 ||
			malformed.GetFieldViolations()[0].GetField() != fmt.Sprintf("items[%d].token", len(want)+1) {
			t.Fatalf("%s: malformed token item: %v", sch, malformed)
		}
	}
	// A request id may not repeat within a batch.
	r, err := c.Tokens(t, 0).TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted, Items: []*pb.TokenizeBatchItem{
		{Pan: good[0], RequestId: "dup-1"}, {Pan: good[1], RequestId: "dup-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetResults()[0].GetSuccess() == nil || codes.Code(r.GetResults()[1].GetError().GetCode()) != codes.InvalidArgument ||
		r.GetResults()[1].GetError().GetFieldViolations()[0].GetField() != "items[1].request_id" {
		t.Fatalf("duplicate request id in batch: %v", r.GetResults())
	}
	// A 100-PAN vaulted batch.
	var items []*pb.TokenizeBatchItem
	for k := range 100 {
		items = append(items, &pb.TokenizeBatchItem{Pan: testPAN(t, "601100", 16, 9000+k)})
	}
	r, err = c.Tokens(t, 1).TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range r.GetResults() {
		if res.GetSuccess() == nil {
			t.Fatalf("item %d of 100: %v", i, res.GetError())
		}
	}
}

func testIdempotent(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	pan := testPAN(t, "450000", 16, 12)
	req := &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan, RequestId: "req-0001"}
	first, err := c.Tokens(t, c.FollowerIndex(t)).Tokenize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		again, err := c.Tokens(t, i).Tokenize(ctx, req)
		if err != nil {
			t.Fatalf("retry on node %d: %v", i, err)
		}
		if again.GetToken() != first.GetToken() || !again.GetCreated() {
			t.Fatalf("retry on node %d: another result (created %v)", i, again.GetCreated())
		}
	}
	// Same request id, another PAN: refused.
	_, err = c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: testPAN(t, "450000", 16, 13), RequestId: "req-0001"})
	wantCode(t, err, codes.AlreadyExists, "request id reused for another pan")
	// The id is scoped by identity: the admin identity gets its own token.
	admin := pb.NewTokenServiceClient(c.AdminConn(t, 0))
	other, err := admin.Tokenize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if other.GetToken() == first.GetToken() {
		t.Fatalf("request id not scoped by identity")
	}
	// ... and by scheme.
	det, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan, RequestId: "req-0001"})
	if err != nil || det.GetToken() == first.GetToken() {
		t.Fatalf("request id not scoped by scheme: %v", err)
	}

	// After a leader change the retry still returns the first result.
	old := c.LeaderIndex(t)
	target := c.Nodes[(old+1)%len(c.Nodes)].ID
	tr, err := c.ClusterAdmin(t, old).TransferLeadership(ctx, &pb.TransferLeadershipRequest{TargetNodeId: target})
	if err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	if tr.GetLeaderId() == c.Nodes[old].ID {
		t.Fatalf("leadership stayed on %s", tr.GetLeaderId())
	}
	for i := range c.Nodes {
		again, err := c.Tokens(t, i).Tokenize(ctx, req)
		if err != nil {
			t.Fatalf("retry after leader change on node %d: %v", i, err)
		}
		if again.GetToken() != first.GetToken() {
			t.Fatalf("retry after leader change on node %d: another token", i)
		}
	}
	// Bad request ids.
	for _, id := range []string{"has space", string(make([]byte, 129))} {
		_, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan, RequestId: id})
		wantCode(t, err, codes.InvalidArgument, "bad request id")
		if v := violations(err); len(v) != 1 || v[0].GetField() != "request_id" {
			t.Fatalf("bad request id violations: %v", v)
		}
	}
}

// testConcurrentHistory tokenizes from every node concurrently, then
// checks that every acknowledged token detokenizes to its PAN everywhere.
func testConcurrentHistory(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	const workers, each = 9, 20
	type rec struct{ pan, token string }
	var mu sync.Mutex
	var history []rec
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			node := w % len(c.Nodes)
			for k := range each {
				pan := testPAN(t, "371449", 15, w*100+k)
				r, err := c.Tokens(t, node).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
				if err != nil {
					return fmt.Errorf("worker %d: %w", w, err)
				}
				mu.Lock()
				history = append(history, rec{pan, r.GetToken()})
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for i := range c.Nodes {
		items := make([]*pb.DetokenizeBatchItem, len(history))
		for k, h := range history {
			items[k] = &pb.DetokenizeBatchItem{Token: h.token}
			if i == 0 {
				if seen[h.token] {
					t.Fatalf("token issued twice")
				}
				seen[h.token] = true
			}
		}
		d, err := c.Tokens(t, i).DetokenizeBatch(ctx, &pb.DetokenizeBatchRequest{Scheme: vault.DevSchemeVaulted, Items: items})
		if err != nil {
			t.Fatal(err)
		}
		for k, h := range history {
			if d.GetResults()[k].GetSuccess().GetPan() != h.pan {
				t.Fatalf("node %d: token %d does not detokenize to its pan: %v", i, k, d.GetResults()[k].GetError())
			}
		}
	}
}

// nonCanonicalFF1 returns tok (a token of the dev FF1 scheme: BIN kept,
// Luhn fail, so the check position is the last digit) with another failing
// digit there. FF1 under
// Luhn fail accepts one failing digit per token, so this string is no
// token of the scheme.
func nonCanonicalFF1(t *testing.T, tok string) string {
	t.Helper()
	pos := len(tok) - 1
	for d := byte('0'); d <= '9'; d++ {
		b := []byte(tok)
		if b[pos] == d {
			continue
		}
		b[pos] = d
		if !card.Luhn(b) {
			return string(b)
		}
	}
	t.Fatalf("no other failing digit")
	return ""
}
