package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// outcomeUnknown is the status a node returns for a write whose outcome it
// does not know.
func outcomeUnknown(t *testing.T) error {
	t.Helper()
	st, err := status.New(codes.Unavailable, "outcome unknown").WithDetails(&errdetails.ErrorInfo{Reason: reasonOutcomeUnknown, Domain: "panvault"})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// A write without an idempotency key that ends with OUTCOME_UNKNOWN is not
// sent again (it may have committed: a retry could duplicate it); one that
// carries a key is; a plain UNAVAILABLE is retried either way.
func TestCallRetriesOutcomeUnknownOnlyWhenIdempotent(t *testing.T) {
	unknown := outcomeUnknown(t)
	plain := status.Error(codes.Unavailable, "no leader")
	for _, tc := range []struct {
		name      string
		rp        retryPolicy
		first     error
		wantCalls int
		wantCode  codes.Code
	}{
		{"non-idempotent outcome unknown", retryPolicy{}, unknown, 1, codes.Unavailable},
		{"idempotent outcome unknown", retryPolicy{deadlineExceeded: true}, unknown, 2, codes.OK},
		{"non-idempotent plain unavailable", retryPolicy{}, plain, 2, codes.OK},
		{"non-idempotent deadline", retryPolicy{}, status.Error(codes.DeadlineExceeded, "slow"), 1, codes.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{addrs: []string{"a"}, conns: []*grpc.ClientConn{nil}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			calls := 0
			err := c.call(ctx, tc.rp, func(context.Context, *grpc.ClientConn) error {
				calls++
				if calls == 1 {
					return tc.first
				}
				return nil
			})
			if calls != tc.wantCalls || status.Code(err) != tc.wantCode {
				t.Fatalf("%d calls, code %v; want %d calls, code %v", calls, status.Code(err), tc.wantCalls, tc.wantCode)
			}
		})
	}
}
