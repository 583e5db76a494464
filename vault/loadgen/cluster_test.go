package loadgen_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/panvault/panvault/vault/loadgen"
	"github.com/panvault/panvault/vault/vaulttest"
)

// countingConn counts calls at the connection, independently of Run.
type countingConn struct {
	grpc.ClientConnInterface
	ok       atomic.Int64
	notFound atomic.Int64
	other    atomic.Int64
}

func (c *countingConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	err := c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
	switch status.Code(err) {
	case codes.OK:
		c.ok.Add(1)
	case codes.NotFound:
		c.notFound.Add(1)
	default:
		c.other.Add(1)
	}
	return err
}

type counted []*countingConn

func (cs counted) conns() []grpc.ClientConnInterface {
	out := make([]grpc.ClientConnInterface, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

func (cs counted) sum() (ok, notFound, other int64) {
	for _, c := range cs {
		ok += c.ok.Load()
		notFound += c.notFound.Load()
		other += c.other.Load()
	}
	return
}

// checkLatency asserts the report's percentiles are ordered and plausible.
func checkLatency(t *testing.T, r *loadgen.Report) {
	t.Helper()
	l := r.Latency
	if uint64(l.Count) != r.Ops {
		t.Errorf("latency count %d != ops %d", l.Count, r.Ops)
	}
	if !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles not ordered: %+v", l)
	}
	if l.Max > 10*time.Second {
		t.Errorf("max latency %v above the call timeout", l.Max)
	}
}

// TestRunAgainstCluster drives every workload briefly against an in-process
// 3-node cluster and checks the reports against counts taken independently at
// the connections. Nothing is timed as pass/fail.
func TestRunAgainstCluster(t *testing.T) {
	c := vaulttest.StartCluster(t, 3)
	c.Setup(t)
	newConns := func() counted {
		cs := make(counted, len(c.Nodes))
		for i := range c.Nodes {
			cs[i] = &countingConn{ClientConnInterface: c.ClientConn(t, i)}
		}
		return cs
	}
	ctx := context.Background()

	t.Run("tokenize", func(t *testing.T) {
		cs := newConns()
		r, err := loadgen.Run(ctx, loadgen.Options{Op: loadgen.OpTokenize, Concurrency: 4, Duration: 2 * time.Second}, cs.conns())
		if err != nil {
			t.Fatal(err)
		}
		ok, nf, other := cs.sum()
		if r.Failed != 0 || nf+other != 0 || len(r.Errors) != 0 {
			t.Errorf("errors: report %v, connections %d+%d", r.Errors, nf, other)
		}
		if ok == 0 || r.Ops != uint64(ok) || r.Items != r.Ops {
			t.Errorf("report ops %d items %d, connections counted %d successful calls", r.Ops, r.Items, ok)
		}
		if r.Elapsed < 2*time.Second || r.OpsPerSec <= 0 || r.Targets != 3 || r.Scheme != "pan" {
			t.Errorf("report header %+v", r)
		}
		checkLatency(t, r)
	})

	t.Run("warmup excluded", func(t *testing.T) {
		cs := newConns()
		r, err := loadgen.Run(ctx, loadgen.Options{Op: loadgen.OpTokenizeFF1, Concurrency: 2,
			Warmup: 500 * time.Millisecond, Duration: time.Second}, cs.conns())
		if err != nil {
			t.Fatal(err)
		}
		ok, nf, other := cs.sum()
		if r.Failed != 0 || nf+other != 0 {
			t.Errorf("errors: report %v, connections %d+%d", r.Errors, nf, other)
		}
		// Warmup calls reached the server but are not in the report.
		if r.Ops == 0 || r.Ops >= uint64(ok) {
			t.Errorf("report ops %d, connections %d: warmup calls should be excluded", r.Ops, ok)
		}
		if r.Scheme != "pan-ff1" {
			t.Errorf("scheme %q", r.Scheme)
		}
		checkLatency(t, r)
	})

	t.Run("tokenize-batch", func(t *testing.T) {
		cs := newConns()
		r, err := loadgen.Run(ctx, loadgen.Options{Op: loadgen.OpTokenizeBatch, Concurrency: 2, Batch: 25, Duration: time.Second}, cs.conns())
		if err != nil {
			t.Fatal(err)
		}
		ok, _, _ := cs.sum()
		if r.Ops == 0 || r.Ops != uint64(ok) || r.Items != 25*r.Ops || r.FailedItems != 0 {
			t.Errorf("ops %d items %d failed items %v; connections %d", r.Ops, r.Items, r.ItemErrors, ok)
		}
		checkLatency(t, r)
	})

	t.Run("detokenize", func(t *testing.T) {
		cs := newConns()
		r, err := loadgen.Run(ctx, loadgen.Options{Op: loadgen.OpDetokenize, Concurrency: 3, PoolSize: 150, Duration: time.Second}, cs.conns())
		if err != nil {
			t.Fatal(err)
		}
		ok, nf, other := cs.sum()
		// Setup made 2 TokenizeBatch calls (150 tokens, 100 per call).
		if r.Ops == 0 || r.Ops+2 != uint64(ok) || r.Mismatches != 0 || nf+other != 0 {
			t.Errorf("ops %d mismatches %d; connections ok %d (2 setup calls), errors %d+%d", r.Ops, r.Mismatches, ok, nf, other)
		}
		checkLatency(t, r)
	})

	t.Run("sign", func(t *testing.T) {
		cs := newConns()
		r, err := loadgen.Run(ctx, loadgen.Options{Op: loadgen.OpSign, Concurrency: 2, Duration: time.Second}, cs.conns())
		if err != nil {
			t.Fatal(err)
		}
		ok, _, _ := cs.sum()
		if r.Ops == 0 || r.Ops != uint64(ok) || r.Failed != 0 || r.Key != "payments-p256" {
			t.Errorf("ops %d failed %v key %q; connections %d", r.Ops, r.Errors, r.Key, ok)
		}
		checkLatency(t, r)
	})

	t.Run("errors counted by code", func(t *testing.T) {
		cs := newConns()
		r, err := loadgen.Run(ctx, loadgen.Options{Op: loadgen.OpTokenize, Scheme: "no-such-scheme", Concurrency: 2, Duration: 500 * time.Millisecond}, cs.conns())
		if err != nil {
			t.Fatal(err)
		}
		_, nf, _ := cs.sum()
		if r.Ops != 0 || nf == 0 || r.Failed != uint64(nf) || r.Errors["NotFound"] != uint64(nf) {
			t.Errorf("ops %d failed %d errors %v; connections counted %d NotFound", r.Ops, r.Failed, r.Errors, nf)
		}
	})

	t.Run("prefill", func(t *testing.T) {
		cs := newConns()
		res, err := loadgen.Prefill(ctx, cs.conns(), loadgen.PrefillOptions{Count: 250, Batch: 100, Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		ok, _, _ := cs.sum()
		if res.Stored != 250 || ok != 3 || res.Seed == 0 {
			t.Errorf("prefill %+v, %d calls", res, ok)
		}
	})

	t.Run("matrix", func(t *testing.T) {
		m := []loadgen.Workload{
			{ID: "a", Title: "sign", Nodes: 3, Metric: loadgen.MetricOpsPerSec,
				Options: loadgen.Options{Op: loadgen.OpSign, Concurrency: 2, Duration: 300 * time.Millisecond}},
			{ID: "b", Title: "tokenize after prefill", Nodes: 3, Prefill: 120, Metric: loadgen.MetricOpsPerSec,
				Options: loadgen.Options{Op: loadgen.OpTokenize, Concurrency: 2, Duration: 300 * time.Millisecond}},
		}
		var cs []counted
		var befores []string
		res := loadgen.RunMatrix(ctx, m, loadgen.MatrixOptions{
			Connect: func(context.Context, loadgen.Workload) ([]grpc.ClientConnInterface, func() error, error) {
				cs = append(cs, newConns())
				return cs[len(cs)-1].conns(), nil, nil
			},
			Before: func(_ context.Context, w loadgen.Workload) error {
				befores = append(befores, w.ID)
				return nil
			},
			Extra: func(_ context.Context, w loadgen.Workload, r *loadgen.Report) (map[loadgen.Metric]float64, error) {
				if r == nil || r.Items == 0 {
					return nil, fmt.Errorf("workload %s: extra metrics without a report", w.ID)
				}
				return map[loadgen.Metric]float64{loadgen.MetricMaxRSS: 1}, nil
			},
			PrefillBatch: 50,
		})
		if len(res) != 2 || len(cs) != 2 || fmt.Sprint(befores) != "[a b]" {
			t.Fatalf("%d results, %d connects", len(res), len(cs))
		}
		for i, r := range res {
			if r.Err != nil || r.Report == nil || r.Report.Ops == 0 || r.Extra[loadgen.MetricMaxRSS] != 1 {
				t.Fatalf("workload %s: %+v", m[i].ID, r)
			}
		}
		// The prefill's 3 batch calls (120 PANs, 50 per call) went through
		// the same connections before the measured calls.
		ok, _, _ := cs[1].sum()
		if uint64(ok) != res[1].Report.Ops+3 {
			t.Errorf("connections counted %d calls, report %d + 3 prefill calls", ok, res[1].Report.Ops)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
		defer cancel()
		r, err := loadgen.Run(cctx, loadgen.Options{Op: loadgen.OpTokenize, Concurrency: 2, Duration: time.Minute}, newConns().conns())
		if !errors.Is(err, context.DeadlineExceeded) || r == nil || !r.Interrupted {
			t.Fatalf("err %v report %v, want the partial report and the context's error", err, r)
		}
		if r.Ops == 0 || r.Failed != 0 || r.Elapsed > 5*time.Second {
			t.Errorf("partial report ops %d failed %v elapsed %v", r.Ops, r.Errors, r.Elapsed)
		}
	})
}

func TestRunRefusesBadOptions(t *testing.T) {
	conns := []grpc.ClientConnInterface{nil}
	for name, o := range map[string]loadgen.Options{
		"unknown op":  {Op: "nope"},
		"batch":       {Op: loadgen.OpTokenizeBatch, Batch: loadgen.MaxBatch + 1},
		"neg batch":   {Op: loadgen.OpTokenizeBatch, Batch: -1},
		"concurrency": {Op: loadgen.OpTokenize, Concurrency: -1},
		"duration":    {Op: loadgen.OpTokenize, Duration: -time.Second},
	} {
		if _, err := loadgen.Run(context.Background(), o, conns); !errors.Is(err, loadgen.ErrInvalidOptions) {
			t.Errorf("%s: err %v, want ErrInvalidOptions", name, err)
		}
	}
	if _, err := loadgen.Run(context.Background(), loadgen.Options{Op: loadgen.OpSign}, nil); !errors.Is(err, loadgen.ErrNoTargets) {
		t.Errorf("no connections: err %v, want ErrNoTargets", err)
	}
	if _, err := loadgen.Prefill(context.Background(), nil, loadgen.PrefillOptions{Count: 1}); !errors.Is(err, loadgen.ErrNoTargets) {
		t.Errorf("prefill without connections: err %v", err)
	}
}
