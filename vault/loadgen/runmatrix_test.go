package loadgen

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
)

func TestRunMatrixRecordsFailuresAndGoesOn(t *testing.T) {
	m := DefaultMatrix(MatrixTiming{Duration: time.Second})[:3]
	boom := errors.New("no cluster")
	var connects, releases int
	res := RunMatrix(context.Background(), m, MatrixOptions{
		Connect: func(ctx context.Context, w Workload) ([]grpc.ClientConnInterface, func() error, error) {
			connects++
			if w.ID == m[1].ID {
				return nil, nil, boom
			}
			// No connection: Run refuses at once, after Connect succeeded.
			return nil, func() error { releases++; return nil }, nil
		},
	})
	if len(res) != 3 || connects != 3 || releases != 2 {
		t.Fatalf("%d results, %d connects, %d releases", len(res), connects, releases)
	}
	if !errors.Is(res[1].Err, boom) {
		t.Errorf("connect failure: %v", res[1].Err)
	}
	for _, i := range []int{0, 2} {
		if !errors.Is(res[i].Err, ErrNoTargets) || res[i].Workload.ID != m[i].ID {
			t.Errorf("result %d: %v", i, res[i].Err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = RunMatrix(ctx, m, MatrixOptions{Connect: func(context.Context, Workload) ([]grpc.ClientConnInterface, func() error, error) {
		t.Error("connect after cancel")
		return nil, nil, nil
	}})
	for _, r := range res {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%s: %v, want canceled", r.Workload.ID, r.Err)
		}
	}
}

func TestProcessRSS(t *testing.T) {
	rss, err := ProcessRSS(os.Getpid())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no /proc")
	}
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary is at least a few MiB and far below 64 GiB.
	if rss < 1<<20 || rss > 64<<30 {
		t.Errorf("rss %d bytes", rss)
	}
	if _, err := ProcessRSS(-5); err == nil {
		t.Error("rss of a process that cannot exist")
	}
}
