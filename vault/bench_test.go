package vault_test

import (
	"sync/atomic"
	"testing"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// Benchmarks run against a 3-node in-process cluster (SoftHSM per node,
// raft over loopback mTLS, gRPC with mTLS), through node 0, with
// GOMAXPROCS parallel callers times -cpu. Each op is one RPC.
//
//	go test -run '^$' -bench . -benchtime 2s ./vault/

func benchPANs(b *testing.B, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = testPAN(b, "411111", 16, i)
	}
	return out
}

func BenchmarkTokenize(b *testing.B) {
	c := vaulttest.StartCluster(b, 3)
	c.Setup(b)
	ctx := ctxT(b)
	pans := benchPANs(b, 1024)
	for _, sch := range []string{vault.DevSchemeVaulted, vault.DevSchemeDeterministic, vault.DevSchemeFF1} {
		b.Run(sch, func(b *testing.B) {
			cl := c.Tokens(b, 0)
			var next atomic.Int64
			b0, i0 := vault.FF1Coalesced(c.Nodes[0].Vault)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb_ *testing.PB) {
				for pb_.Next() {
					pan := pans[next.Add(1)%int64(len(pans))]
					if _, err := cl.Tokenize(ctx, &pb.TokenizeRequest{Scheme: sch, Pan: pan}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if b1, i1 := vault.FF1Coalesced(c.Nodes[0].Vault); b1 > b0 {
				b.ReportMetric(float64(i1-i0)/float64(b1-b0), "calls/hsm-batch")
			}
		})
	}
}

func BenchmarkDetokenize(b *testing.B) {
	c := vaulttest.StartCluster(b, 3)
	c.Setup(b)
	ctx := ctxT(b)
	pans := benchPANs(b, 256)
	for _, tc := range []struct {
		name   string
		scheme string
		cons   pb.Consistency
	}{
		{"vaulted-linearizable", vault.DevSchemeVaulted, pb.Consistency_CONSISTENCY_LINEARIZABLE},
		{"vaulted-stale", vault.DevSchemeVaulted, pb.Consistency_CONSISTENCY_STALE},
		{"ff1", vault.DevSchemeFF1, pb.Consistency_CONSISTENCY_UNSPECIFIED},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var tokens []string
			for _, p := range pans {
				r, err := c.Tokens(b, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: tc.scheme, Pan: p})
				if err != nil {
					b.Fatal(err)
				}
				tokens = append(tokens, r.GetToken())
			}
			cl := c.Tokens(b, 1) // a follower, usually
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb_ *testing.PB) {
				for pb_.Next() {
					tok := tokens[next.Add(1)%int64(len(tokens))]
					if _, err := cl.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: tc.scheme, Token: tok, Consistency: tc.cons}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkTokenizeBatch100 reports per-batch time; items/s = 100 / (ns/op).
func BenchmarkTokenizeBatch100(b *testing.B) {
	c := vaulttest.StartCluster(b, 3)
	c.Setup(b)
	ctx := ctxT(b)
	pans := benchPANs(b, 100)
	items := make([]*pb.TokenizeBatchItem, len(pans))
	for i, p := range pans {
		items[i] = &pb.TokenizeBatchItem{Pan: p}
	}
	for _, sch := range []string{vault.DevSchemeVaulted, vault.DevSchemeFF1} {
		b.Run(sch, func(b *testing.B) {
			cl := c.Tokens(b, 0)
			b.SetParallelism(2)
			b.ResetTimer()
			b.RunParallel(func(pb_ *testing.PB) {
				for pb_.Next() {
					r, err := cl.TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: sch, Items: items})
					if err != nil {
						b.Error(err)
						return
					}
					if e := r.GetResults()[0].GetError(); e != nil {
						b.Error(e.GetMessage())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "items/s")
		})
	}
}
