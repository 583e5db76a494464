package devcluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/devcluster"
	"github.com/panvault/panvault/vault/devcluster/devclustertest"
)

// BenchmarkCluster measures batches of 100 PANs through a 3-node cluster of
// real processes over loopback mTLS, sent to a follower (so writes are
// forwarded to the leader, as most of a real cluster's traffic is). One
// operation is one batch; the items/s metric counts PANs.
func BenchmarkCluster(b *testing.B) {
	devclustertest.RequireSoftHSM(b)
	bin := devclustertest.BuildBinary(b)
	ctx := context.Background()
	c, err := devcluster.Start(ctx, devcluster.Options{Dir: filepath.Join(b.TempDir(), "c"), Nodes: 3, Binary: bin})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	leader, err := c.Leader(ctx)
	if err != nil {
		b.Fatal(err)
	}
	follower := (leader + 1) % 3
	cc, err := c.Dial(follower, devcluster.Client)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	tok := pb.NewTokenServiceClient(cc)
	const batch = 100
	pans := devclustertest.PANs(20000, 99)

	for _, scheme := range []string{devcluster.SchemePAN, devcluster.SchemePANDet, devcluster.SchemePANFF1} {
		var tokens []string
		b.Run("tokenize/"+scheme, func(b *testing.B) {
			tokens = tokens[:0]
			for i := 0; b.Loop(); i++ {
				req := &pb.TokenizeBatchRequest{Scheme: scheme}
				for j := range batch {
					req.Items = append(req.Items, &pb.TokenizeBatchItem{Pan: pans[(i*batch+j)%len(pans)],
						RequestId: fmt.Sprintf("bench-%d-%d-%d", time.Now().UnixNano(), i, j)})
				}
				resp, err := tok.TokenizeBatch(ctx, req, grpc.WaitForReady(true))
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range resp.GetResults() {
					if r.GetError() != nil {
						b.Fatalf("item error: %v", r.GetError())
					}
					if len(tokens) < 5000 {
						tokens = append(tokens, r.GetSuccess().GetToken())
					}
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "items/s")
		})
		b.Run("detokenize/"+scheme, func(b *testing.B) {
			if len(tokens) < batch {
				b.Skip("tokenize sub-benchmark did not run")
			}
			for i := 0; b.Loop(); i++ {
				req := &pb.DetokenizeBatchRequest{Scheme: scheme}
				for j := range batch {
					req.Items = append(req.Items, &pb.DetokenizeBatchItem{Token: tokens[(i*batch+j)%len(tokens)]})
				}
				resp, err := tok.DetokenizeBatch(ctx, req, grpc.WaitForReady(true))
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range resp.GetResults() {
					if r.GetError() != nil {
						b.Fatalf("item error: %v", r.GetError())
					}
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
